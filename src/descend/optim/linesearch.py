r"""Line searches: how far to move along a descent direction, as functions of floats.

Given parameters :math:`x`, a direction :math:`d` and the line function

.. math::
    \phi(t) = f(x + t d), \qquad \phi'(t) = \nabla f(x + t d)^\top d,

a line search picks a step :math:`t > 0`. Two searches are offered, both working on plain
Python floats so they are independent of torch and cheap to test:

* :func:`backtracking_armijo` accepts the first trial of :math:`t_0, \rho t_0, \rho^2 t_0,
  \dots` meeting the sufficient-decrease (Armijo) condition

  .. math:: \phi(t) \le \phi(0) + c_1 t\, \phi'(0).

* :func:`strong_wolfe` finds a step meeting the strong Wolfe conditions

  .. math::
      \phi(t) \le \phi(0) + c_1 t\, \phi'(0), \qquad |\phi'(t)| \le c_2\, |\phi'(0)|,

  with ``0 < c1 < c2 < 1``, by Nocedal & Wright's bracketing phase and zoom
  (Numerical Optimization, 2nd ed., Algorithms 3.5 and 3.6): trial steps grow until an
  interval is known to contain such a step, then the interval shrinks. New trials come from
  the cubic interpolating :math:`\phi` and :math:`\phi'` at two points (N&W eq. 3.59),
  falling back to the quadratic through :math:`\phi(a), \phi'(a), \phi(b)` and then to
  bisection. Safeguards: an extrapolated trial lies in :math:`[t + 1.1 (t - t_-),\,
  t + 4 (t - t_-)]` (the factors of Moré & Thuente's MINPACK-2 ``dcsrch``); a zoom trial
  stays 1 % of the interval's width away from its ends, and when two zoom iterations have
  not shrunk the interval to 66 % of its width the next trial bisects it (as ``dcsrch``
  does), so interpolation is trusted where it is exact (quadratics) without stalling where
  it is not. A trial where f or :math:`\phi'` is inf or NaN counts as "too far": the
  interval's end moves there and the next trial bisects towards the last finite point.

Failures are results, not exceptions: a direction that is not a descent direction
(:math:`\phi'(0) \ge 0`), a function too flat for any decrease to be measured at the
precision of f, an interval of uncertainty shrunk below rounding, or a spent evaluation
budget each give ``success=False`` with a message, and the result then carries the best
(lowest f) point evaluated, which is :math:`t = 0` if none improved. A trial that does not
move x at all (x + t d rounds to x) also ends the search.

:func:`~descend.optim.line_search_optimizer.search` runs these searches along a torch
closure (:class:`~descend.optim.line_search_optimizer.LineFunction`), and
:class:`~descend.optim.line_search_optimizer.LineSearchOptimizer` is the base of the
methods that choose a direction and then search along it.


Example:
    >>> phi = lambda t: ((t - 3.0) ** 2, 2.0 * (t - 3.0))  # f(x + t d) with its slope
    >>> res = strong_wolfe(phi, 9.0, -6.0, t0=1.0, c2=0.1)  # t = 1 fails the curvature test
    >>> res.t, res.nfev  # the extrapolating cubic is exact on a quadratic
    (3.0, 2)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from descend.validation import check_int, check_number, check_positive

Phi = Callable[[float], tuple[float, float]]

#: float64 machine epsilon: the default relative rounding level of f
DOUBLE_EPS = 2.220446049250313e-16
#: default evaluation budget of one line search
MAX_EVALS = 30
#: extrapolation bounds, as multiples of the last step increment (MINPACK-2 dcsrch)
EXTRAPOLATE_MIN, EXTRAPOLATE_MAX = 1.1, 4.0
#: a zoom trial stays this fraction of the interval's width away from both ends
ZOOM_MARGIN = 0.01
#: bisect when two zoom iterations did not shrink the interval below this fraction (dcsrch)
ZOOM_SHRINK = 0.66


@dataclass(frozen=True)
class LineSearchResult:
    """What a line search found.

    Attributes:
        t: the accepted step; on failure the best (lowest f) step evaluated, or 0.
        f: :math:`\\phi(t)`.
        dphi: :math:`\\phi'(t)`.
        nfev: evaluations of :math:`\\phi` this search made.
        success: the requested conditions hold at ``t``.
        message: what happened, in words.
    """

    t: float
    f: float
    dphi: float
    nfev: int
    success: bool
    message: str


@dataclass
class _Point:
    t: float
    f: float
    d: float

    @property
    def finite(self) -> bool:
        return math.isfinite(self.f) and math.isfinite(self.d)


class _Trials:
    """Evaluates phi within a budget and keeps the lowest finite point (t = 0 included)."""

    def __init__(self, phi: Phi, f0: float, dphi0: float, max_evals: int) -> None:
        self.phi = phi
        self.max_evals = max_evals
        self.nfev = 0
        self.best = _Point(0.0, f0, dphi0)

    @property
    def spent(self) -> bool:
        return self.nfev >= self.max_evals

    def __call__(self, t: float) -> _Point:
        f, d = self.phi(t)
        self.nfev += 1
        point = _Point(t, float(f), float(d))
        if math.isfinite(point.f) and point.f < self.best.f:
            self.best = point
        return point

    def success(self, p: _Point, message: str) -> LineSearchResult:
        return LineSearchResult(p.t, p.f, p.d, self.nfev, True, message)

    def failure(self, message: str) -> LineSearchResult:
        b = self.best
        if b.t > 0:
            message += f"; returning the best step evaluated, t = {b.t:.6g} (f = {b.f:.10g})"
        return LineSearchResult(b.t, b.f, b.d, self.nfev, False, message)


def _check_constants(t0: float, c1: float, max_evals: int, eps: float) -> None:
    check_positive("t0", t0)
    check_number("c1", c1, low=0.0, high=1.0, low_open=True, high_open=True)
    check_int("max_evals", max_evals, low=1)
    check_number("eps", eps, low=0.0, high=1.0, high_open=True)


def _start_problem(f0: float, dphi0: float) -> str | None:
    if not (math.isfinite(f0) and math.isfinite(dphi0)):
        return f"phi(0) = {f0} and phi'(0) = {dphi0} must be finite to search from t = 0"
    if not dphi0 < 0:
        return f"not a descent direction: phi'(0) = {dphi0:.6g} >= 0 (f does not decrease along d)"
    return None


def _too_flat(t: float, f0: float, dphi0: float, eps: float) -> bool:
    """The first-order decrease t |phi'(0)| is below the rounding level of f."""
    return t * -dphi0 <= eps * abs(f0)


