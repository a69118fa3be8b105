r"""Levenberg-Marquardt, as MINPACK's ``lmder`` (Moré 1977), the rules SciPy's ``"lm"`` runs.

Each iteration solves the scaled trust-region problem

.. math:: \min_p \tfrac12\|f + Jp\|^2 \quad\text{s.t.}\quad \|Dp\| \le \Delta,

whose solution is :math:`p = -(J^\top J + \lambda D^2)^{-1} J^\top f` for the
Levenberg-Marquardt parameter :math:`\lambda \ge 0` with :math:`\|Dp\|` within 10% of
:math:`\Delta` (:func:`lm_parameter_step`, MINPACK's ``lmpar`` from an SVD of :math:`JD^{-1}` where
MINPACK factors :math:`J` by QR).
:math:`D = \operatorname{diag}(d)`: with ``x_scale="jac"`` the running maximum of the
Jacobian's column norms, else ``1 / x_scale``.

With :math:`\|f\|` the residual norm, :math:`\|f_+\|` at the trial point:

- actual reduction :math:`a = 1 - (\|f_+\|/\|f\|)^2` (-1 if :math:`\|f_+\| \ge 10\|f\|`),
- predicted :math:`r = (\|Jp\|/\|f\|)^2 + 2\lambda(\|Dp\|/\|f\|)^2`, ratio :math:`\rho = a/r`;
- :math:`\rho \le 1/4`: :math:`\Delta \leftarrow \mu \min(\Delta, 10\|Dp\|)`,
  :math:`\lambda \leftarrow \lambda/\mu` with :math:`\mu \in [0.1, 0.5]` from a quadratic
  fit of the reduction along :math:`p`; :math:`\rho \ge 3/4` (or :math:`\lambda = 0`):
  :math:`\Delta \leftarrow 2\|Dp\|`, :math:`\lambda \leftarrow \lambda/2`;
- the step is taken when :math:`\rho \ge 10^{-4}`.

Stopping (MINPACK's tests, SciPy's statuses):

- gtol (1): :math:`\max_j |J_j^\top f| / (\|J_j\|\,\|f\|) \le` gtol, the largest cosine
  between the residual and a column of :math:`J` (or :math:`f = 0`);
- ftol (2): :math:`|a| \le` ftol and :math:`r \le` ftol (and :math:`\rho \le 2`);
- xtol (3): :math:`\Delta \le` xtol :math:`\|Dx\|`; both (4);
- ``max_nfev`` evaluations (0).

Reference: J. J. Moré, "The Levenberg-Marquardt algorithm: implementation and theory",
Lecture Notes in Math. 630, 105-116, 1977; J. J. Moré, B. S. Garbow, K. E. Hillstrom,
*User Guide for MINPACK-1*, Argonne ANL-80-74, 1980.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from descend.least_squares import status as st
from descend.least_squares.operator import column_norms, jacobian_scale, known_dense
from descend.least_squares.residuals import Residuals
from descend.least_squares.result import Solution

#: MINPACK's ``factor``: the first radius is this times :math:`\|Dx_0\|` (or this, if 0)
INITIAL_RADIUS_FACTOR = 100.0


def levenberg_marquardt(
    residuals: Residuals,
    x0: Tensor,
    f0: Tensor,
    *,
    ftol: float,
    xtol: float,
    gtol: float,
    max_nfev: int,
    x_scale: Tensor | None,
) -> Solution:
    """Minimize :math:`\\tfrac12\\|f(x)\\|^2` from ``x0`` (where ``f0 = f(x0)``), unbounded.

    ``x_scale`` None means ``"jac"`` (scale by the Jacobian's column norms).
    """
    x, f = x0, f0
    m = f.numel()
    fnorm = float(torch.linalg.vector_norm(f))
    lm_parameter = 0.0
    inverse_scale = None if x_scale is None else 1.0 / x_scale
    first = True
    status: int | None = None
    while status is None:
        jac = known_dense(residuals.jacobian(x, m))
        jac_x = x
        norms = column_norms(jac)
        if first:
            diag = jacobian_scale(jac) if inverse_scale is None else inverse_scale
            x_norm = float(torch.linalg.vector_norm(diag * x))
            delta = INITIAL_RADIUS_FACTOR * x_norm if x_norm != 0 else INITIAL_RADIUS_FACTOR
        if _largest_cosine(jac, f, norms, fnorm) <= gtol:
            status = st.GTOL
            break
        if x_scale is None:
            diag = torch.maximum(diag, norms)
        u, s, vh = torch.linalg.svd(jac / diag, full_matrices=False)
        uf = f @ u
        while True:
            p_scaled, lm_parameter = lm_parameter_step(s, vh.T, uf, delta, lm_parameter)
            p = p_scaled / diag
            p_norm = float(torch.linalg.vector_norm(p_scaled))
            if first:
                delta = min(delta, p_norm)
            x_trial = x + p
            f_trial = residuals(x_trial)
            fnorm_trial = float(torch.linalg.vector_norm(f_trial))
            if not math.isfinite(fnorm_trial):
                fnorm_trial = math.inf
            actual = 1.0 - (fnorm_trial / fnorm) ** 2 if 0.1 * fnorm_trial < fnorm else -1.0
            model = float(torch.linalg.vector_norm(jac @ p)) / fnorm
            damping = math.sqrt(lm_parameter) * p_norm / fnorm
            predicted = model**2 + 2.0 * damping**2
            directional = -(model**2 + damping**2)
            ratio = actual / predicted if predicted != 0 else 0.0
            if ratio <= 0.25:
                shrink = 0.5 if actual >= 0 else 0.5 * directional / (directional + 0.5 * actual)
                if 0.1 * fnorm_trial >= fnorm or shrink < 0.1:
                    shrink = 0.1
                delta = shrink * min(delta, p_norm / 0.1)
                lm_parameter /= shrink
            elif lm_parameter == 0 or ratio >= 0.75:
                delta = p_norm / 0.5
                lm_parameter *= 0.5
            accepted = ratio >= 1e-4
            if accepted:
                x, f, fnorm = x_trial, f_trial, fnorm_trial
                x_norm = float(torch.linalg.vector_norm(diag * x))
                first = False
            ftol_holds = abs(actual) <= ftol and predicted <= ftol and 0.5 * ratio <= 1
            xtol_holds = delta <= xtol * x_norm
            if ftol_holds and xtol_holds:
                status = st.FTOL_AND_XTOL
            elif ftol_holds:
                status = st.FTOL
            elif xtol_holds:
                status = st.XTOL
            elif residuals.nfev >= max_nfev:
                status = st.MAX_NFEV
            if status is not None or accepted:
                break
    if jac_x is not x:
        jac = known_dense(residuals.jacobian(x, m))
    grad = f @ jac
    return Solution(
        x=x,
        cost=0.5 * float(f @ f),
        fun=f,
        jac=jac,
        grad=grad,
        optimality=float(grad.abs().max()),
        active_mask=torch.zeros_like(x, dtype=torch.int64),
        status=status,
    )


def _largest_cosine(jac: Tensor, f: Tensor, norms: Tensor, fnorm: float) -> float:
    r""":math:`\max_j |J_j^\top f| / (\|J_j\|\,\|f\|)` over the nonzero columns; 0 if
    :math:`f = 0`."""
    if fnorm == 0:
        return 0.0
    nonzero = norms != 0
    if not bool(nonzero.any()):
        return 0.0
    cosines = (f @ jac)[nonzero].abs() / (norms[nonzero] * fnorm)
    return float(cosines.max())


def lm_parameter_step(
    s: Tensor, v: Tensor, uf: Tensor, delta: float, lm_parameter: float
) -> tuple[Tensor, float]:
    r"""MINPACK's ``lmpar`` in scaled variables: the step :math:`q(\lambda) = -(\hat J^\top
    \hat J + \lambda I)^{-1} \hat J^\top f = -V \frac{s \odot u}{s^2 + \lambda}` of
    :math:`\hat J = JD^{-1} = U S V^\top` (:math:`u = U^\top f`) with :math:`\|q\|` within
    10% of :math:`\Delta`, or the Gauss-Newton step (:math:`\lambda = 0`) if it is no longer
    than :math:`1.1\Delta`.

    Moré's iteration from the previous :math:`\lambda`: with :math:`\phi(\lambda) =
    \|q(\lambda)\| - \Delta`,

    .. math:: \lambda_+ = \max\Big(\lambda_l,\ \lambda - \frac{\phi}{\phi'}
              \frac{\|q\|}{\Delta}\Big), \qquad
              \phi' = -\frac{1}{\|q\|}\sum_i \frac{s_i^2 u_i^2}{(s_i^2 + \lambda)^3},

    the Newton step for :math:`1/\|q\| - 1/\Delta`, kept in a bracket
    :math:`[\lambda_l, \lambda_u]` that starts at the Newton step from 0 (0 when
    :math:`\hat J` is rank deficient) and :math:`\|\hat J^\top f\|/\Delta`, at most 10
    iterations. Returns ``(q, lambda)``.
    """
    tiny = torch.finfo(s.dtype).tiny
    suf = s * uf
    nonzero = s != 0
    full_rank = bool(nonzero.all()) and s.numel() == v.shape[0]
    q = -v @ torch.where(nonzero, uf / torch.where(nonzero, s, 1.0), 0.0)
    q_norm = float(torch.linalg.vector_norm(q))
    fp = q_norm - delta
    if fp <= 0.1 * delta:
        return q, 0.0

    def curvature(parameter: float) -> float:
        return float((suf.square() / (s.square() + parameter).pow(3)).sum())

    lower = fp * q_norm**2 / (delta * curvature(0.0)) if full_rank else 0.0
    gradient_norm = float(torch.linalg.vector_norm(suf))
    upper = gradient_norm / delta
    if upper == 0:
        upper = tiny / min(delta, 0.1)
    parameter = min(max(lm_parameter, lower), upper)
    if parameter == 0:
        parameter = gradient_norm / q_norm
    for iteration in range(1, 11):
        if parameter == 0:
            parameter = max(tiny, 0.001 * upper)
        q = -v @ (suf / (s.square() + parameter))
        q_norm = float(torch.linalg.vector_norm(q))
        previous, fp = fp, q_norm - delta
        if abs(fp) <= 0.1 * delta or (lower == 0 and previous < 0 and fp <= previous):
            break
        if iteration == 10:
            break
        correction = fp * q_norm**2 / (delta * curvature(parameter))
        if fp > 0:
            lower = max(lower, parameter)
        if fp < 0:
            upper = min(upper, parameter)
        parameter = max(lower, parameter + correction)
    return q, parameter
