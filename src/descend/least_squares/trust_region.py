r"""Trust-region subproblems of least squares, and the radius update.

Near :math:`x` the cost :math:`\tfrac12\|f(x+p)\|^2` is modelled by the Gauss-Newton
quadratic

.. math:: m(p) = \tfrac12 \|f + Jp\|^2 = \tfrac12\|f\|^2 + g^\top p + \tfrac12 p^\top J^\top J p,
          \qquad g = J^\top f,

trusted within a radius :math:`\Delta`. The exact step (:func:`levenberg_marquardt_step`)
minimizes it over :math:`\|p\| \le \Delta`; the step of the 2-D subspace
(:func:`solve_trust_region_2d`) minimizes it over a plane spanned by the gradient and an
approximate Gauss-Newton direction, which is what a matrix-free solver can afford.

References:
    J. J. Moré, "The Levenberg-Marquardt algorithm: implementation and theory",
    Numerical Analysis (G. A. Watson, ed.), Lecture Notes in Math. 630, 105-116, 1977.
    J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Springer 2006, ch. 4 and 10.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from descend.least_squares.operator import Jacobian, matvec


def levenberg_marquardt_step(
    s: Tensor,
    v: Tensor,
    uf: Tensor,
    delta: float,
    alpha: float,
    *,
    m: int,
    rtol: float,
    gauss_newton_slack: float = 0.0,
    to_boundary: bool = False,
    max_iter: int = 10,
) -> tuple[Tensor, float]:
    r"""The minimizer of :math:`\tfrac12\|f + Jp\|^2` over :math:`\|p\| \le \Delta`, by Moré's
    iteration on the Levenberg-Marquardt parameter, from one SVD :math:`J = U S V^\top`.

    The solution is :math:`p(\alpha) = -(J^\top J + \alpha I)^{-1} J^\top f
    = -V \frac{s \odot u}{s^2 + \alpha}` with :math:`u = U^\top f`, and :math:`\alpha = 0`
    (the Gauss-Newton step, the pseudo-inverse one when :math:`J` is rank deficient) if
    that is no longer than :math:`(1 + \text{slack})\Delta`. Otherwise :math:`\alpha > 0`
    solves :math:`\phi(\alpha) = \|p(\alpha)\| - \Delta = 0`, by the Newton iteration on
    :math:`1/\|p\| - 1/\Delta` (which is nearly linear in :math:`\alpha`):

    .. math:: \alpha_+ = \alpha - \frac{\phi}{\phi'} \frac{\|p(\alpha)\|}{\Delta}, \qquad
              \phi'(\alpha) = -\frac{1}{\|p\|} \sum_i \frac{s_i^2 u_i^2}{(s_i^2 + \alpha)^3},

    safeguarded in a bracket :math:`[\alpha_l, \alpha_u]` with :math:`\alpha_u =
    \|J^\top f\| / \Delta` and :math:`\alpha_l = -\phi(0)/\phi'(0)` (0 if rank deficient),
    until :math:`|\phi| \le` ``rtol`` :math:`\Delta` or ``max_iter`` iterations.

    Args:
        s, v, uf: singular values (descending), right singular vectors as columns
            (n x k), and :math:`U^\top f`.
        delta: the radius :math:`\Delta > 0`.
        alpha: the previous parameter, the iteration's start (0: none).
        m: the number of residuals (for the rank threshold :math:`\epsilon\, m\, s_1`).
        rtol: relative accuracy of :math:`\|p\|` against :math:`\Delta` (MINPACK: 0.1).
        gauss_newton_slack: the Gauss-Newton step is taken while :math:`\|p\| \le
            (1 + \text{slack})\Delta` (MINPACK: 0.1).
        to_boundary: rescale the final step onto :math:`\|p\| = \Delta` exactly.
        max_iter: iterations of the parameter search.

    Returns:
        ``(p, alpha)``.
    """
    n = v.shape[0]
    suf = s * uf
    eps = torch.finfo(s.dtype).eps
    s_max = float(s[0]) if s.numel() else 0.0
    nonzero = s > eps * max(m, n) * s_max
    full_rank = m >= n and bool(nonzero.all()) and s.numel() == n
    gauss_newton = -v @ torch.where(nonzero, uf / torch.where(nonzero, s, 1.0), 0.0)
    gn_norm = float(torch.linalg.vector_norm(gauss_newton))
    if gn_norm <= (1.0 + gauss_newton_slack) * delta:
        return gauss_newton, 0.0

    def phi_and_derivative(a: float) -> tuple[float, float]:
        denom = s.square() + a
        p_norm = float(torch.linalg.vector_norm(suf / denom))
        return p_norm - delta, -float((suf.square() / denom.pow(3)).sum()) / p_norm

    upper = float(torch.linalg.vector_norm(suf)) / delta
    if upper == 0.0:  # g = 0: the model is flat, nothing to step along
        return torch.zeros_like(gauss_newton), 0.0
    if full_rank:
        phi, derivative = phi_and_derivative(0.0)
        lower = -phi / derivative
    else:
        lower = 0.0
    if alpha <= 0.0:
        alpha = max(0.001 * upper, math.sqrt(lower * upper))
    for _ in range(max_iter):
        if not lower <= alpha <= upper:
            alpha = max(0.001 * upper, math.sqrt(lower * upper))
        phi, derivative = phi_and_derivative(alpha)
        if phi < 0.0:
            upper = alpha
        ratio = phi / derivative
        lower = max(lower, alpha - ratio)
        alpha -= (phi + delta) * ratio / delta
        if abs(phi) < rtol * delta:
            break
    alpha = max(alpha, lower, torch.finfo(s.dtype).tiny)
    p = -v @ (suf / (s.square() + alpha))
    if to_boundary:
        p = p * (delta / torch.linalg.vector_norm(p))
    return p, alpha


def solve_trust_region_2d(b: Tensor, g: Tensor, delta: float) -> Tensor:
    r"""The minimizer of :math:`\tfrac12 p^\top B p + g^\top p` over :math:`\|p\| \le \Delta`
    in two dimensions (:math:`B` symmetric positive semi-definite).

    The Newton step :math:`-B^{-1}g` if it fits; otherwise the minimum lies on the circle
    :math:`p = \Delta\,(\frac{2t}{1+t^2}, \frac{1-t^2}{1+t^2})`, where the stationarity
    condition is the quartic

    .. math:: (d - b_{01})t^4 + 2(b_{00} - b_{11} + e)t^3 + 6 b_{01} t^2
              + 2(b_{11} - b_{00} + e)t - (b_{01} + d) = 0

    (:math:`B` and :math:`g` multiplied through by :math:`\Delta^2` and :math:`\Delta`;
    :math:`d, e` the components of :math:`\Delta g`); of its real roots the one with the
    least model value wins.
    """
    chol, info = torch.linalg.cholesky_ex(b)
    if int(info) == 0:
        p = -torch.cholesky_solve(g[:, None], chol)[:, 0]
        if float(p @ p) <= delta**2:
            return p
    a00, a01, a11 = (float(v) * delta**2 for v in (b[0, 0], b[0, 1], b[1, 1]))
    d, e = (float(v) * delta for v in g)
    coefficients = [-a01 + d, 2 * (a00 - a11 + e), 6 * a01, 2 * (-a00 + a11 + e), -a01 - d]
    t = _real_roots(coefficients, g.dtype)
    # t = +-inf is the point (0, -Delta), reached when the leading coefficient vanishes
    at_infinity = torch.tensor([[0.0], [-1.0]], dtype=g.dtype)
    candidates = torch.stack([2 * t / (1 + t.square()), (1 - t.square()) / (1 + t.square())])
    candidates = torch.cat([candidates, at_infinity], dim=1).to(g.device)
    p = delta * candidates
    values = 0.5 * (p * (b @ p)).sum(0) + g @ p
    return p[:, int(torch.argmin(values))]


def _real_roots(coefficients: list[float], dtype: torch.dtype) -> Tensor:
    """The real roots of a polynomial (highest power first), via its companion matrix."""
    while coefficients and coefficients[0] == 0.0:
        coefficients = coefficients[1:]
    degree = len(coefficients) - 1
    if degree < 1:
        return torch.zeros(0, dtype=dtype)
    companion = torch.zeros(degree, degree, dtype=torch.float64)
    companion[0] = -torch.tensor(coefficients[1:], dtype=torch.float64) / coefficients[0]
    if degree > 1:
        companion[1:, :-1] = torch.eye(degree - 1, dtype=torch.float64)
    roots = torch.linalg.eigvals(companion)
    return roots.real[roots.imag == 0].to(dtype)


def intersect_trust_region(x: Tensor, s: Tensor, delta: float) -> tuple[float, float]:
    r"""The two roots :math:`t_- \le 0 \le t_+` of :math:`\|x + ts\| = \Delta`, for
    :math:`\|x\| \le \Delta` and :math:`s \ne 0` (computed without cancellation)."""
    a = float(s @ s)
    b = float(x @ s)
    c = float(x @ x) - delta**2
    root = math.sqrt(max(b * b - a * c, 0.0))
    q = -(b + math.copysign(root, b))
    if q == 0.0:
        return 0.0, 0.0
    t1, t2 = q / a, c / q
    return (t1, t2) if t1 < t2 else (t2, t1)


def update_radius(
    delta: float, actual: float, predicted: float, step_norm: float, bound_hit: bool
) -> tuple[float, float]:
    r"""The new radius from the ratio :math:`\rho` of actual to predicted reduction.

    :math:`\rho < 1/4`: shrink to :math:`\tfrac14\|p\|`; :math:`\rho > 3/4` with the step on
    the boundary: double; otherwise keep. Returns ``(delta, rho)``.
    """
    if predicted > 0:
        ratio = actual / predicted
    elif predicted == actual == 0:
        ratio = 1.0
    else:
        ratio = 0.0
    if ratio < 0.25:
        delta = 0.25 * step_norm
    elif ratio > 0.75 and bound_hit:
        delta *= 2.0
    return delta, ratio


def quadratic_1d(
    jac: Jacobian,
    g: Tensor,
    s: Tensor,
    diag: Tensor | None = None,
    s0: Tensor | None = None,
) -> tuple[float, float, float]:
    r"""The model along a line, :math:`q(t) = a t^2 + b t + c` for the point
    :math:`s_0 + t s` of :math:`\tfrac12 p^\top (J^\top J + D) p + g^\top p`."""
    js = matvec(jac, s)
    a = float(js @ js)
    if diag is not None:
        a += float((s * diag) @ s)
    b = float(g @ s)
    c = 0.0
    if s0 is not None:
        j0 = matvec(jac, s0)
        b += float(j0 @ js)
        c = 0.5 * float(j0 @ j0) + float(g @ s0)
        if diag is not None:
            b += float((s0 * diag) @ s)
            c += 0.5 * float((s0 * diag) @ s0)
    return 0.5 * a, b, c


def minimize_quadratic_1d(
    a: float, b: float, low: float, high: float, c: float = 0.0
) -> tuple[float, float]:
    r"""The minimizer of :math:`a t^2 + b t + c` on :math:`[\text{low}, \text{high}]` (finite)
    and the value there: ``(t, q(t))``."""
    candidates = [low, high]
    if a != 0:
        extremum = -0.5 * b / a
        if low < extremum < high:
            candidates.append(extremum)
    values = [t * (a * t + b) + c for t in candidates]
    best = min(range(len(candidates)), key=values.__getitem__)
    return candidates[best], values[best]


def evaluate_quadratic(jac: Jacobian, g: Tensor, s: Tensor, diag: Tensor | None = None) -> float:
    r""":math:`\tfrac12 s^\top (J^\top J + D) s + g^\top s`, the model's change along ``s``."""
    js = matvec(jac, s)
    q = float(js @ js)
    if diag is not None:
        q += float((s * diag) @ s)
    return 0.5 * q + float(g @ s)