def _flat_message(t: float, f0: float, dphi0: float, eps: float) -> str:
    return (
        f"no decrease measurable: the predicted decrease t |phi'(0)| = {t * -dphi0:.3g} at "
        f"t = {t:.3g} is below the rounding level eps |f| = {eps * abs(f0):.3g} of f"
    )


def backtracking_armijo(
    phi: Phi,
    f0: float,
    dphi0: float,
    t0: float = 1.0,
    c1: float = 1e-4,
    shrink: float = 0.5,
    max_evals: int = MAX_EVALS,
    *,
    eps: float = DOUBLE_EPS,
) -> LineSearchResult:
    r"""The first step of :math:`t_0, \rho t_0, \rho^2 t_0, \dots` with sufficient decrease.

    Accepts :math:`t` when :math:`\phi(t)` is finite and
    :math:`\phi(t) \le \phi(0) + c_1 t\,\phi'(0)` (Nocedal & Wright, Algorithm 3.1).
    A non-finite value counts as a rejected trial, so the search shrinks back into the
    region where f is finite.

    Args:
        phi: ``phi(t) -> (f(x + t d), grad f(x + t d) . d)`` as floats.
        f0: :math:`\phi(0)`.
        dphi0: :math:`\phi'(0)`, which must be negative.
        t0: first trial step, > 0.
        c1: sufficient-decrease constant in (0, 1).
        shrink: factor :math:`\rho \in (0, 1)` applied to a rejected step.
        max_evals: evaluation budget, >= 1.
        eps: relative rounding level of f (float32 objectives: ``1.19e-7``); the search
            stops once the predicted decrease falls below it.

    Returns:
        :class:`LineSearchResult`; ``success`` means the Armijo condition holds at ``t``.
    """
    check_number("shrink", shrink, low=0.0, high=1.0, low_open=True, high_open=True)
    _check_constants(t0, c1, max_evals, eps)
    return _backtracking_armijo(phi, f0, dphi0, t0, c1, shrink, max_evals, eps=eps)


