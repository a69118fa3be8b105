r"""Dogbox (``"dogbox"``): a dogleg method in a rectangular trust region, for small problems
with bounds.

The trust region is the box :math:`\|p / \sigma\|_\infty \le \Delta` (:math:`\sigma` the
``x_scale``), so that it intersects the feasible box in a box. Variables at a bound whose
gradient pushes outward are held there (the active set: :math:`x_i = l_i, g_i > 0` or
:math:`x_i = u_i, g_i < 0`); over the free ones the step follows Powell's dogleg
from the Cauchy point :math:`-t^* g` (the model's minimum along :math:`-g` inside the
intersection) toward the Gauss-Newton point :math:`p_N = -J^+ f` until it leaves the
intersection, or is :math:`p_N` if that lies inside. A variable whose step ends on its
bound joins the active set.

Radius: the ratio rule with the step's :math:`\|\cdot/\sigma\|_\infty`. Stopping: gtol (1)
:math:`\|g_\text{free}\|_\infty <` gtol; ftol (2) and xtol (3) by
:func:`~descend.least_squares.status.step_termination`; ``max_nfev`` (0).

References:
    C. Voglis, I. E. Lagaris, "A rectangular trust region dogleg approach for unconstrained
    and bound constrained nonlinear optimization", WSEAS Int. Conf. on Applied Math., 2004.
    SciPy's ``scipy/optimize/_lsq/dogbox.py`` (N. Mayorov), whose rules these are.
"""

from __future__ import annotations

import torch
from torch import Tensor

from descend.least_squares import status as st
from descend.least_squares.bounds import in_bounds, step_to_bound
from descend.least_squares.cgls import cgls
from descend.least_squares.losses import RobustLoss, cost_of
from descend.least_squares.operator import jacobian_scale, known_dense, rmatvec, scale
from descend.least_squares.residuals import Residuals
from descend.least_squares.result import Solution
from descend.least_squares.trust_region import (
    evaluate_quadratic,
    minimize_quadratic_1d,
    quadratic_1d,
    update_radius,
)


def dogbox(
    residuals: Residuals,
    x0: Tensor,
    f0: Tensor,
    lb: Tensor,
    ub: Tensor,
    *,
    ftol: float,
    xtol: float,
    gtol: float,
    max_nfev: int,
    x_scale: Tensor | None,
    loss: RobustLoss | None,
    tr_solver: str,
) -> Solution:
    """Minimize the cost from a feasible ``x0`` (``f0 = f(x0)``) within the box.

    ``x_scale`` None means ``"jac"``.
    """
    x, f_true = x0, f0
    jac, f, cost = residuals.linearize(x, f_true, loss)
    g = rmatvec(jac, f)
    scale_inv = jacobian_scale(known_dense(jac)) if x_scale is None else 1.0 / x_scale
    delta = float((x0 * scale_inv).abs().max()) or 1.0
    on_bound = torch.zeros_like(x0, dtype=torch.int64)
    on_bound[x0 == lb] = -1
    on_bound[x0 == ub] = 1
    status: int | None = None
    while True:
        active = on_bound * g < 0
        free = ~active
        g_full = g
        g = torch.where(active, 0.0, g)
        g_norm = float(g.abs().max())
        if g_norm < gtol:
            status = st.GTOL
        if status is not None or residuals.nfev >= max_nfev:
            break
        g_free = g[free]
        if tr_solver == "exact":
            jac_free = known_dense(jac)[:, free]
            newton = -torch.linalg.pinv(jac_free) @ f
            a, b, _ = quadratic_1d(jac_free, g_free, -g_free)
        else:
            masked = scale(jac, cols=free.to(g.dtype) / scale_inv)
            newton = -cgls(masked, f)[free] / scale_inv[free]
            a, b, _ = quadratic_1d(jac, g, -g)
        reduction = -1.0
        while reduction <= 0 and residuals.nfev < max_nfev:
            step_free, on_bound_free, region_hit = _dogleg_step(
                x[free], newton, g_free, a, b, delta / scale_inv[free], lb[free], ub[free]
            )
            step = torch.zeros_like(x)
            step[free] = step_free
            if tr_solver == "exact":
                predicted = -evaluate_quadratic(jac_free, g_free, step_free)
            else:
                predicted = -evaluate_quadratic(jac, g, step)
            x_trial = torch.clamp(x + step, lb, ub)
            f_trial = residuals(x_trial)
            step_h_norm = float((step * scale_inv).abs().max())
            if not bool(torch.isfinite(f_trial).all()):
                delta = 0.25 * step_h_norm
                continue
            cost_trial = cost_of(f_trial, loss)
            reduction = cost - cost_trial
            delta, ratio = update_radius(delta, reduction, predicted, step_h_norm, region_hit)
            status = st.step_termination(
                reduction,
                cost,
                float(torch.linalg.vector_norm(step)),
                float(torch.linalg.vector_norm(x)),
                ratio,
                ftol,
                xtol,
            )
            if status is not None:
                break
        if reduction > 0:
            on_bound[free] = on_bound_free
            x = torch.where(on_bound == -1, lb, torch.where(on_bound == 1, ub, x_trial))
            f_true = f_trial
            jac, f, cost = residuals.linearize(x, f_true, loss)
            g = rmatvec(jac, f)
            if x_scale is None:
                scale_inv = jacobian_scale(known_dense(jac), scale_inv)
    return Solution(
        x=x,
        cost=cost,
        fun=f_true,
        jac=jac,
        grad=g_full,
        optimality=g_norm,
        active_mask=on_bound,
        status=st.MAX_NFEV if status is None else status,
    )


def _dogleg_step(
    x: Tensor,
    newton: Tensor,
    g: Tensor,
    a: float,
    b: float,
    region: Tensor,
    lb: Tensor,
    ub: Tensor,
) -> tuple[Tensor, Tensor, bool]:
    r"""The dogleg step in the box :math:`\{p : l - x \le p \le u - x,\ |p| \le r\}`.

    Returns ``(step, bound_hits, region_hit)``: the step; per coordinate -1/1 where it ends
    on the lower/upper bound of the feasible box (0 elsewhere); whether it ends on the
    trust region's boundary.
    """
    low_original, high_original = lb - x, ub - x
    low = torch.maximum(low_original, -region)
    high = torch.minimum(high_original, region)
    hits_low_original, hits_high_original = low == low_original, high == high_original
    hits_low_region, hits_high_region = low == -region, high == region
    bound_hits = torch.zeros_like(x, dtype=torch.int64)
    if in_bounds(newton, low, high):
        return newton, bound_hits, False
    to_bounds, _ = step_to_bound(torch.zeros_like(x), -g, low, high)
    cauchy = -minimize_quadratic_1d(a, b, 0.0, to_bounds)[0] * g
    towards_newton = newton - cauchy
    stride, hits = step_to_bound(cauchy, towards_newton, low, high)
    bound_hits[(hits < 0) & hits_low_original] = -1
    bound_hits[(hits > 0) & hits_high_original] = 1
    region_hit = bool(((hits < 0) & hits_low_region | (hits > 0) & hits_high_region).any())
    return cauchy + stride * towards_newton, bound_hits, region_hit
