r"""Line searches: how far to move along a descent direction.

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

:class:`LineFunction` builds :math:`\phi` from a torch closure, a list of parameters and a
flat direction: it moves the parameters in place, calls the closure, and returns the loss
and :math:`\nabla f \cdot d` with one host synchronization per evaluation, remembering the
best point seen. :func:`search` runs either line search over it and leaves the parameters
at the accepted point (with the closure's last evaluation there, so a caching objective
does not evaluate it again) or, on failure, at the best point.

Example:
    >>> phi = lambda t: ((t - 3.0) ** 2, 2.0 * (t - 3.0))  # f(x + t d) with its slope
    >>> res = strong_wolfe(phi, 9.0, -6.0, t0=1.0, c2=0.1)  # t = 1 fails the curvature test
    >>> res.t, res.nfev  # the extrapolating cubic is exact on a quadratic
    (3.0, 2)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from descend.objective import Objective
from descend.optim.optimizer import StepFailed
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


# -- the line function of a torch closure ----------------------------------------------------


class FlatParams:
    """A list of same-dtype, same-device tensors seen as one flat vector.

    Gathers the values or the gradients into a flat buffer and writes a flat vector back,
    with one kernel for a single contiguous tensor and no Python loop over elements.
    """

    def __init__(self, params: Sequence[Tensor]) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("params is empty; an optimizer needs at least one tensor")
        first = self.params[0]
        for i, p in enumerate(self.params):
            if p.dtype != first.dtype or p.device != first.device:
                raise ValueError(
                    f"all parameters must share one dtype and device; parameter 0 is "
                    f"{first.dtype} on {first.device}, parameter {i} is {p.dtype} on {p.device}"
                )
            if not p.is_floating_point():
                raise TypeError(f"parameter {i} has dtype {p.dtype}; a floating dtype is needed")
        self.dtype, self.device = first.dtype, first.device
        self.sizes = [p.numel() for p in self.params]
        self.numel = sum(self.sizes)
        self.single = len(self.params) == 1 and first.is_contiguous()
        self._work: Tensor | None = None

    @property
    def eps(self) -> float:
        """Machine epsilon of the parameters' dtype."""
        return torch.finfo(self.dtype).eps

    def empty(self, *shape: int) -> Tensor:
        return torch.empty(*shape, self.numel, dtype=self.dtype, device=self.device)

    def gather(self, out: Tensor | None = None) -> Tensor:
        """A flat copy of the parameters' values."""
        out = self.empty() if out is None else out
        if self.single:
            out.copy_(self.params[0].detach().view(-1))
        else:
            torch.cat([p.detach().reshape(-1) for p in self.params], out=out)
        return out

    def gather_grad(self, out: Tensor | None = None) -> Tensor:
        """A flat copy of the gradients (zeros where ``p.grad`` is None)."""
        out = self.empty() if out is None else out
        grads = [p.grad for p in self.params]
        if self.single and grads[0] is not None:
            out.copy_(grads[0].view(-1))
        else:
            torch.cat(
                [
                    torch.zeros_like(p).view(-1) if g is None else g.reshape(-1)
                    for p, g in zip(self.params, grads)
                ],
                out=out,
            )
        return out

    @torch.no_grad()
    def assign(self, flat: Tensor) -> None:
        """params <- flat."""
        if self.single:
            self.params[0].view(-1).copy_(flat)
        else:
            torch._foreach_copy_(self.params, self._views(flat))

    @torch.no_grad()
    def assign_axpy(self, x0: Tensor, t: float, d: Tensor) -> None:
        """params <- x0 + t d, computed in one kernel."""
        if self.single:
            torch.add(x0, d, alpha=t, out=self.params[0].view(-1))
            return
        if self._work is None:
            self._work = self.empty()
        torch.add(x0, d, alpha=t, out=self._work)
        torch._foreach_copy_(self.params, self._views(self._work))

    def _views(self, flat: Tensor) -> list[Tensor]:
        return [piece.view_as(p) for piece, p in zip(flat.split(self.sizes), self.params)]