def _backtracking_armijo(
    phi: Phi,
    f0: float,
    dphi0: float,
    t0: float = 1.0,
    c1: float = 1e-4,
    shrink: float = 0.5,
    max_evals: int = MAX_EVALS,
    *,
    eps: float = DOUBLE_EPS,
) -> LineSearchResult:
    problem = _start_problem(f0, dphi0)
    trials = _Trials(phi, f0, dphi0, max_evals)
    if problem:
        return trials.failure(problem)
    t = t0
    while not trials.spent:
        if _too_flat(t, f0, dphi0, eps):
            return trials.failure(_flat_message(t, f0, dphi0, eps))
        p = trials(t)
        if p.finite and p.f <= f0 + c1 * t * dphi0:
            return trials.success(p, f"Armijo condition holds at t = {t:.6g}")
        t *= shrink
    return trials.failure(f"no Armijo step within max_evals = {max_evals} evaluations")


def strong_wolfe(
    phi: Phi,
    f0: float,
    dphi0: float,
    t0: float = 1.0,
    c1: float = 1e-4,
    c2: float = 0.9,
    max_evals: int = MAX_EVALS,
    *,
    t_max: float | None = None,
    eps: float = DOUBLE_EPS,
) -> LineSearchResult:
    r"""A step satisfying the strong Wolfe conditions, by bracketing and zoom.

    .. math::
        \phi(t) \le \phi(0) + c_1 t\,\phi'(0), \qquad |\phi'(t)| \le c_2 |\phi'(0)|.

    Nocedal & Wright, Numerical Optimization (2nd ed.), Algorithm 3.5 (bracketing) and
    Algorithm 3.6 (zoom), with safeguarded cubic interpolation (see the module docstring).
    Use ``c2 = 0.9`` for (quasi-)Newton methods and ``c2 = 0.1`` for nonlinear conjugate
    gradient.

    Args:
        phi: ``phi(t) -> (f(x + t d), grad f(x + t d) . d)`` as floats.
        f0: :math:`\phi(0)`.
        dphi0: :math:`\phi'(0)`, which must be negative.
        t0: first trial step, > 0.
        c1: sufficient-decrease constant, 0 < c1 < c2.
        c2: curvature constant, c1 < c2 < 1.
        max_evals: evaluation budget, >= 1.
        t_max: largest step the search may try (None: no limit).
        eps: relative rounding level of f (float32 objectives: ``1.19e-7``).

    Returns:
        :class:`LineSearchResult`; ``success`` means both conditions hold at ``t``.

    Example:
        >>> res = strong_wolfe(lambda t: (math.exp(t) - 2 * t, math.exp(t) - 2), 1.0, -1.0)
        >>> res.success, abs(res.dphi) <= 0.9
        (True, True)
    """
    check_number("c2", c2, low=0.0, high=1.0, low_open=True, high_open=True)
    if not c1 < c2:
        raise ValueError(f"c1 must be smaller than c2 (0 < c1 < c2 < 1), got c1={c1}, c2={c2}")
    if t_max is not None:
        check_positive("t_max", t_max)
    _check_constants(t0, c1, max_evals, eps)
    return _strong_wolfe(phi, f0, dphi0, t0, c1, c2, max_evals, t_max=t_max, eps=eps)


