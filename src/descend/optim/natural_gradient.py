r"""Natural gradient: steps preconditioned by the Fisher information, solved matrix-free."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities
from descend.optim.flat_params import FlatParams
from descend.optim.hessian import flatten, set_grad, single_group_params, split
from descend.optim.linesearch import backtracking_armijo
from descend.optim.newton import truncated_cg
from descend.optim.optimizer import StepFailed
from descend.validation import check_choice, check_int, check_non_negative, check_number

FISHERS = ("empirical", "model")


class NaturalGradient(torch.optim.Optimizer):
    r"""Natural gradient descent for a loss that is a mean negative log-likelihood.

    For :math:`f(\theta) = \frac1N \sum_i \ell_i(\theta) + \frac{\lambda_w}{2}\|\theta\|^2`
    with :math:`\ell_i = -\log p(y_i \mid x_i, \theta)`, each step is

    .. math::
        \theta \leftarrow \theta - \eta\, (F + (\lambda + \lambda_w) I)^{-1} \nabla f(\theta),

    the steepest descent direction in the geometry of the model's distributions
    (Amari 1998), damped by :math:`\lambda` (``damping``) as a trust region on the
    quadratic model (Martens 2014, §8). The system is solved by conjugate gradients on
    Fisher-vector products, never forming :math:`F`:

    * ``fisher="empirical"``: :math:`F = \frac1N J^\top J`, :math:`J_{ij} = \partial
      \ell_i / \partial\theta_j` the per-sample gradients, and
      :math:`Fv = \frac1N J^\top (J v)`: :math:`J^\top u` is one backward pass of the
      per-sample losses, :math:`Jv` a forward-mode product computed as the derivative of
      :math:`J^\top u` with respect to :math:`u` (double backward). Neither :math:`F` nor
      the :math:`N \times n` matrix :math:`J` is stored.
    * ``fisher="model"``: the model's own Fisher, :math:`F = \mathbb{E}_{y \sim p_\theta}
      [\nabla\log p\, \nabla\log p^\top]`. When the loss is the negative log-likelihood of
      an exponential family whose natural parameters are the outputs :math:`z` (logits
      with softmax or sigmoid cross-entropy, the mean with squared error), it equals the
      generalized Gauss-Newton matrix :math:`F = J_z^\top H_z J_z`, :math:`J_z =
      \partial z / \partial\theta`, :math:`H_z = \partial^2 \bar\ell / \partial z^2`
      (Martens 2014, §9.2), computed here as three matrix-free products. The empirical
      Fisher is cheaper per product but can be a poor curvature model far from the
      optimum (Kunstner et al. 2019); the model Fisher is positive semi-definite and,
      for generalized linear models, equal to the Hessian of the loss (then each step is
      a damped Newton step: Fisher scoring).

    ``step(closure)``: the closure evaluates the model on the batch and returns, without
    calling ``backward``,

    * ``fisher="empirical"``: the per-sample losses, shape ``[N]`` (e.g.
      ``F.cross_entropy(model(X), y, reduction="none")``);
    * ``fisher="model"``: the pair ``(losses, outputs)``: the per-sample losses, shape
      ``[N]``, and the outputs they were computed from (logits, shape ``[N, ...]``).

    The step differentiates them itself, leaves :math:`\nabla \bar\ell` at the starting
    point (without weight decay) in ``p.grad``, and returns the mean loss.
    ``weight_decay`` is the L2 penalty :math:`\lambda_w` (its gradient and its curvature
    :math:`\lambda_w I` are added exactly).

    The step length: backtracking Armijo (``line_search_fn="backtracking"``, the default)
    on :math:`f` from :math:`t = ` ``lr``, halving, each trial one more closure call and
    backward pass; or the fixed ``lr`` (``line_search_fn=None``: one closure call per
    step). The search matters for the empirical Fisher, which can be off in scale from the
    curvature (on a logistic regression, about half of it near the optimum, so the full
    step overshoots by a factor of two and oscillates). The closure must then compute the
    same batch on every call. A search that finds no decrease leaves the parameters where
    they were and raises :class:`~descend.optim.StepFailed` (``line_search_failed``).
    torch's learning-rate schedulers apply to ``lr`` either way.

    Args:
        params: the parameters (one group, one dtype and device; treated as one vector).
        lr: step size :math:`\eta \ge 0`.
        damping: :math:`\lambda \ge 0` added to the Fisher's diagonal (> 0 unless the
            Fisher is known to be nonsingular).
        weight_decay: L2 penalty :math:`\lambda_w \ge 0`.
        fisher: ``"empirical"`` or ``"model"``.
        line_search_fn: ``"backtracking"`` or None (fixed step ``lr``).
        c1: sufficient-decrease constant of the search, in (0, 1).
        max_eval: closure calls per line search, >= 1.
        max_cg_iter: CG iterations per step, >= 1.
        cg_rtol: relative residual at which CG stops, in (0, 1).

    Example:
        >>> import torch.nn.functional as F
        >>> labels = (y[:, 0] > 0).long()  # two classes
        >>> clf = nn.Linear(3, 2)
        >>> opt = descend.optim.NaturalGradient(clf.parameters(), lr=1.0, damping=1e-3)
        >>> for _ in range(5):
        ...     loss = opt.step(lambda: F.cross_entropy(clf(X), labels, reduction="none"))
        >>> float(loss) < 0.1  # the mean loss, from about log 2 at the start
        True

    References:
        S. Amari, "Natural gradient works efficiently in learning", Neural Computation 10,
        1998. J. Martens, "New insights and perspectives on the natural gradient method",
        JMLR 21, 2020 (arXiv:1412.1193, 2014). F. Kunstner, L. Balles and P. Hennig,
        "Limitations of the empirical Fisher approximation", NeurIPS 2019.
    """

    capabilities = Capabilities(
        needs_fixed_batch=True, couples_weight_decay=True, second_order=True
    )

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        damping: float = 1e-3,
        weight_decay: float = 0.0,
        *,
        fisher: str = "empirical",
        line_search_fn: str | None = "backtracking",
        c1: float = 1e-4,
        max_eval: int = 20,
        max_cg_iter: int = 100,
        cg_rtol: float = 1e-6,
    ) -> None:
        check_non_negative("lr", lr)
        if line_search_fn is not None:
            check_choice("line_search_fn", line_search_fn, ("backtracking",))
        check_number("c1", c1, low=0.0, high=1.0, low_open=True, high_open=True)
        check_int("max_eval", max_eval, low=1)
        check_non_negative("damping", damping)
        check_non_negative("weight_decay", weight_decay)
        check_choice("fisher", fisher, FISHERS)
        check_int("max_cg_iter", max_cg_iter, low=1)
        check_number("cg_rtol", cg_rtol, low=0.0, high=1.0, low_open=True, high_open=True)
        defaults = dict(
            lr=float(lr),
            damping=float(damping),
            weight_decay=float(weight_decay),
            fisher=fisher,
            line_search_fn=line_search_fn,
            c1=float(c1),
            max_eval=max_eval,
            max_cg_iter=max_cg_iter,
            cg_rtol=float(cg_rtol),
        )
        super().__init__(params, defaults)
        self._params = single_group_params(self, "NaturalGradient")
        self._flat = FlatParams(self._params)

    @torch.no_grad()
    # torch's stub: a closure returns a float; descend's return the loss tensor
    def step(self, closure: Callable[[], Any]) -> Tensor:  # type: ignore[override]
        """Take one natural-gradient step; returns the mean loss before it."""
        if closure is None or not callable(closure):
            raise ValueError(
                "NaturalGradient.step needs a closure returning the per-sample losses "
                f"(shape [N], no backward), got {closure!r}"
            )
        group = self.param_groups[0]
        state = self.state[self._params[0]]
        state.setdefault("n_iter", 0)
        state.setdefault("cg_iter", 0)
        state.setdefault("fisher_products", 0)
        flat = self._flat

        fvp: FisherVectorProduct | None  # released after the solve
        with torch.enable_grad():
            losses, outputs = self._parse(closure(), group["fisher"])
            loss = losses.mean()
            fvp = FisherVectorProduct(losses, outputs, self._params, group["fisher"])
        g = grad = fvp.grad
        set_grad(flat, grad)
        f = float(loss)
        if not math.isfinite(f) or not bool(torch.isfinite(g).all()):
            raise StepFailed("diverged", f"the mean loss is {f} or its gradient is not finite")
        x = flat.gather()
        wd = group["weight_decay"]
        if wd:
            g = g.add(x, alpha=wd)
        shift = group["damping"] + wd
        g_norm = float(torch.linalg.vector_norm(g))
        if g_norm == 0.0 or group["lr"] == 0.0:
            return loss.detach()

        def matvec(v: Tensor) -> Tensor:
            assert fvp is not None
            return fvp(v).add_(v, alpha=shift) if shift else fvp(v)

        cg = truncated_cg(matvec, g, group["cg_rtol"] * g_norm, group["max_cg_iter"])
        fvp = None  # frees the graph before the line search evaluates the closure again
        state["cg_iter"] += cg.iterations
        state["fisher_products"] += cg.iterations
        state["n_iter"] += 1
        if group["line_search_fn"] is None:
            flat.assign_axpy(x, group["lr"], cg.step)
            return loss.detach()
        try:
            self._search(closure, group, state, x, cg.step, f + 0.5 * wd * float(x @ x), g)
        finally:
            set_grad(flat, grad)  # the closure may have cleared the gradients
        return loss.detach()

    def _search(
        self,
        closure: Callable[[], Any],
        group: dict[str, Any],
        state: dict[str, Any],
        x: Tensor,
        d: Tensor,
        f0: float,
        g: Tensor,
    ) -> None:
        """Backtracking Armijo on the penalized mean loss along ``d``, from ``t = lr``."""
        flat, wd = self._flat, group["weight_decay"]

        def phi(t: float) -> tuple[float, float]:
            flat.assign_axpy(x, t, d)
            with torch.enable_grad():
                losses, _ = self._parse(closure(), group["fisher"])
                value = losses.mean()
                grads = torch.autograd.grad(value, self._params, allow_unused=True)
            slope = torch.dot(flatten(flat, grads), d)
            if wd:
                xt = torch.add(x, d, alpha=t)
                value = value + 0.5 * wd * torch.dot(xt, xt)
                slope = slope + wd * torch.dot(xt, d)
            return float(value), float(slope)

        dphi0 = float(torch.dot(g, d))
        res = backtracking_armijo(
            phi, f0, dphi0, group["lr"], group["c1"], max_evals=group["max_eval"], eps=flat.eps
        )
        state["func_evals"] = state.get("func_evals", 0) + res.nfev
        if res.t > 0.0:
            flat.assign_axpy(x, res.t, d)
            state["last_t"] = res.t
            return
        flat.assign(x)
        raise StepFailed(
            "line_search_failed",
            f"NaturalGradient: no step along the natural gradient decreases the loss "
            f"({res.message}); the parameters stay where they were (f = {f0:.10g})",
        )

    @staticmethod
    def _parse(out: Any, fisher: str) -> tuple[Tensor, Tensor | None]:
        if fisher == "model":
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise ValueError(
                    "with fisher='model' the closure must return (per-sample losses of shape "
                    f"[N], outputs of shape [N, ...]), got {type(out).__name__}"
                )
            losses, outputs = out
        else:
            losses, outputs = out, None
        if not isinstance(losses, Tensor) or losses.dim() != 1:
            shape = tuple(losses.shape) if isinstance(losses, Tensor) else type(losses).__name__
            raise ValueError(
                "NaturalGradient's closure must return the per-sample losses, a tensor of "
                f"shape [N] (use reduction='none'), got {shape}"
            )
        if not losses.requires_grad:
            raise ValueError(
                "the per-sample losses do not depend on the parameters through autograd; "
                "compute them from the model inside the closure, without torch.no_grad"
            )
        if outputs is not None and (not isinstance(outputs, Tensor) or not outputs.requires_grad):
            raise ValueError(
                "with fisher='model' the outputs must be a tensor computed from the "
                "parameters (the logits the losses were computed from)"
            )
        return losses, outputs


class FisherVectorProduct:
    r"""Fisher-vector products :math:`v \mapsto F v` at the current parameters.

    Built from the autograd graph of the per-sample losses (and, for the model Fisher,
    of the outputs), which it keeps alive; ``grad`` is the flat gradient of the mean loss.

    Empirical: :math:`Fv = \frac1N J^\top (J v)`, two passes per product. Model:
    :math:`Fv = J_z^\top (H_z (J_z v))`, three passes per product. :math:`J v` comes from
    the identity :math:`J v = \partial (u^\top J v) / \partial u = \partial ((J^\top u)^\top
    v) / \partial u`: the backward pass :math:`J^\top u` is built once, as a function of a
    dummy :math:`u`, and differentiated with respect to :math:`u` for each :math:`v`.
    """

    def __init__(
        self, losses: Tensor, outputs: Tensor | None, params: Sequence[Tensor], fisher: str
    ) -> None:
        self.params = list(params)
        self.flat = FlatParams(self.params)
        self.count = 0
        self.n_samples = losses.shape[0]
        mean = losses.mean()
        if fisher == "empirical":
            self.target = losses
            grads = torch.autograd.grad(mean, self.params, retain_graph=True, allow_unused=True)
        else:
            assert outputs is not None
            self.target = outputs
            grads = torch.autograd.grad(mean, self.params, retain_graph=True, allow_unused=True)
            (grad_z,) = torch.autograd.grad(mean, outputs, create_graph=True)
            self.grad_z = grad_z
        self.fisher = fisher
        self.grad = flatten(self.flat, grads)
        self._dummy = torch.zeros_like(self.target, requires_grad=True)
        vjp = torch.autograd.grad(
            self.target, self.params, self._dummy, create_graph=True, allow_unused=True
        )
        self._vjp = [(h, p) for h, p in zip(vjp, self.params) if h is not None]

    def jvp(self, v: Tensor) -> Tensor:
        """:math:`J v`, shaped like the target (losses or outputs)."""
        vs = split(self.flat, v)
        index = {id(p): i for i, p in enumerate(self.params)}
        outs = [h for h, _ in self._vjp]
        tangents = [vs[index[id(p)]] for _, p in self._vjp]
        with torch.enable_grad():
            (jv,) = torch.autograd.grad(
                outs, self._dummy, tangents, retain_graph=True, allow_unused=True
            )
        return torch.zeros_like(self.target) if jv is None else jv

    def vjp(self, u: Tensor) -> Tensor:
        """:math:`J^\\top u` as a flat vector."""
        with torch.enable_grad():
            out = torch.autograd.grad(
                self.target, self.params, u, retain_graph=True, allow_unused=True
            )
        return flatten(self.flat, out)

    def __call__(self, v: Tensor) -> Tensor:
        self.count += 1
        jv = self.jvp(v)
        if self.fisher == "empirical":
            return self.vjp(jv).div_(self.n_samples)
        if not self.grad_z.requires_grad:  # the loss is linear in the outputs: H_z = 0
            return torch.zeros_like(v)
        with torch.enable_grad():
            (hjv,) = torch.autograd.grad(
                self.grad_z, self.target, jv, retain_graph=True, allow_unused=True
            )
        return torch.zeros_like(v) if hjv is None else self.vjp(hjv)
