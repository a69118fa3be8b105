"""Nonlinear conjugate gradient with a strong Wolfe line search."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities
from descend.optim.line_search_optimizer import LineSearchOptimizer
from descend.optim.linesearch import LineSearchResult, check_search_constants
from descend.validation import check_choice, check_int, check_positive

BETAS = ("polak-ribiere", "fletcher-reeves", "hestenes-stiefel", "hager-zhang")

#: Hager & Zhang's lower bound parameter eta for their beta (CG_DESCENT uses 0.01)
HZ_ETA = 0.01


class ConjugateGradient(LineSearchOptimizer):
    r"""Nonlinear conjugate gradient: :math:`d_k = -g_k + \beta_k d_{k-1}`.

    With :math:`y = g_k - g_{k-1}` (Nocedal & Wright, Numerical Optimization, 2nd ed.,
    Section 5.2; Hager & Zhang, SIAM J. Optim. 16(1), 2005):

    .. math::
        \beta^{FR} &= \frac{g_k^\top g_k}{g_{k-1}^\top g_{k-1}}, \qquad
        \beta^{PR+} = \max\Big(0, \frac{g_k^\top y}{g_{k-1}^\top g_{k-1}}\Big), \qquad
        \beta^{HS} = \frac{g_k^\top y}{d_{k-1}^\top y},\\
        \beta^{HZ} &= \max\Big(\frac{1}{d^\top y}\Big(y - 2 d \frac{\|y\|^2}{d^\top y}
        \Big)^{\!\top} g_k,\; \frac{-1}{\|d\| \min(\eta, \|g_{k-1}\|)}\Big),\ \eta = 0.01.

    The iteration restarts with :math:`d_k = -g_k` every ``restart`` iterations (default
    ``n``, the number of parameters; N&W Section 5.2) and whenever :math:`d_k` is not a
    descent direction or :math:`\beta_k` is not finite.

    The step length comes from a strong Wolfe line search with ``c2 = 0.1`` (strong Wolfe
    with :math:`c_2 < 1/2` makes every Fletcher-Reeves direction a descent direction, N&W
    Lemma 5.6). The first trial step is N&W eq. (3.60),
    :math:`t_0 = \min(\text{lr}, 1.01 \cdot 2 (f_{k-1} - f_k) / |\phi'(0)|)`, which assumes
    the decrease of f repeats; the first iteration tries a step of length ``lr``.

    On a convex quadratic the line search is exact after one interpolation (the cubic through
    two points of a quadratic is the quadratic), and with an exact line search the method is
    linear CG: it terminates in at most n iterations, in k if the Hessian has k distinct
    eigenvalues, and its A-norm error shrinks at least like
    :math:`2((\sqrt\kappa - 1)/(\sqrt\kappa + 1))^k` (N&W Theorem 5.4, eq. 5.36).

    Args:
        params: parameters (one group, one dtype and device).
        lr: largest first trial step of each line search, > 0.
        beta: ``"polak-ribiere"`` (PR+, the default), ``"fletcher-reeves"``,
            ``"hestenes-stiefel"`` or ``"hager-zhang"``.
        restart: iterations between periodic restarts (None: n; 0: never).
        c1: sufficient-decrease constant in (0, 1).
        c2: curvature constant in (c1, 1); keep it below 0.5 for Fletcher-Reeves.
        max_eval: closure evaluations per ``step()`` (the line search budget), >= 1.

    Example:
        >>> x = rosenbrock.x0().requires_grad_()  # float64 (-1.2, 1)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = rosenbrock(x)
        ...     loss.backward()
        ...     return loss
        >>> opt = descend.optim.ConjugateGradient([x], beta="hager-zhang")
        >>> for _ in range(100):
        ...     loss = opt.step(closure)
        ...     if x.grad.norm() < 1e-8:
        ...         break
        >>> bool((x - 1).abs().max() < 1e-6)  # the minimum (1, 1)
        True
    """

    capabilities = Capabilities(needs_fixed_batch=True)

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        beta: str = "polak-ribiere",
        restart: int | None = None,
        c1: float = 1e-4,
        c2: float = 0.1,
        max_eval: int = 30,
    ) -> None:
        check_positive("lr", lr)
        check_choice("beta", beta, BETAS)
        if restart is not None:
            check_int("restart", restart, low=0)
        check_search_constants(c1, c2)
        check_int("max_eval", max_eval, low=1)
        defaults = dict(lr=lr, beta=beta, restart=restart, c1=c1, c2=c2, max_eval=max_eval)
        super().__init__(params, defaults)

    def _init_buffers(self, state: dict[str, Any], n: int) -> None:
        state["y"] = self._flat.empty()
        state["cycle"] = 0  # iterations since the last steepest-descent direction
        state["has_prev"] = False  # g_prev and d hold the previous iteration
        state["f_prev"] = math.nan  # f at the previous iterate
        state["f_start"] = math.nan  # f at the current iterate

    def _reset(self, state: dict[str, Any]) -> None:
        state["cycle"] = 0
        state["has_prev"] = False

    def _period(self) -> int:
        restart = self.param_groups[0]["restart"]
        return self._flat.numel if restart is None else restart

    def _direction(self, state: dict[str, Any], g: Tensor, d: Tensor) -> bool:
        period = self._period()
        if not state["has_prev"] or (period and state["cycle"] >= period):
            state["cycle"] = 0
            torch.neg(g, out=d)
            return False
        beta = self._beta(state, g, state["g_prev"], d)
        if not math.isfinite(beta):
            state["cycle"] = 0
            torch.neg(g, out=d)
            return False
        d.mul_(beta).sub_(g)
        return True

    def _beta(self, state: dict[str, Any], g: Tensor, g_prev: Tensor, d: Tensor) -> float:
        rule = self.param_groups[0]["beta"]
        if rule == "fletcher-reeves":
            gg, gpgp = torch.stack((torch.dot(g, g), torch.dot(g_prev, g_prev))).tolist()
            return gg / gpgp if gpgp > 0 else math.nan
        y = torch.sub(g, g_prev, out=state["y"])
        if rule == "polak-ribiere":
            gy, gpgp = torch.stack((torch.dot(g, y), torch.dot(g_prev, g_prev))).tolist()
            return max(0.0, gy / gpgp) if gpgp > 0 else math.nan
        dots = (torch.dot(g, y), torch.dot(d, y))
        if rule == "hestenes-stiefel":
            gy, dy = torch.stack(dots).tolist()
            return gy / dy if dy != 0 else math.nan
        more = (torch.dot(y, y), torch.dot(d, g), torch.dot(d, d), torch.dot(g_prev, g_prev))
        gy, dy, yy, dg, dd, gpgp = torch.stack(dots + more).tolist()
        if dy == 0:
            return math.nan
        beta = (gy - 2.0 * yy * dg / dy) / dy
        floor = -1.0 / (math.sqrt(dd) * min(HZ_ETA, math.sqrt(gpgp)))
        return max(beta, floor)

    def _initial_step(self, state: dict[str, Any], f: float, dphi0: float, curved: bool) -> float:
        lr = self.param_groups[0]["lr"]
        state["f_start"] = f
        decrease = state["f_prev"] - f
        if decrease > 0:  # False while f_prev is NaN (first iteration)
            return min(lr, 1.01 * 2.0 * decrease / -dphi0)
        return lr / math.sqrt(torch.dot(state["g"], state["g"]).item())

    def _accept(
        self,
        state: dict[str, Any],
        g: Tensor,
        g_new: Tensor,
        d: Tensor,
        dphi0: float,
        res: LineSearchResult,
    ) -> None:
        state["f_prev"] = state["f_start"]
        state["cycle"] += 1
        state["has_prev"] = True