def scalars(*tensors: Tensor) -> list[float]:
    """Several 0-d tensors as floats with one host synchronization."""
    if tensors[0].device.type == "cpu":
        return [t.item() for t in tensors]
    return torch.stack([t.detach().reshape(()).double() for t in tensors]).tolist()


class LineFunction:
    r""":math:`\phi(t) = f(x_0 + t d)` and :math:`\phi'(t) = \nabla f(x_0 + t d)^\top d`
    for a torch closure.

    Each call moves the parameters to :math:`x_0 + t d` in place (one kernel), calls the
    closure under ``torch.enable_grad()``, gathers the gradient into :attr:`grad` and
    returns ``(loss, grad . d)`` as floats with one host synchronization. The lowest-f
    point seen (:math:`t = 0` included) is kept in :attr:`best_t`, :attr:`best_f`.

    Args:
        closure: evaluates the loss at the current parameters and fills ``p.grad``.
        flat: the parameters, as :class:`FlatParams`.
        x0: the flat start (a copy: it must not alias the parameters).
        d: the flat direction.
        f0: the loss at ``x0``.
        grad: optional buffer for the gradient (allocated if None).
    """

    def __init__(
        self,
        closure: Callable[[], Tensor],
        flat: FlatParams,
        x0: Tensor,
        d: Tensor,
        f0: float,
        grad: Tensor | None = None,
    ) -> None:
        self.closure = closure
        self.flat = flat
        self.x0 = x0
        self.d = d
        self.grad = flat.empty() if grad is None else grad
        self.t = 0.0  # where the parameters are now
        self.evaluated_t: float | None = None  # where the closure last ran
        self.f = f0
        self.dphi = math.nan
        self.nfev = 0
        self.best_t, self.best_f = 0.0, f0

    def __call__(self, t: float) -> tuple[float, float]:
        self.flat.assign_axpy(self.x0, t, self.d)
        self.t = t
        with torch.enable_grad():
            loss = self.closure()
        self.nfev += 1
        self.flat.gather_grad(out=self.grad)
        if isinstance(loss, Tensor):
            f, dphi = scalars(loss, torch.dot(self.grad, self.d))
        else:
            f, dphi = float(loss), torch.dot(self.grad, self.d).item()
        self.evaluated_t, self.f, self.dphi = t, f, dphi
        if math.isfinite(f) and f < self.best_f:
            self.best_t, self.best_f = t, f
        return f, dphi

    def move_to(self, t: float) -> None:
        """Put the parameters at ``x0 + t d`` without evaluating (``t = 0``: exactly x0)."""
        if t == 0:
            self.flat.assign(self.x0)
        else:
            self.flat.assign_axpy(self.x0, t, self.d)
        self.t = t

    def finish(self, t: float) -> tuple[float, float]:
        """End at step ``t`` with the closure's last evaluation (and :attr:`grad`) there,
        evaluating once more only if the last evaluation was elsewhere."""
        if self.evaluated_t == t and self.t == t:
            return self.f, self.dphi
        return self(t)


def search(
    phi: LineFunction,
    f0: float,
    dphi0: float,
    t0: float = 1.0,
    method: str = "strong_wolfe",
    **options: float,
) -> LineSearchResult:
    r"""Run a line search over ``phi`` and leave the parameters at its outcome.

    On success, and when the search failed but found a lower f (``result.t > 0``), the
    parameters end at ``x0 + t d`` with the closure's last evaluation there (``phi.grad``
    holds the gradient); otherwise they are restored to ``x0`` exactly and the gradient
    buffers no longer describe them.

    Args:
        phi: the :class:`LineFunction` to search along.
        f0, dphi0: :math:`\phi(0)`, :math:`\phi'(0)`.
        t0: first trial step.
        method: ``"strong_wolfe"`` or ``"backtracking"``.
        **options: passed to the search (``c1``, ``c2``, ``shrink``, ``max_evals``, ...),
            which are not validated here: check them once where they are set
            (:func:`check_search_constants`).
    """
    options.setdefault("eps", phi.flat.eps)
    if not 0 < t0 < math.inf:
        t0 = 1.0
    # the constants are checked once, where an optimizer is built, not at every iteration
    if method == "strong_wolfe":
        res = _strong_wolfe(phi, f0, dphi0, t0, **options)
    elif method == "backtracking":
        res = _backtracking_armijo(phi, f0, dphi0, t0, **options)
    else:
        raise ValueError(
            f"unknown line search method {method!r}; valid choices: strong_wolfe, backtracking"
        )
    if res.t > 0:
        f, dphi = phi.finish(res.t)
        if res.success or (math.isfinite(f) and f < f0):
            return LineSearchResult(res.t, f, dphi, phi.nfev, res.success, res.message)
    phi.move_to(0.0)
    return LineSearchResult(0.0, f0, dphi0, phi.nfev, False, res.message)


