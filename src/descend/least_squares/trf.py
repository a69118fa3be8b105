r"""Trust Region Reflective (``"trf"``): least squares within a box, by interior steps.

Coleman and Li's reformulation turns the box :math:`l \le x \le u` into scaling: with
:math:`v` the Coleman-Li vector (:func:`~descend.least_squares.bounds.coleman_li_scaling`,
the distance to the bound the negative gradient points at), first-order optimality is
:math:`v \odot g = 0`, and in the variables :math:`\hat x = D^{-1}x`,
:math:`D = \operatorname{diag}(v^{1/2} \odot \sigma)` (:math:`\sigma` the ``x_scale``), each
iteration solves

.. math:: \min_{\hat p} \tfrac12 \|f + J D \hat p\|^2 + \tfrac12 \hat p^\top C \hat p
          \quad\text{s.t.}\quad \|\hat p\| \le \Delta,
          \qquad C = \operatorname{diag}(g \odot \partial v \odot \sigma),

exactly (``tr_solver="exact"``: one SVD of :math:`[JD;\ C^{1/2}]`, then Moré's iteration)
or in the plane of the scaled gradient and an approximate Gauss-Newton direction from
damped CGLS (``"lsmr"``: only products with :math:`J`, so matrix-free). A step that
would leave the box is cut at the boundary and compared with its reflection and with the
scaled steepest-descent step; the best model value wins, kept a factor
:math:`\theta = \max(0.995, 1 - \|v \odot g\|_\infty)` inside. Without bounds this is a
plain trust-region Gauss-Newton (Levenberg-Marquardt) method.

Radius: the usual ratio rule (:func:`~descend.least_squares.trust_region.update_radius`).
Stopping: gtol (1) :math:`\|v \odot g\|_\infty <` gtol; ftol (2) and xtol (3) by
:func:`~descend.least_squares.status.step_termination`; ``max_nfev`` (0).

References:
    M. A. Branch, T. F. Coleman, Y. Li, "A subspace, interior, and conjugate gradient
    method for large-scale bound-constrained minimization problems", SIAM J. Sci. Comput.
    21(1), 1-23, 1999. SciPy's ``scipy/optimize/_lsq/trf.py`` (N. Mayorov), whose rules
    these are.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from descend.least_squares import status as st
from descend.least_squares.bounds import (
    active_constraints,
    coleman_li_scaling,
    in_bounds,
    step_to_bound,
    strictly_feasible,
    unbounded,
)
from descend.least_squares.cgls import cgls
from descend.least_squares.losses import RobustLoss, cost_of
from descend.least_squares.operator import (
    Jacobian,
    jacobian_scale,
    known_dense,
    matvec,
    rmatvec,
    scale,
)
from descend.least_squares.residuals import Residuals
from descend.least_squares.result import Solution
from descend.least_squares.trust_region import (
    evaluate_quadratic,
    intersect_trust_region,
    levenberg_marquardt_step,
    minimize_quadratic_1d,
    quadratic_1d,
    solve_trust_region_2d,
    update_radius,
)


def trust_region_reflective(
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
    """Minimize the cost from a strictly feasible ``x0`` (``f0 = f(x0)``) within the box.

    ``x_scale`` None means ``"jac"``.
    """
    bounded = not unbounded(lb, ub)
    x, f_true = x0, f0
    jac, f, cost = residuals.linearize(x, f_true, loss)
    g = rmatvec(jac, f)
    scale_inv = jacobian_scale(known_dense(jac)) if x_scale is None else 1.0 / x_scale
    v, dv = coleman_li_scaling(x, g, lb, ub)
    v = torch.where(dv != 0, v * scale_inv, v)
    delta = float(torch.linalg.vector_norm(x0 * scale_inv / v.sqrt())) or 1.0
    alpha = 0.0
    status: int | None = None
    while True:
        v, dv = coleman_li_scaling(x, g, lb, ub)
        g_norm = float((g * v).abs().max())
        if g_norm < gtol:
            status = st.GTOL
        if status is not None or residuals.nfev >= max_nfev:
            break
        v = torch.where(dv != 0, v * scale_inv, v)
        d = v.sqrt() / scale_inv
        diag_h = g * dv / scale_inv
        g_h = d * g
        jac_h = scale(jac, cols=d)
        if tr_solver == "exact":
            if bounded:
                augmented = torch.cat([known_dense(jac_h), torch.diag(diag_h.sqrt())])
                f_augmented = torch.cat([f, torch.zeros_like(g)])
            else:
                augmented, f_augmented = known_dense(jac_h), f
            u, s, vh = torch.linalg.svd(augmented, full_matrices=False)
            uf = f_augmented @ u
        else:
            subspace, b_s, g_s = _subspace(jac_h, f, g_h, diag_h, delta)
        theta = max(0.995, 1.0 - g_norm)
        reduction = -1.0
        while reduction <= 0 and residuals.nfev < max_nfev:
            if tr_solver == "exact":
                p_h, alpha = levenberg_marquardt_step(
                    s, vh.T, uf, delta, alpha, m=augmented.shape[0], rtol=0.01, to_boundary=True
                )
            else:
                p_h = subspace @ solve_trust_region_2d(b_s, g_s, delta)
            step, step_h, predicted = _select_step(
                x, jac_h, diag_h, g_h, d * p_h, p_h, d, delta, lb, ub, theta
            )
            x_trial = strictly_feasible(x + step, lb, ub, rstep=0)
            f_trial = residuals(x_trial)
            step_h_norm = float(torch.linalg.vector_norm(step_h))
            if not bool(torch.isfinite(f_trial).all()):
                delta = 0.25 * step_h_norm
                continue
            cost_trial = cost_of(f_trial, loss)
            reduction = cost - cost_trial
            delta_next, ratio = update_radius(
                delta, reduction, predicted, step_h_norm, step_h_norm > 0.95 * delta
            )
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
            if delta_next > 0:
                alpha *= delta / delta_next
            delta = delta_next
        if reduction > 0:
            x, f_true = x_trial, f_trial
            jac, f, cost = residuals.linearize(x, f_true, loss)
            g = rmatvec(jac, f)
            if x_scale is None:
                scale_inv = jacobian_scale(known_dense(jac), scale_inv)
    return Solution(
        x=x,
        cost=cost,
        fun=f_true,
        jac=jac,
        grad=g,
        optimality=g_norm,
        active_mask=active_constraints(x, lb, ub, rtol=xtol),
        status=st.MAX_NFEV if status is None else status,
    )


def _subspace(
    jac_h: Jacobian, f: Tensor, g_h: Tensor, diag_h: Tensor, delta: float
) -> tuple[Tensor, Tensor, Tensor]:
    r"""The plane of :math:`\hat g` and a damped Gauss-Newton direction, and the model on it:
    ``(S, S^T (J^T J + C) S, S^T g)`` with :math:`S` orthonormal (n x 2).

    The damping adds to :math:`C` the curvature :math:`-q_\min/\Delta^2` of the model's
    minimum :math:`q_\min` along :math:`-\hat g` within the radius, which regularizes a
    rank-deficient :math:`J` (Byrd, Schnabel, Shultz 1988, eq. 3.4).
    """
    a, b, _ = quadratic_1d(jac_h, g_h, -g_h, diag=diag_h)
    to_boundary = delta / float(torch.linalg.vector_norm(g_h))
    regularization = -minimize_quadratic_1d(a, b, 0.0, to_boundary)[1] / delta**2
    gauss_newton = cgls(jac_h, f, (diag_h + regularization).clamp_min(0.0).sqrt())
    subspace, _ = torch.linalg.qr(torch.stack([g_h, gauss_newton], dim=1))
    js = torch.stack([matvec(jac_h, subspace[:, 0]), matvec(jac_h, subspace[:, 1])], dim=1)
    b_s = js.T @ js + (subspace.T * diag_h) @ subspace
    return subspace, b_s, subspace.T @ g_h


def _select_step(
    x: Tensor,
    jac_h: Jacobian,
    diag_h: Tensor,
    g_h: Tensor,
    p: Tensor,
    p_h: Tensor,
    d: Tensor,
    delta: float,
    lb: Tensor,
    ub: Tensor,
    theta: float,
) -> tuple[Tensor, Tensor, float]:
    r"""The step to take, in both spaces, and its predicted reduction: the trust-region
    step ``p`` if it stays in the box, else the best of (a) ``p`` cut at the boundary,
    (b) its reflection off the boundary, (c) the scaled steepest-descent step, each kept a
    factor :math:`\theta` inside."""
    if in_bounds(x + p, lb, ub):
        return p, p_h, -evaluate_quadratic(jac_h, g_h, p_h, diag=diag_h)
    p_stride, hits = step_to_bound(x, p, lb, ub)
    r_h = torch.where(hits != 0, -p_h, p_h)
    r = d * r_h
    p = p * p_stride
    p_h = p_h * p_stride
    x_on_bound = x + p
    # the reflected direction leaves first the box or the trust region
    _, to_region = intersect_trust_region(p_h, r_h, delta)
    to_bound, _ = step_to_bound(x_on_bound, r, lb, ub)
    r_stride = min(to_bound, to_region)
    if r_stride > 0:
        r_low = (1 - theta) * p_stride / r_stride
        r_high = theta * to_bound if r_stride == to_bound else to_region
    else:
        r_low, r_high = 0.0, -1.0
    if r_low <= r_high:
        a, b, c = quadratic_1d(jac_h, g_h, r_h, s0=p_h, diag=diag_h)
        r_stride, r_value = minimize_quadratic_1d(a, b, r_low, r_high, c=c)
        r_h = p_h + r_stride * r_h
        r = d * r_h
    else:
        r_value = math.inf
    p = theta * p
    p_h = theta * p_h
    p_value = evaluate_quadratic(jac_h, g_h, p_h, diag=diag_h)
    ag_h = -g_h
    ag = d * ag_h
    to_region = delta / float(torch.linalg.vector_norm(ag_h))
    to_bound, _ = step_to_bound(x, ag, lb, ub)
    ag_stride = theta * to_bound if to_bound < to_region else to_region
    a, b, _ = quadratic_1d(jac_h, g_h, ag_h, diag=diag_h)
    ag_stride, ag_value = minimize_quadratic_1d(a, b, 0.0, ag_stride)
    if p_value < r_value and p_value < ag_value:
        return p, p_h, -p_value
    if r_value < p_value and r_value < ag_value:
        return r, r_h, -r_value
    return ag_stride * ag, ag_stride * ag_h, -ag_value
