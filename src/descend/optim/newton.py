r"""Newton's method: exact (dense Hessian, modified Cholesky) and matrix-free Newton-CG."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities
from descend.optim.hessian import (
    HessianVectorProduct,
    check_dense_hessian_memory,
    dense_hessian,
)
from descend.optim.line_search_optimizer import LineSearchOptimizer
from descend.optim.linesearch import LINE_SEARCHES, check_search_constants
from descend.optim.optimizer import StepFailed
from descend.validation import check_choice, check_int, check_number, check_positive

MODES = ("exact", "cg")
#: Cholesky attempts (tau doubles each time) before the shift is declared hopeless
_MAX_SHIFTS = 200


@dataclass
class CGResult:
    r"""An approximate solution of :math:`B p = -g` by truncated conjugate gradients.

    Attributes:
        step: :math:`p` (a descent direction: :math:`g^\top p < 0` whenever :math:`g \ne 0`).
        iterations: CG iterations (one product with :math:`B` each).
        negative_curvature: CG stopped at a direction with :math:`d^\top B d \le 0`.
        converged: the residual met the tolerance.
    """

    step: Tensor
    iterations: int
    negative_curvature: bool
    converged: bool


def truncated_cg(
    matvec: Callable[[Tensor], Tensor], grad: Tensor, tol: float, max_iter: int
) -> CGResult:
    r"""Conjugate gradients on :math:`B p = -g` from :math:`p_0 = 0`, truncated
    (Nocedal & Wright 2006, Alg. 7.1, the inner loop of line-search Newton-CG).

    .. math::
        r_0 = g,\ d_0 = -g;\qquad
        \alpha_j = \frac{r_j^\top r_j}{d_j^\top B d_j},\
        p_{j+1} = p_j + \alpha_j d_j,\ r_{j+1} = r_j + \alpha_j B d_j,\
        d_{j+1} = -r_{j+1} + \frac{r_{j+1}^\top r_{j+1}}{r_j^\top r_j} d_j

    Stops when :math:`\|r_j\| <` ``tol``, after ``max_iter`` iterations, or when a direction
    has :math:`d_j^\top B d_j \le 0`: then it returns :math:`p_j` (a descent direction
    built from the positive-curvature part), or :math:`-g` if that happens at the first
    iteration. Every returned :math:`p` satisfies :math:`g^\top p < 0` for :math:`g \ne 0`.
    On a positive definite :math:`B` the iterates minimize the quadratic model over growing
    Krylov spaces; in exact arithmetic CG ends in at most n iterations, and in floating
    point the A-norm error falls at least by :math:`2((\sqrt\kappa - 1)/(\sqrt\kappa + 1))^j`.
    """
    p = torch.zeros_like(grad)
    r = grad.clone()
    d = -r
    rr = float(torch.dot(r, r))
    if math.sqrt(rr) < tol:
        return CGResult(p, 0, False, True)
    for j in range(max_iter):
        bd = matvec(d)
        curvature = float(torch.dot(d, bd))
        if not math.isfinite(curvature):
            raise StepFailed(
                "diverged", f"a Hessian-vector product is not finite (d'Bd = {curvature})"
            )
        if curvature <= 0.0:
            return CGResult(-grad if j == 0 else p, j + 1, True, False)
        alpha = rr / curvature
        p.add_(d, alpha=alpha)
        r.add_(bd, alpha=alpha)
        rr_next = float(torch.dot(r, r))
        if math.sqrt(rr_next) < tol:
            return CGResult(p, j + 1, False, True)
        d.mul_(rr_next / rr).sub_(r)
        rr = rr_next
    return CGResult(p, max_iter, False, False)


def modified_newton_direction(
    hessian: Tensor, grad: Tensor, beta: float = 1e-3
) -> tuple[Tensor, float]:
    r"""The direction :math:`d = -(H + \tau I)^{-1} g` with the smallest tried
    :math:`\tau \ge 0` that makes :math:`H + \tau I` positive definite.

    Cholesky with added multiple of the identity (Nocedal & Wright 2006, Alg. 3.3):
    :math:`\tau_0 = 0` if :math:`\min_i H_{ii} > 0`, else :math:`\beta s - \min_i H_{ii}`;
    while the Cholesky factorization of :math:`H + \tau_k I` fails,
    :math:`\tau_{k+1} = \max(2\tau_k, \beta s)`. Here :math:`s = \max_{ij} |H_{ij}|`
    (1 when H = 0) makes :math:`\beta` relative, so the rule does not depend on the scale
    of f. A positive definite H is left unchanged (:math:`\tau = 0`: the pure Newton step);
    otherwise the shift is at most about twice the one needed, and the direction is a
    descent direction, :math:`g^\top d = -g^\top (H + \tau I)^{-1} g < 0`.

    Returns:
        the direction and :math:`\tau`.
    """
    n = hessian.shape[0]
    scale = float(hessian.abs().max())
    if not math.isfinite(scale):
        raise StepFailed("diverged", "the Hessian has non-finite entries")
    shift_unit = beta * (scale if scale > 0 else 1.0)
    min_diag = float(hessian.diagonal().min())
    tau = 0.0 if min_diag > 0 else shift_unit - min_diag
    eye = torch.eye(n, dtype=hessian.dtype, device=hessian.device)
    for _ in range(_MAX_SHIFTS):
        factor, info = torch.linalg.cholesky_ex(hessian + tau * eye if tau else hessian)
        if int(info) == 0:
            d = torch.cholesky_solve(grad.neg().unsqueeze(1), factor).squeeze(1)
            return d, tau
        tau = max(2.0 * tau, shift_unit)
    raise StepFailed(
        "diverged", f"no shift up to tau = {tau:.3g} makes the Hessian positive definite"
    )


class Newton(LineSearchOptimizer):
    r"""Newton's method with a line search, exact or matrix-free (Newton-CG).

    Each step solves the Newton system :math:`\nabla^2 f(x_k)\, d = -g_k` and searches
    along :math:`d` from :math:`t_0 =` ``lr`` (1: the Newton step, accepted near a
    minimizer, where convergence is quadratic):

    * ``mode="exact"``: the dense Hessian (batched double backward on descend's Objective,
      else :math:`n` finite differences of gradients), modified to be positive definite by
      Cholesky with an added multiple of the identity (:func:`modified_newton_direction`,
      N&W Alg. 3.3), so :math:`d = -(H + \tau I)^{-1} g`. Refuses, with a ValueError at
      construction, problems whose Hessian and factor would take more than
      ``hessian_memory_mb`` MiB.
    * ``mode="cg"``: line-search Newton-CG (N&W Alg. 7.1): :func:`truncated_cg` on
      Hessian-vector products to the residual :math:`\eta_k \|g_k\|` with the forcing term
      :math:`\eta_k = \min(0.5, \sqrt{\|g_k\|})` (superlinear convergence, N&W Thm. 7.2),
      stopping at negative curvature; met at the first CG iteration, the direction is
      :math:`-g_k` and the search starts from a step of length ``lr``. Never forms the
      Hessian: memory O(n).

    The search (strong Wolfe with ``c1``, ``c2``, backtracking Armijo with ``c1``, or none)
    and its fallbacks are those of
    :class:`~descend.optim.line_search_optimizer.LineSearchOptimizer`: it ends with the closure
    evaluated at the new point; if it finds no lower f along :math:`d` it is tried along
    :math:`-g_k`, and if that fails too :class:`~descend.optim.StepFailed` is raised with
    the parameters where they were.

    Hessian-vector products are exact when the closure is descend's Objective
    (``minimize`` passes one; they count in ``nhev``, a dense Hessian as n of them),
    otherwise forward differences of gradients through the closure
    (:class:`~descend.optim.hessian.HessianVectorProduct`).

    Args:
        params: the parameters (one group, one dtype and device; treated as one vector).
        lr: first trial step :math:`t_0 > 0` of the line search.
        mode: ``"exact"`` or ``"cg"``.
        line_search_fn: ``"strong_wolfe"``, ``"backtracking"`` or None (a fixed step ``lr``).
        c1: sufficient-decrease constant in (0, 1).
        c2: curvature constant in (c1, 1) (strong Wolfe only).
        max_eval: closure evaluations per step for the line search, >= 1.
        hessian_memory_mb: budget of the exact mode, in MiB (> 0).
        max_cg_iter: CG iterations per step in ``"cg"`` mode (default ``20 n``, as SciPy).
        cg_rtol: fixed relative CG tolerance in (0, 1) instead of the forcing term.
        beta: relative size of the first shift of the Hessian's modification (> 0).

    Example:
        >>> x = rosenbrock.x0().requires_grad_()  # float64 (-1.2, 1)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = rosenbrock(x)
        ...     loss.backward()
        ...     return loss
        >>> opt = descend.optim.Newton([x])  # mode="cg" for the matrix-free Newton-CG
        >>> for _ in range(40):
        ...     loss = opt.step(closure)
        >>> bool((x - 1).abs().max() < 1e-6)  # the minimum (1, 1)
        True

    References:
        J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., 2006, §3.4
        (Alg. 3.3), §7.1 (Alg. 7.1). S. C. Eisenstat and H. F. Walker, "Choosing the
        forcing terms in an inexact Newton method", SIAM J. Sci. Comput. 17, 1996.
    """

    capabilities = Capabilities(needs_fixed_batch=True, second_order=True)

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        mode: str = "exact",
        *,
        line_search_fn: str | None = "strong_wolfe",
        c1: float = 1e-4,
        c2: float = 0.9,
        max_eval: int = 30,
        hessian_memory_mb: float = 256.0,
        max_cg_iter: int | None = None,
        cg_rtol: float | None = None,
        beta: float = 1e-3,
    ) -> None:
        check_positive("lr", lr)
        check_choice("mode", mode, MODES)
        if line_search_fn is not None:
            check_choice("line_search_fn", line_search_fn, LINE_SEARCHES)
        check_search_constants(c1, c2)
        check_int("max_eval", max_eval, low=1)
        check_positive("hessian_memory_mb", hessian_memory_mb)
        if max_cg_iter is not None:
            check_int("max_cg_iter", max_cg_iter, low=1)
        if cg_rtol is not None:
            check_number("cg_rtol", cg_rtol, low=0.0, high=1.0, low_open=True, high_open=True)
        check_positive("beta", beta)
        defaults = dict(
            lr=float(lr),
            mode=mode,
            line_search_fn=line_search_fn,
            c1=float(c1),
            c2=float(c2),
            max_eval=max_eval,
            hessian_memory_mb=float(hessian_memory_mb),
            max_cg_iter=max_cg_iter,
            cg_rtol=cg_rtol,
            beta=float(beta),
        )
        super().__init__(params, defaults)
        if mode == "exact":
            check_dense_hessian_memory(self._flat.numel, self._flat.dtype, hessian_memory_mb)
            if self._flat.dtype in (torch.float16, torch.bfloat16):
                raise ValueError(
                    f"newton factors the Hessian by Cholesky, which torch has no "
                    f"{self._flat.dtype} kernel for; give the parameters (minimize's x0) as "
                    "float32 or float64, or use mode='cg' (newton-cg)"
                )
        self._closure: Callable[[], Tensor] | None = None

    @torch.no_grad()
    # torch's stub: a closure returns a float; descend's return the loss tensor
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor:  # type: ignore[override]
        """Take one Newton step with a line search; returns the loss at the starting point.

        ``closure`` must re-evaluate the loss and fill ``p.grad`` (zero the gradients,
        compute the loss, call ``backward``, return the loss); the Hessian comes from it.
        """
        self._closure = closure
        try:
            return super().step(closure)
        finally:
            self._closure = None

    def _init_buffers(self, state: dict[str, Any], n: int) -> None:
        for key in ("cg_iter", "negative_curvature", "hessian_shifts"):
            state.setdefault(key, 0)
        state.setdefault("tau", 0.0)

    def _direction(self, state: dict[str, Any], g: Tensor, d: Tensor) -> bool:
        closure = self._closure
        assert closure is not None  # set by step()
        g_norm = float(torch.linalg.vector_norm(g))
        if g_norm == 0.0 or not math.isfinite(g_norm):
            torch.neg(g, out=d)
            return False
        group = self.param_groups[0]
        if group["mode"] == "exact":
            hessian = dense_hessian(closure, self._flat.params, g)
            direction, tau = modified_newton_direction(hessian, g, group["beta"])
            state["tau"] = tau
            state["hessian_shifts"] += int(tau > 0)
            d.copy_(direction)
            return True
        hvp = HessianVectorProduct(closure, self._flat, g)
        rtol = group["cg_rtol"] if group["cg_rtol"] is not None else min(0.5, math.sqrt(g_norm))
        max_cg = group["max_cg_iter"] or 20 * self._flat.numel
        cg = truncated_cg(hvp, g, rtol * g_norm, max_cg)
        state["cg_iter"] += cg.iterations
        d.copy_(cg.step)
        if cg.negative_curvature and cg.iterations == 1:
            state["negative_curvature"] += 1
            return False
        return True