def fixed_step(phi: Phi, f0: float, dphi0: float, t0: float = 1.0) -> LineSearchResult:
    """No search: evaluate once at ``t0`` and accept it if f and its slope are finite there
    (``torch.optim.LBFGS(line_search_fn=None)``); f may rise."""
    f, d = phi(t0)
    if math.isfinite(f) and math.isfinite(d):
        return LineSearchResult(t0, f, d, 1, True, f"fixed step t = {t0:.6g}")
    return LineSearchResult(0.0, f0, dphi0, 1, False, f"f = {f} at the fixed step t = {t0:.6g}")


# -- the search axis of an optimizer ----------------------------------------------------


LINE_SEARCHES = ("strong_wolfe", "backtracking")


class LineSearchOptimizer(torch.optim.Optimizer):
    r"""Base of the methods that move along a direction chosen by a line search.

    A method is a descent direction times a search (optimistix's two axes). The subclass
    supplies the direction :math:`d_k` (:meth:`_direction`), what it learns from an accepted
    step (:meth:`_accept`), how to forget it (:meth:`_reset`) and, if it wants, the first
    trial step (:meth:`_initial_step`). This base runs one iteration per ``step(closure)``
    (``max_iter`` per step where the subclass has that hyperparameter):

    1. :math:`f_k, g_k` from the closure, flattened into one vector. With descend's
       :class:`~descend.objective.Objective` as the closure, when it has not evaluated since
       this optimizer's last evaluation (which ended at :math:`x_k`), both are reused
       without a copy or a host synchronization.
    2. :math:`d_k` from the subclass. If :math:`\phi'(0) = g_k^\top d_k` is not negative and
       finite, the curvature information is forgotten and :math:`d_k = -g_k`.
    3. A line search from :math:`t_0` (``lr`` for a curvature direction,
       ``lr`` :math:`/\|g_k\|_2` for steepest descent, a step of length ``lr`` as in SciPy's
       L-BFGS-B). It ends with the closure's last evaluation at the accepted point, so the
       descent loop's evaluation there is free.
    4. If the search finds no lower f along a curvature direction (e.g. f is NaN all along
       it), the memory is reset, the parameters go back to :math:`x_k` and the search is
       retried along :math:`-g_k` (with an evaluation budget of its own, at least
       ``min(max_eval, 30)``). If that fails too, the parameters stay at :math:`x_k`
       (the best point seen) and :class:`~descend.optim.StepFailed` is raised with status
       ``"line_search_failed"`` (``"diverged"`` for a fixed step that is not finite).

    A search that runs out of evaluations, or shrinks its interval to rounding, after
    finding a lower f accepts that point: it is progress, even without the curvature
    condition (the quasi-Newton update is then skipped if :math:`s^\top y \le 0`).

    All parameters must be in one parameter group and share dtype and device, as for
    ``torch.optim.LBFGS``.
    """

    def __init__(self, params: Any, defaults: dict[str, Any]) -> None:
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError(
                f"{type(self).__name__} does not support per-parameter options (parameter "
                f"groups); got {len(self.param_groups)} groups, give one list of parameters"
            )
        self._flat = FlatParams(self.param_groups[0]["params"])
        # (objective, its nfev, f) after this optimizer's last evaluation, if it ended there
        self._known: tuple[Objective, int, float] | None = None

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._known = None
        super().load_state_dict(state_dict)

    # -- the direction axis: overridden by each method ---------------------------------------

    def _init_buffers(self, state: dict[str, Any], n: int) -> None:
        """Allocate the method's own state (called once, before the first direction)."""

    def _direction(self, state: dict[str, Any], g: Tensor, d: Tensor) -> bool:
        """Write the direction into ``d``; return False if it is :math:`-g` (no curvature
        information was used), True otherwise."""
        torch.neg(g, out=d)
        return False

    def _accept(
        self,
        state: dict[str, Any],
        g: Tensor,
        g_new: Tensor,
        d: Tensor,
        dphi0: float,
        res: LineSearchResult,
    ) -> None:
        """Learn from the accepted step :math:`s = t d`, :math:`y = g_{new} - g`."""

    def _reset(self, state: dict[str, Any]) -> None:
        """Forget the curvature information (after a direction or a search failed)."""

    def _initial_step(self, state: dict[str, Any], f: float, dphi0: float, curved: bool) -> float:
        lr = self.param_groups[0]["lr"]
        if curved:
            return lr
        if self.param_groups[0].get("line_search_fn", "strong_wolfe") is None:
            # torch.optim.LBFGS without a line search: lr * min(1, 1/|g|_1)
            g1 = state["g"].abs().sum().item()
            return lr * min(1.0, 1.0 / g1) if g1 > 0 else lr
        return lr / math.sqrt(-dphi0)

    def _search_options(self, group: dict[str, Any]) -> dict[str, float]:
        options = {"c1": group["c1"]}
        if group.get("line_search_fn", "strong_wolfe") == "strong_wolfe":
            options["c2"] = group["c2"]
        return options

    # -- the shared iteration ---------------------------------------------------------------

    @property
    def _state(self) -> dict[str, Any]:
        return self.state[self._flat.params[0]]

    def _prepare(self) -> dict[str, Any]:
        state = self._state
        if "d" not in state:
            flat = self._flat
            for key in ("g", "g_prev", "g_next", "d", "x0"):
                state[key] = torch.zeros(flat.numel, dtype=flat.dtype, device=flat.device)
            state.setdefault("n_iter", 0)
            state.setdefault("func_evals", 0)
            state.setdefault("resets", 0)
            self._init_buffers(state, flat.numel)
        return state

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor:  # type: ignore[override]
        """One iteration (``max_iter`` where the method has it); returns the loss at the
        start, like ``torch.optim.LBFGS``. ``closure`` re-evaluates the loss and fills the
        gradients; it is required."""
        if closure is None:
            raise RuntimeError(
                f"{type(self).__name__}.step needs a closure that clears the gradients, "
                "evaluates the loss, calls backward() and returns the loss"
            )
        group = self.param_groups[0]
        state = self._prepare()
        known, self._known = getattr(self, "_known", None), None
        with torch.enable_grad():
            loss = closure()
        if known is not None and known[0] is closure and known[1] == closure.nfev:
            # descend's Objective has not evaluated since this optimizer's last evaluation,
            # which was here: f and the gradient in state["g"] are current
            f = known[2]
        else:
            f = float(loss)
            if not math.isfinite(f):
                raise StepFailed(
                    "diverged",
                    f"f is {f} at the current parameters; no step can be taken from there",
                )
            self._flat.gather_grad(out=state["g"])
        max_iter = group.get("max_iter", 1)
        max_eval = group.get("max_eval") or max_iter * MAX_EVALS
        tol_grad = group.get("tolerance_grad", 0.0)
        tol_change = group.get("tolerance_change", 0.0)
        evals = 1
        for it in range(max_iter):
            if tol_grad > 0 and state["g"].abs().max().item() <= tol_grad:
                break
            if max_eval - evals <= 0:
                break
            res = self._iterate(closure, state, f, max_eval - evals)
            evals += res.nfev
            state["func_evals"] += res.nfev
            if res.t == 0:  # zero gradient: nothing to do
                break
            state["n_iter"] += 1
            f_old, f = f, res.f
            if it + 1 < max_iter and tol_change > 0:
                moved = state["d"].abs().max().item() * res.t
                if moved <= tol_change or abs(f - f_old) < tol_change:
                    break
        if isinstance(closure, Objective):
            self._known = (closure, closure.nfev, f)
        return loss

    def _iterate(
        self, closure: Callable[[], Tensor], state: dict[str, Any], f: float, budget: int
    ) -> LineSearchResult:
        """One iteration from the point whose gradient is in ``state["g"]``."""
        g, d = state["g"], state["d"]
        curved = self._direction(state, g, d)
        dphi0 = torch.dot(g, d).item()
        if curved and not (math.isfinite(dphi0) and dphi0 < 0):
            self._forget(state)
            curved = False
        if not curved:
            torch.neg(g, out=d)
            dphi0 = -torch.dot(g, g).item()
        if not math.isfinite(dphi0):
            raise StepFailed(
                "diverged", f"the gradient is not finite (|g|^2 = {-dphi0}); no step can be taken"
            )
        if dphi0 == 0:
            return LineSearchResult(0.0, f, 0.0, 0, True, "zero gradient: nothing to do")
        x0 = self._flat.gather(out=state["x0"])
        res = self._search(closure, state, x0, f, dphi0, curved, budget)
        if res.t == 0 and curved:
            self._forget(state)
            torch.neg(g, out=d)
            dphi0 = -torch.dot(g, g).item()
            # the fallback gets a budget of its own: a search lost in a NaN region may have
            # spent all of the step's
            retry_budget = max(budget - res.nfev, min(budget, MAX_EVALS))
            retry = self._search(closure, state, x0, f, dphi0, False, retry_budget)
            res = LineSearchResult(
                retry.t,
                retry.f,
                retry.dphi,
                res.nfev + retry.nfev,
                retry.success,
                f"{retry.message} (after the quasi-Newton direction failed: {res.message})",
            )
        if res.t == 0:
            fixed = self.param_groups[0].get("line_search_fn", "strong_wolfe") is None
            raise StepFailed(
                "diverged" if fixed else "line_search_failed",
                f"{type(self).__name__}: the line search found no lower f along the "
                f"steepest-descent direction: {res.message}. The parameters stay at the "
                f"best point (f = {f:.10g}).",
            )
        self._accept(state, g, state["g_next"], d, dphi0, res)
        state["g_prev"], state["g"], state["g_next"] = g, state["g_next"], state["g_prev"]
        return res

    def _forget(self, state: dict[str, Any]) -> None:
        state["resets"] += 1
        self._reset(state)

    def _search(
        self,
        closure: Callable[[], Tensor],
        state: dict[str, Any],
        x0: Tensor,
        f: float,
        dphi0: float,
        curved: bool,
        budget: int,
    ) -> LineSearchResult:
        group = self.param_groups[0]
        t0 = self._initial_step(state, f, dphi0, curved)
        phi = LineFunction(closure, self._flat, x0, state["d"], f, grad=state["g_next"])
        method = group.get("line_search_fn", "strong_wolfe")
        if method is None:
            res = fixed_step(phi, f, dphi0, t0)
            if res.t == 0:
                phi.move_to(0.0)
            return res
        options = self._search_options(group)
        return search(phi, f, dphi0, t0, method, max_evals=budget, **options)


def check_search_constants(c1: float, c2: float | None = None) -> None:
    """0 < c1 < 1, and c1 < c2 < 1 when c2 is given."""
    check_number("c1", c1, low=0.0, high=1.0, low_open=True, high_open=True)
    if c2 is not None:
        check_number("c2", c2, low=0.0, high=1.0, low_open=True, high_open=True)
        if not c1 < c2:
            raise ValueError(f"c2 must be in (c1, 1) = ({c1:g}, 1), got c2={c2!r}")