def _strong_wolfe(
    phi: Phi,
    f0: float,
    dphi0: float,
    t0: float = 1.0,
    c1: float = 1e-4,
    c2: float = 0.9,
    max_evals: int = MAX_EVALS,
    *,
    t_max: float | None = None,
    eps: float = DOUBLE_EPS,
) -> LineSearchResult:
    if t_max is None:
        t_max = math.inf
    problem = _start_problem(f0, dphi0)
    trials = _Trials(phi, f0, dphi0, max_evals)
    if problem:
        return trials.failure(problem)
    armijo_slope = c1 * dphi0
    curvature = -c2 * dphi0

    def armijo(p: _Point) -> bool:
        return p.f <= f0 + armijo_slope * p.t

    prev = _Point(0.0, f0, dphi0)
    t = min(t0, t_max)
    while True:
        if trials.spent:
            return trials.failure(f"no strong Wolfe step within max_evals = {max_evals}")
        p = trials(t)
        if not p.finite or not armijo(p) or p.f >= prev.f:
            return _zoom(trials, prev, p, armijo, curvature, f0, dphi0, eps)
        if abs(p.d) <= curvature:
            return trials.success(p, f"strong Wolfe conditions hold at t = {t:.6g}")
        if p.d >= 0:
            return _zoom(trials, p, prev, armijo, curvature, f0, dphi0, eps)
        if t >= t_max:
            return trials.failure(
                f"reached t_max = {t_max:g} with f still decreasing (unbounded below along d?)"
            )
        t = min(_extrapolate(prev, p), t_max)
        prev = p


def _zoom(
    trials: _Trials,
    lo: _Point,
    hi: _Point,
    armijo: Callable[[_Point], bool],
    curvature: float,
    f0: float,
    dphi0: float,
    eps: float,
) -> LineSearchResult:
    """N&W Algorithm 3.6. ``lo``: the lowest point meeting Armijo; ``hi``: the other end,
    chosen so that [lo, hi] contains a strong Wolfe step (or hi is non-finite)."""
    widths = [math.inf, math.inf]  # the interval's width one and two iterations ago
    while True:
        if trials.spent:
            return trials.failure(
                f"no strong Wolfe step within max_evals = {trials.max_evals} evaluations "
                f"(interval [{min(lo.t, hi.t):.6g}, {max(lo.t, hi.t):.6g}])"
            )
        a, b = min(lo.t, hi.t), max(lo.t, hi.t)
        width = b - a
        if width <= 4 * DOUBLE_EPS * b:
            return trials.failure(
                f"interval of uncertainty [{a:.17g}, {b:.17g}] shrank below rounding"
            )
        if lo.t == 0 and _too_flat(b, f0, dphi0, eps):
            return trials.failure(_flat_message(b, f0, dphi0, eps))
        if width > ZOOM_SHRINK * widths[0]:
            t = 0.5 * (a + b)  # interpolation is not shrinking the interval fast enough
        else:
            t = _interpolate(lo, hi)
            t = min(max(t, a + ZOOM_MARGIN * width), b - ZOOM_MARGIN * width)
        widths = [widths[1], width]
        p = trials(t)
        if lo.t == 0 and p.f == f0 and p.d == dphi0:
            return trials.failure(
                f"x + t d rounds to x at t = {t:.3g}: the step is below the resolution of x"
            )
        if not p.finite or not armijo(p) or p.f >= lo.f:
            hi = p
            continue
        if abs(p.d) <= curvature:
            return trials.success(p, f"strong Wolfe conditions hold at t = {t:.6g}")
        if p.d * (hi.t - lo.t) >= 0:
            hi = lo
        lo = p


def _interpolate(lo: _Point, hi: _Point) -> float:
    """The minimizer of the cubic through both points, else of the quadratic, else the
    midpoint (the caller clamps it into the interval)."""
    if hi.finite:
        t = cubic_minimizer(lo.t, lo.f, lo.d, hi.t, hi.f, hi.d)
        if t is None:
            t = quadratic_minimizer(lo.t, lo.f, lo.d, hi.t, hi.f)
        if t is not None:
            return t
    return 0.5 * (lo.t + hi.t)


def _extrapolate(prev: _Point, cur: _Point) -> float:
    """Next trial beyond ``cur`` while f still falls: the cubic's minimizer, kept in
    [cur + 1.1 (cur - prev), cur + 4 (cur - prev)]."""
    step = cur.t - prev.t
    low, high = cur.t + EXTRAPOLATE_MIN * step, cur.t + EXTRAPOLATE_MAX * step
    t = cubic_minimizer(prev.t, prev.f, prev.d, cur.t, cur.f, cur.d)
    if t is None or t <= cur.t:
        return high
    return min(max(t, low), high)


def cubic_minimizer(a: float, fa: float, da: float, b: float, fb: float, db: float) -> float | None:
    r"""Minimizer of the cubic with values ``fa, fb`` and slopes ``da, db`` at ``a, b``.

    Nocedal & Wright eq. (3.59):

    .. math::
        d_1 = f'_a + f'_b - 3\frac{f_a - f_b}{a - b},\quad
        d_2 = \operatorname{sign}(b - a)\sqrt{d_1^2 - f'_a f'_b},\quad
        t = b - (b - a)\frac{f'_b + d_2 - d_1}{f'_b - f'_a + 2 d_2}.

    Returns None when the cubic has no local minimizer or the formula is not finite.
    Exact for a quadratic.
    """
    if a == b:
        return None
    d1 = da + db - 3.0 * (fa - fb) / (a - b)
    disc = d1 * d1 - da * db
    if not disc >= 0 or not math.isfinite(disc):
        return None
    d2 = math.copysign(math.sqrt(disc), b - a)
    denom = db - da + 2.0 * d2
    if denom == 0:
        return None
    t = b - (b - a) * (db + d2 - d1) / denom
    return t if math.isfinite(t) else None


def quadratic_minimizer(a: float, fa: float, da: float, b: float, fb: float) -> float | None:
    r"""Minimizer of the quadratic with value ``fa`` and slope ``da`` at ``a``, value ``fb``
    at ``b``: :math:`t = a - f'_a (b-a)^2 / (2 (f_b - f_a - f'_a (b - a)))`; None if the
    quadratic is not convex."""
    h = b - a
    curv = fb - fa - da * h
    if h == 0 or not curv > 0 or not math.isfinite(curv):
        return None
    t = a - da * h * h / (2.0 * curv)
    return t if math.isfinite(t) else None


def fixed_step(phi: Phi, f0: float, dphi0: float, t0: float = 1.0) -> LineSearchResult:
    """No search: evaluate once at ``t0`` and accept it if f and its slope are finite there
    (``torch.optim.LBFGS(line_search_fn=None)``); f may rise."""
    f, d = phi(t0)
    if math.isfinite(f) and math.isfinite(d):
        return LineSearchResult(t0, f, d, 1, True, f"fixed step t = {t0:.6g}")
    return LineSearchResult(0.0, f0, dphi0, 1, False, f"f = {f} at the fixed step t = {t0:.6g}")


# -- the search axis of an optimizer ----------------------------------------------------


#: the searches :func:`run_search` dispatches to, by name
LINE_SEARCHES = ("strong_wolfe", "backtracking")


def run_search(
    method: str, phi: Phi, f0: float, dphi0: float, t0: float, **options: Any
) -> LineSearchResult:
    """Run the line search called ``method`` without checking its constants again: an
    optimizer checks them once where it is built (:func:`check_search_constants`), not at
    every iteration. ``options`` go to the search (``c1``, ``c2``, ``max_evals``, ``eps``)."""
    if method == "strong_wolfe":
        return _strong_wolfe(phi, f0, dphi0, t0, **options)
    if method == "backtracking":
        return _backtracking_armijo(phi, f0, dphi0, t0, **options)
    raise ValueError(
        f"unknown line search method {method!r}; valid choices: {', '.join(LINE_SEARCHES)}"
    )


def check_search_constants(c1: float, c2: float | None = None) -> None:
    """0 < c1 < 1, and c1 < c2 < 1 when c2 is given."""
    check_number("c1", c1, low=0.0, high=1.0, low_open=True, high_open=True)
    if c2 is not None:
        check_number("c2", c2, low=0.0, high=1.0, low_open=True, high_open=True)
        if not c1 < c2:
            raise ValueError(f"c2 must be in (c1, 1) = ({c1:g}, 1), got c2={c2!r}")
