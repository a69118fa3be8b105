r"""The Moré-Garbow-Hillstrom unconstrained test set: 35 nonlinear least-squares problems.

Each problem is :math:`f(x) = \sum_{i=1}^m f_i(x)^2` for residuals :math:`f_i` defined in

    J. J. Moré, B. S. Garbow and K. E. Hillstrom, "Testing unconstrained optimization
    software", ACM Transactions on Mathematical Software 7(1), 17-41, 1981.

(called MGH below; each problem's docstring gives its number there). Every residual
function here is written from the paper's definition with torch ops and is batched: it
takes ``x`` of shape ``(..., n)`` and returns shape ``(..., m)``; the objective sums the
squares over the last axis. Each problem starts at the paper's standard point ``x0``.

Minimum values. MGH prints f* either exactly (mostly 0) or truncated to six figures
("8.21487...E-3"). A problem keeps that printed figure in ``f_min_published`` with its
precision ``f_min_rtol``, and in ``f_min`` a value accurate to about 1e-12 relative that
agrees with the printed digits: the certified value of the NIST StRD where the problem is
one of NIST's (Kowalik-Osborne = MGH09, Meyer = MGH10, Osborne 1 = MGH17), otherwise the
value at the minimizer in ``minima``, which was refined in float64 from the point the
paper describes (Levenberg-Marquardt with exact Jacobians, then Newton's method with the
exact Hessian until the gradient stopped shrinking); the tests check that a Newton step
from each stored minimizer is below 1e-8 relative. A solved test such as
``f <= f_min + 1e-6 (1 + |f_min|)`` needs the accurate value: the printed 124.362 of
Jennrich-Sampson lies 1.8e-4 below the true minimum 124.36218...

Registered names are ``mgh-<name>`` (``mgh-rosenbrock``, ``mgh-helical-valley``, ...);
the problems of variable dimension register a family, so ``get_problem("mgh-penalty-1-4d")``
is Penalty I with n = 4. Where MGH gives f* only for some n (Watson, Penalty I and II,
Chebyquad), the family accepts just those n.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from descend.problems.problem import Problem
from descend.problems.registry import register
from descend.validation import check_int

__all__ = [
    "MGH_PROBLEMS",
    "LeastSquaresProblem",
    "bard",
    "beale",
    "biggs_exp6",
    "box_three_dimensional",
    "brown_almost_linear",
    "brown_badly_scaled",
    "brown_dennis",
    "broyden_banded",
    "broyden_tridiagonal",
    "chebyquad",
    "discrete_boundary_value",
    "discrete_integral_equation",
    "extended_powell_singular",
    "extended_rosenbrock",
    "freudenstein_roth",
    "gaussian",
    "gulf_research",
    "helical_valley",
    "jennrich_sampson",
    "kowalik_osborne",
    "linear_full_rank",
    "linear_rank_one",
    "linear_rank_one_zero",
    "meyer",
    "osborne_1",
    "osborne_2",
    "penalty_1",
    "penalty_2",
    "powell_badly_scaled",
    "powell_singular",
    "rosenbrock",
    "trigonometric",
    "variably_dimensioned",
    "watson",
    "wood",
]

REFERENCE = (
    "J. J. Moré, B. S. Garbow, K. E. Hillstrom, Testing unconstrained optimization "
    "software, ACM TOMS 7(1), 17-41, 1981"
)
NIST = "NIST StRD nonlinear regression, certified values"


@dataclass(frozen=True)
class LeastSquaresProblem(Problem):
    r"""A :class:`Problem` of the form :math:`f(x) = \sum_{i=1}^m r_i(x)^2`.

    Attributes (besides :class:`Problem`'s):
        residuals: ``r(x)``, shape ``(..., n) -> (..., m)``.
        m: the number of residuals.
        number: the problem's number in MGH (1-35).
        f_min_published: f* as printed in the reference (possibly truncated).
        f_min_rtol: relative precision of that figure (0: exact); ``f_min`` agrees with it:
            :math:`|f_\min - f_\text{published}| \le` ``f_min_rtol`` :math:`|f_\text{published}|`.
    """

    residuals: Callable[[Tensor], Tensor] | None = None
    m: int = 0
    number: int = 0
    f_min_published: float = math.nan
    f_min_rtol: float = 0.0

    def solved(self, f: float, rtol: float = 1e-6) -> bool:
        r"""Whether ``f`` counts as the minimum: :math:`f \le f^* + \text{rtol}\,(1 + |f^*|)`."""
        return f <= self.f_min + rtol * (1.0 + abs(self.f_min))


# ---------------------------------------------------------------------------------------
# helpers


@functools.lru_cache(maxsize=512)
def _cached(key: str, values: tuple[float, ...], dtype: torch.dtype, device: str) -> Tensor:
    del key  # part of the cache key only, so the tuple need not be hashed twice
    return torch.tensor(values, dtype=dtype, device=device)


def _data(key: str, values: Sequence[float], like: Tensor) -> Tensor:
    """A constant vector in ``like``'s dtype and device, built once per (dtype, device)."""
    return _cached(key, tuple(values), like.dtype, str(like.device))


def _matrix(key: str, build: Callable[[], Tensor], like: Tensor) -> Tensor:
    """A constant matrix (built in float64 by ``build``), cast and cached like :func:`_data`."""
    return _matrix_cached(key, build, like.dtype, str(like.device))


@functools.lru_cache(maxsize=256)
def _matrix_cached(
    key: str, build: Callable[[], Tensor], dtype: torch.dtype, device: str
) -> Tensor:
    del key
    return build().to(dtype=dtype, device=device)


def _sum_of_squares(residuals: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    def fn(x: Tensor) -> Tensor:
        return residuals(x).square().sum(-1)

    fn.__name__ = f"sum_of_squares_{getattr(residuals, '__name__', 'residuals')}"
    fn.__doc__ = f"Sum of squares of ``{getattr(residuals, '__name__', 'residuals')}``."
    return fn


def _box(start: Sequence[float], minimizer: Sequence[float]) -> tuple[tuple[float, float], ...]:
    """A box holding the start and the minimizer with a margin, for plots and random starts."""
    box = []
    for s, m in zip(start, minimizer):
        lo, hi = min(s, m), max(s, m)
        pad = max(0.5 * (hi - lo), 0.1 * max(abs(lo), abs(hi)), 0.5)
        box.append((lo - pad, hi + pad))
    return tuple(box)


def _problem(
    *,
    number: int,
    name: str,
    residuals: Callable[[Tensor], Tensor],
    n: int,
    m: int,
    start: Sequence[float],
    minima: Sequence[Sequence[float]],
    f_min: float,
    f_min_published: float | None = None,
    f_min_rtol: float = 0.0,
    description: str,
    local_minima: Sequence[Sequence[float]] = (),
    reference: str = REFERENCE,
    bounds: Sequence[tuple[float, float]] | None = None,
) -> LeastSquaresProblem:
    start = tuple(float(v) for v in start)
    minima_t = tuple(tuple(float(v) for v in point) for point in minima)
    return LeastSquaresProblem(
        name=name,
        fn=_sum_of_squares(residuals),
        dim=n,
        minima=minima_t,
        f_min=float(f_min),
        start=start,
        bounds=tuple(bounds) if bounds is not None else _box(start, minima_t[0]),
        description=description,
        reference=f"{reference}; problem {number}",
        local_minima=tuple(tuple(float(v) for v in p) for p in local_minima),
        residuals=residuals,
        m=m,
        number=number,
        f_min_published=float(f_min if f_min_published is None else f_min_published),
        f_min_rtol=f_min_rtol,
    )


def _split(x: Tensor) -> list[Tensor]:
    return list(x.unbind(-1))


# the relative precision of a figure MGH prints as d.ddddd...E+k (six figures, truncated)
_SIX_FIGURES = 1e-5


# ---------------------------------------------------------------------------------------
# (1)-(5): two variables


def _rosenbrock_residuals(x: Tensor) -> Tensor:
    x1, x2 = _split(x)
    return torch.stack([10.0 * (x2 - x1.square()), 1.0 - x1], -1)


def rosenbrock() -> LeastSquaresProblem:
    r"""MGH (1), Rosenbrock: n = 2, m = 2.

    .. math:: f_1 = 10(x_2 - x_1^2), \quad f_2 = 1 - x_1;
              \qquad x_0 = (-1.2, 1), \quad f^* = 0 \text{ at } (1, 1)
    """
    return _problem(
        number=1,
        name="mgh-rosenbrock",
        residuals=_rosenbrock_residuals,
        n=2,
        m=2,
        start=(-1.2, 1.0),
        minima=[(1.0, 1.0)],
        f_min=0.0,
        description="Rosenbrock's banana valley as two residuals",
    )


def _freudenstein_roth_residuals(x: Tensor) -> Tensor:
    x1, x2 = _split(x)
    return torch.stack(
        [
            -13.0 + x1 + ((5.0 - x2) * x2 - 2.0) * x2,
            -29.0 + x1 + ((x2 + 1.0) * x2 - 14.0) * x2,
        ],
        -1,
    )


# the local minimum, f = 48.98425367924...
_FR_LOCAL = (11.412778986902095, -0.8968052532744764)


def freudenstein_roth() -> LeastSquaresProblem:
    r"""MGH (2), Freudenstein and Roth: n = 2, m = 2.

    .. math:: f_1 = -13 + x_1 + ((5 - x_2)x_2 - 2)x_2, \quad
              f_2 = -29 + x_1 + ((x_2 + 1)x_2 - 14)x_2

    :math:`x_0 = (0.5, -2)`; f* = 0 at (5, 4); a local minimum f = 48.9842... at
    (11.41..., -0.8968...), where most methods started at x0 end.
    """
    return _problem(
        number=2,
        name="mgh-freudenstein-roth",
        residuals=_freudenstein_roth_residuals,
        n=2,
        m=2,
        start=(0.5, -2.0),
        minima=[(5.0, 4.0)],
        f_min=0.0,
        local_minima=[_FR_LOCAL],
        description="a global minimum 0 and a local one at 48.98 that attracts from x0",
    )


def _powell_badly_scaled_residuals(x: Tensor) -> Tensor:
    x1, x2 = _split(x)
    return torch.stack([1e4 * x1 * x2 - 1.0, torch.exp(-x1) + torch.exp(-x2) - 1.0001], -1)


# x1 x2 = 1e-4 and exp(-x1) + exp(-x2) = 1.0001, solved by Newton's method in float64
_PBS_MIN = (1.0981593296997149e-05, 9.106146739867318)


def powell_badly_scaled() -> LeastSquaresProblem:
    r"""MGH (3), Powell badly scaled: n = 2, m = 2.

    .. math:: f_1 = 10^4 x_1 x_2 - 1, \quad f_2 = e^{-x_1} + e^{-x_2} - 1.0001

    :math:`x_0 = (0, 1)`; f* = 0 at (1.098...e-5, 9.106...).
    """
    return _problem(
        number=3,
        name="mgh-powell-badly-scaled",
        residuals=_powell_badly_scaled_residuals,
        n=2,
        m=2,
        start=(0.0, 1.0),
        minima=[_PBS_MIN],
        f_min=0.0,
        description="a minimizer whose coordinates differ by nine decades",
    )


def _brown_badly_scaled_residuals(x: Tensor) -> Tensor:
    x1, x2 = _split(x)
    return torch.stack([x1 - 1e6, x2 - 2e-6, x1 * x2 - 2.0], -1)


def brown_badly_scaled() -> LeastSquaresProblem:
    r"""MGH (4), Brown badly scaled: n = 2, m = 3.

    .. math:: f_1 = x_1 - 10^6, \quad f_2 = x_2 - 2\cdot10^{-6}, \quad f_3 = x_1 x_2 - 2

    :math:`x_0 = (1, 1)`; f* = 0 at :math:`(10^6, 2\cdot10^{-6})`.
    """
    return _problem(
        number=4,
        name="mgh-brown-badly-scaled",
        residuals=_brown_badly_scaled_residuals,
        n=2,
        m=3,
        start=(1.0, 1.0),
        minima=[(1e6, 2e-6)],
        f_min=0.0,
        description="f(x0) = 1e12; the minimizer's coordinates differ by twelve decades",
    )


def _beale_residuals(x: Tensor) -> Tensor:
    x1, x2 = _split(x)
    return torch.stack(
        [
            1.5 - x1 * (1.0 - x2),
            2.25 - x1 * (1.0 - x2.square()),
            2.625 - x1 * (1.0 - x2 * x2.square()),
        ],
        -1,
    )


def beale() -> LeastSquaresProblem:
    r"""MGH (5), Beale: n = 2, m = 3.

    .. math:: f_i = y_i - x_1(1 - x_2^i), \quad y = (1.5, 2.25, 2.625)

    :math:`x_0 = (1, 1)`; f* = 0 at (3, 0.5).
    """
    return _problem(
        number=5,
        name="mgh-beale",
        residuals=_beale_residuals,
        n=2,
        m=3,
        start=(1.0, 1.0),
        minima=[(3.0, 0.5)],
        f_min=0.0,
        description="Beale's function: flat plateaus and steep ridges",
    )


# ---------------------------------------------------------------------------------------
# (6)-(12)


def _jennrich_sampson_residuals(m: int) -> Callable[[Tensor], Tensor]:
    def residuals(x: Tensor) -> Tensor:
        i = _data(f"js-i-{m}", [float(k) for k in range(1, m + 1)], x)
        x1, x2 = x[..., :1], x[..., 1:2]
        return 2.0 + 2.0 * i - (torch.exp(i * x1) + torch.exp(i * x2))

    residuals.__name__ = "jennrich_sampson_residuals"
    return residuals


_JS_MIN = 0.25782521367036404  # x1 = x2 at the minimum for m = 10
_JS_F = 124.36218235561482


def jennrich_sampson() -> LeastSquaresProblem:
    r"""MGH (6), Jennrich and Sampson: n = 2, m = 10.

    .. math:: f_i = 2 + 2i - (e^{i x_1} + e^{i x_2}), \quad i = 1..m

    :math:`x_0 = (0.3, 0.4)`; f* = 124.362... at :math:`x_1 = x_2 = 0.2578...` for m = 10.
    """
    return _problem(
        number=6,
        name="mgh-jennrich-sampson",
        residuals=_jennrich_sampson_residuals(10),
        n=2,
        m=10,
        start=(0.3, 0.4),
        minima=[(_JS_MIN, _JS_MIN)],
        f_min=_JS_F,
        f_min_published=124.362,
        f_min_rtol=_SIX_FIGURES,
        description="exponentials of up to 10 x: a narrow curved valley",
    )


def _helical_valley_residuals(x: Tensor) -> Tensor:
    x1, x2, x3 = _split(x)
    # MGH: theta = atan(x2/x1)/(2 pi), plus 1/2 when x1 < 0, so theta lies in (-1/4, 3/4);
    # atan2/(2 pi) lies in (-1/2, 1/2] and differs from it by 1 exactly where x1 < 0 > x2.
    theta = torch.atan2(x2, x1) / (2.0 * math.pi)
    theta = torch.where(theta < -0.25, theta + 1.0, theta)
    radius = torch.sqrt(x1.square() + x2.square())
    return torch.stack([10.0 * (x3 - 10.0 * theta), 10.0 * (radius - 1.0), x3], -1)


def helical_valley() -> LeastSquaresProblem:
    r"""MGH (7), Fletcher and Powell's helical valley: n = 3, m = 3.

    .. math:: f_1 = 10\,[x_3 - 10\,\theta(x_1, x_2)], \quad
              f_2 = 10\,[(x_1^2 + x_2^2)^{1/2} - 1], \quad f_3 = x_3

    with :math:`\theta = \frac{1}{2\pi}\arctan(x_2/x_1)`, plus 1/2 if :math:`x_1 < 0`.
    :math:`x_0 = (-1, 0, 0)`; f* = 0 at (1, 0, 0). f is discontinuous across the half-plane
    :math:`x_1 < 0, x_2 = 0` (theta jumps by 1 there), as in the paper.
    """
    return _problem(
        number=7,
        name="mgh-helical-valley",
        residuals=_helical_valley_residuals,
        n=3,
        m=3,
        start=(-1.0, 0.0, 0.0),
        minima=[(1.0, 0.0, 0.0)],
        f_min=0.0,
        description="a valley winding along a helix around the x3 axis",
    )


_BARD_Y = (0.14, 0.18, 0.22, 0.25, 0.29, 0.32, 0.35, 0.39, 0.37, 0.58, 0.73, 0.96, 1.34, 2.10, 4.39)


def _bard_residuals(x: Tensor) -> Tensor:
    u = _data("bard-u", [float(i) for i in range(1, 16)], x)
    v = _data("bard-v", [float(16 - i) for i in range(1, 16)], x)
    w = _data("bard-w", [float(min(i, 16 - i)) for i in range(1, 16)], x)
    y = _data("bard-y", _BARD_Y, x)
    x1, x2, x3 = x[..., :1], x[..., 1:2], x[..., 2:3]
    return y - (x1 + u / (v * x2 + w * x3))


_BARD_MIN = (0.08241055974978896, 1.1330360920297224, 2.343695178642536)
_BARD_F = 0.008214877306578978


def bard() -> LeastSquaresProblem:
    r"""MGH (8), Bard: n = 3, m = 15.

    .. math:: f_i = y_i - \Big(x_1 + \frac{u_i}{v_i x_2 + w_i x_3}\Big),
              \quad u_i = i,\ v_i = 16 - i,\ w_i = \min(u_i, v_i)

    :math:`x_0 = (1, 1, 1)`; f* = 8.21487...e-3; also f = 17.4286... at
    :math:`(0.8406..., -\infty, -\infty)`.
    """
    return _problem(
        number=8,
        name="mgh-bard",
        residuals=_bard_residuals,
        n=3,
        m=15,
        start=(1.0, 1.0, 1.0),
        minima=[_BARD_MIN],
        f_min=_BARD_F,
        f_min_published=8.21487e-3,
        f_min_rtol=_SIX_FIGURES,
        description="a rational model fitted to 15 points",
    )


_GAUSSIAN_Y = (
    0.0009,
    0.0044,
    0.0175,
    0.0540,
    0.1295,
    0.2420,
    0.3521,
    0.3989,
    0.3521,
    0.2420,
    0.1295,
    0.0540,
    0.0175,
    0.0044,
    0.0009,
)


def _gaussian_residuals(x: Tensor) -> Tensor:
    t = _data("gauss-t", [(8.0 - i) / 2.0 for i in range(1, 16)], x)
    y = _data("gauss-y", _GAUSSIAN_Y, x)
    x1, x2, x3 = x[..., :1], x[..., 1:2], x[..., 2:3]
    return x1 * torch.exp(-0.5 * x2 * (t - x3).square()) - y


_GAUSSIAN_MIN = (0.39895613783875666, 1.0000190844878056, 0.0)  # x3 = 0 by symmetry
_GAUSSIAN_F = 1.1279327696192162e-08


def gaussian() -> LeastSquaresProblem:
    r"""MGH (9), Gaussian: n = 3, m = 15.

    .. math:: f_i = x_1 \exp\big(-x_2 (t_i - x_3)^2 / 2\big) - y_i, \quad t_i = (8 - i)/2

    :math:`x_0 = (0.4, 1, 0)`; f* = 1.12793...e-8.
    """
    return _problem(
        number=9,
        name="mgh-gaussian",
        residuals=_gaussian_residuals,
        n=3,
        m=15,
        start=(0.4, 1.0, 0.0),
        minima=[_GAUSSIAN_MIN],
        f_min=_GAUSSIAN_F,
        f_min_published=1.12793e-8,
        f_min_rtol=_SIX_FIGURES,
        description="a normal density fitted to 15 points; x0 is already close",
    )


_MEYER_Y = (
    34780.0,
    28610.0,
    23650.0,
    19630.0,
    16370.0,
    13720.0,
    11540.0,
    9744.0,
    8261.0,
    7030.0,
    6005.0,
    5147.0,
    4427.0,
    3820.0,
    3307.0,
    2872.0,
)


def _meyer_residuals(x: Tensor) -> Tensor:
    t = _data("meyer-t", [45.0 + 5.0 * i for i in range(1, 17)], x)
    y = _data("meyer-y", _MEYER_Y, x)
    x1, x2, x3 = x[..., :1], x[..., 1:2], x[..., 2:3]
    return x1 * torch.exp(x2 / (t + x3)) - y


# the minimizer refined in float64 (NIST StRD "MGH10" certifies it to 11 digits:
# 5.6096364710e-3, 6.1813463463e3, 3.4522363462e2) and NIST's certified f*
_MEYER_MIN = (0.005609636471027856, 6181.346346286401, 345.22363462413745)
_MEYER_F = 8.7945855171e01


def meyer() -> LeastSquaresProblem:
    r"""MGH (10), Meyer: n = 3, m = 16.

    .. math:: f_i = x_1 \exp\Big(\frac{x_2}{t_i + x_3}\Big) - y_i, \quad t_i = 45 + 5i

    :math:`x_0 = (0.02, 4000, 250)`; f* = 87.9458... (NIST's MGH10: 87.945855171).
    """
    return _problem(
        number=10,
        name="mgh-meyer",
        residuals=_meyer_residuals,
        n=3,
        m=16,
        start=(0.02, 4000.0, 250.0),
        minima=[_MEYER_MIN],
        f_min=_MEYER_F,
        f_min_published=87.9458,
        f_min_rtol=_SIX_FIGURES,
        reference=f"{REFERENCE} and {NIST} (MGH10)",
        description="a thermistor model: parameters spanning six decades, a very flat valley",
    )


def _gulf_residuals(m: int) -> Callable[[Tensor], Tensor]:
    def residuals(x: Tensor) -> Tensor:
        t = _data(f"gulf-t-{m}", [i / 100.0 for i in range(1, m + 1)], x)
        y = _data(
            f"gulf-y-{m}",
            [25.0 + (-50.0 * math.log(i / 100.0)) ** (2.0 / 3.0) for i in range(1, m + 1)],
            x,
        )
        x1, x2, x3 = x[..., :1], x[..., 1:2], x[..., 2:3]
        return torch.exp(-(y - x2).abs().pow(x3) / x1) - t

    residuals.__name__ = "gulf_residuals"
    return residuals


def gulf_research() -> LeastSquaresProblem:
    r"""MGH (11), Gulf research and development: n = 3, m = 99.

    .. math:: f_i = \exp\Big(-\frac{|y_i - x_2|^{x_3}}{x_1}\Big) - t_i, \quad
              t_i = i/100, \quad y_i = 25 + (-50 \ln t_i)^{2/3}

    (MGH allows :math:`n \le m \le 100`; m = 99 keeps every :math:`y_i \ne 25`, so
    :math:`|y_i - x_2|^{x_3}` is smooth at the minimizer.) :math:`x_0 = (5, 2.5, 0.15)`;
    f* = 0 at (50, 25, 1.5).
    """
    return _problem(
        number=11,
        name="mgh-gulf",
        residuals=_gulf_residuals(99),
        n=3,
        m=99,
        start=(5.0, 2.5, 0.15),
        minima=[(50.0, 25.0, 1.5)],
        f_min=0.0,
        description="a Weibull-like model: very flat far from the minimizer",
    )


def _box_residuals(m: int) -> Callable[[Tensor], Tensor]:
    def residuals(x: Tensor) -> Tensor:
        t = _data(f"box-t-{m}", [0.1 * i for i in range(1, m + 1)], x)
        x1, x2, x3 = x[..., :1], x[..., 1:2], x[..., 2:3]
        return torch.exp(-t * x1) - torch.exp(-t * x2) - x3 * (torch.exp(-t) - torch.exp(-10.0 * t))

    residuals.__name__ = "box_residuals"
    return residuals


def box_three_dimensional() -> LeastSquaresProblem:
    r"""MGH (12), Box three-dimensional: n = 3, m = 10.

    .. math:: f_i = e^{-t_i x_1} - e^{-t_i x_2} - x_3\,(e^{-t_i} - e^{-10 t_i}), \quad t_i = 0.1 i

    :math:`x_0 = (0, 10, 20)`; f* = 0 at (1, 10, 1), at (10, 1, -1), and wherever
    :math:`x_1 = x_2` and :math:`x_3 = 0`.
    """
    return _problem(
        number=12,
        name="mgh-box3d",
        residuals=_box_residuals(10),
        n=3,
        m=10,
        start=(0.0, 10.0, 20.0),
        minima=[(1.0, 10.0, 1.0), (10.0, 1.0, -1.0)],
        f_min=0.0,
        description="two isolated minimizers and a line of them (x1 = x2, x3 = 0)",
    )


# ---------------------------------------------------------------------------------------
# (13)-(19)


def _powell_singular_residuals(x: Tensor) -> Tensor:
    x1, x2, x3, x4 = _split(x)
    return torch.stack(
        [
            x1 + 10.0 * x2,
            math.sqrt(5.0) * (x3 - x4),
            (x2 - 2.0 * x3).square(),
            math.sqrt(10.0) * (x1 - x4).square(),
        ],
        -1,
    )


def powell_singular() -> LeastSquaresProblem:
    r"""MGH (13), Powell singular: n = 4, m = 4.

    .. math:: f_1 = x_1 + 10x_2,\ f_2 = \sqrt5(x_3 - x_4),\ f_3 = (x_2 - 2x_3)^2,\
              f_4 = \sqrt{10}(x_1 - x_4)^2

    :math:`x_0 = (3, -1, 0, 1)`; f* = 0 at the origin, where the Hessian is singular
    (so convergence there is only linear for Newton-type methods).
    """
    return _problem(
        number=13,
        name="mgh-powell-singular",
        residuals=_powell_singular_residuals,
        n=4,
        m=4,
        start=(3.0, -1.0, 0.0, 1.0),
        minima=[(0.0,) * 4],
        f_min=0.0,
        description="a minimizer with a singular Hessian",
    )


def _wood_residuals(x: Tensor) -> Tensor:
    x1, x2, x3, x4 = _split(x)
    return torch.stack(
        [
            10.0 * (x2 - x1.square()),
            1.0 - x1,
            math.sqrt(90.0) * (x4 - x3.square()),
            1.0 - x3,
            math.sqrt(10.0) * (x2 + x4 - 2.0),
            (x2 - x4) / math.sqrt(10.0),
        ],
        -1,
    )


def wood() -> LeastSquaresProblem:
    r"""MGH (14), Wood (Colville's function): n = 4, m = 6.

    .. math:: f_1 = 10(x_2 - x_1^2),\ f_2 = 1 - x_1,\ f_3 = \sqrt{90}(x_4 - x_3^2),\
              f_4 = 1 - x_3,\ f_5 = \sqrt{10}(x_2 + x_4 - 2),\ f_6 = 10^{-1/2}(x_2 - x_4)

    :math:`x_0 = (-3, -1, -3, -1)`; f* = 0 at (1, 1, 1, 1).
    """
    return _problem(
        number=14,
        name="mgh-wood",
        residuals=_wood_residuals,
        n=4,
        m=6,
        start=(-3.0, -1.0, -3.0, -1.0),
        minima=[(1.0,) * 4],
        f_min=0.0,
        description="two coupled Rosenbrock valleys",
    )


_KO_Y = (0.1957, 0.1947, 0.1735, 0.1600, 0.0844, 0.0627, 0.0456, 0.0342, 0.0323, 0.0235, 0.0246)
_KO_U = (4.0, 2.0, 1.0, 0.5, 0.25, 0.167, 0.125, 0.1, 0.0833, 0.0714, 0.0625)


def _kowalik_osborne_residuals(x: Tensor) -> Tensor:
    u = _data("ko-u", _KO_U, x)
    y = _data("ko-y", _KO_Y, x)
    x1, x2, x3, x4 = x[..., :1], x[..., 1:2], x[..., 2:3], x[..., 3:4]
    return y - x1 * (u.square() + u * x2) / (u.square() + u * x3 + x4)


# the minimizer refined in float64 (NIST StRD "MGH09" certifies it to 11 digits) and
# NIST's certified f*
_KO_MIN = (0.19280693457903783, 0.19128232873436699, 0.12305650692632045, 0.13606233068379484)
_KO_F = 3.0750560385e-04


def kowalik_osborne() -> LeastSquaresProblem:
    r"""MGH (15), Kowalik and Osborne: n = 4, m = 11.

    .. math:: f_i = y_i - \frac{x_1 (u_i^2 + u_i x_2)}{u_i^2 + u_i x_3 + x_4}

    :math:`x_0 = (0.25, 0.39, 0.415, 0.39)`; f* = 3.07505...e-4 (NIST's MGH09:
    3.0750560385e-4); also f = 1.02734...e-3 at :math:`(+\infty, -14.07..., -\infty, -\infty)`.
    """
    return _problem(
        number=15,
        name="mgh-kowalik-osborne",
        residuals=_kowalik_osborne_residuals,
        n=4,
        m=11,
        start=(0.25, 0.39, 0.415, 0.39),
        minima=[_KO_MIN],
        f_min=_KO_F,
        f_min_published=3.07505e-4,
        f_min_rtol=_SIX_FIGURES,
        reference=f"{REFERENCE} and {NIST} (MGH09)",
        description="an enzyme-kinetics rational model fitted to 11 points",
    )


def _brown_dennis_residuals(m: int) -> Callable[[Tensor], Tensor]:
    def residuals(x: Tensor) -> Tensor:
        t = _data(f"bd-t-{m}", [i / 5.0 for i in range(1, m + 1)], x)
        x1, x2, x3, x4 = x[..., :1], x[..., 1:2], x[..., 2:3], x[..., 3:4]
        first = x1 + t * x2 - torch.exp(t)
        second = x3 + x4 * torch.sin(t) - torch.cos(t)
        return first.square() + second.square()

    residuals.__name__ = "brown_dennis_residuals"
    return residuals


_BD_MIN = (-11.594439904762163, 13.203630051207202, -0.4034394881768596, 0.23677877445573622)
_BD_F = 85822.20162635634


def brown_dennis() -> LeastSquaresProblem:
    r"""MGH (16), Brown and Dennis: n = 4, m = 20.

    .. math:: f_i = (x_1 + t_i x_2 - e^{t_i})^2 + (x_3 + x_4 \sin t_i - \cos t_i)^2,
              \quad t_i = i/5

    :math:`x_0 = (25, 5, -5, -1)`; f* = 85822.2... for m = 20.
    """
    return _problem(
        number=16,
        name="mgh-brown-dennis",
        residuals=_brown_dennis_residuals(20),
        n=4,
        m=20,
        start=(25.0, 5.0, -5.0, -1.0),
        minima=[_BD_MIN],
        f_min=_BD_F,
        f_min_published=85822.2,
        f_min_rtol=_SIX_FIGURES,
        description="a large-residual problem: squared residuals of squares",
    )


_OSBORNE1_Y = (
    0.844,
    0.908,
    0.932,
    0.936,
    0.925,
    0.908,
    0.881,
    0.850,
    0.818,
    0.784,
    0.751,
    0.718,
    0.685,
    0.658,
    0.628,
    0.603,
    0.580,
    0.558,
    0.538,
    0.522,
    0.506,
    0.490,
    0.478,
    0.467,
    0.457,
    0.448,
    0.438,
    0.431,
    0.424,
    0.420,
    0.414,
    0.411,
    0.406,
)


def _osborne_1_residuals(x: Tensor) -> Tensor:
    t = _data("osb1-t", [10.0 * i for i in range(33)], x)
    y = _data("osb1-y", _OSBORNE1_Y, x)
    x1, x2, x3, x4, x5 = (x[..., k : k + 1] for k in range(5))
    return y - (x1 + x2 * torch.exp(-t * x4) + x3 * torch.exp(-t * x5))


# the minimizer refined in float64 (NIST StRD "MGH17" certifies it to 11 digits) and
# NIST's certified f*
_OSB1_MIN = (
    0.3754100521069522,
    1.9358469127123894,
    -1.4646871366134453,
    0.012867534640057333,
    0.022122699661672525,
)
_OSB1_F = 5.4648946975e-05


def osborne_1() -> LeastSquaresProblem:
    r"""MGH (17), Osborne 1: n = 5, m = 33.

    .. math:: f_i = y_i - (x_1 + x_2 e^{-t_i x_4} + x_3 e^{-t_i x_5}), \quad t_i = 10(i - 1)

    :math:`x_0 = (0.5, 1.5, -1, 0.01, 0.02)`; f* = 5.46489...e-5 (NIST's MGH17:
    5.4648946975e-5).
    """
    return _problem(
        number=17,
        name="mgh-osborne-1",
        residuals=_osborne_1_residuals,
        n=5,
        m=33,
        start=(0.5, 1.5, -1.0, 0.01, 0.02),
        minima=[_OSB1_MIN],
        f_min=_OSB1_F,
        f_min_published=5.46489e-5,
        f_min_rtol=_SIX_FIGURES,
        reference=f"{REFERENCE} and {NIST} (MGH17)",
        description="a sum of two exponentials fitted to 33 points",
    )


def _biggs_residuals(m: int) -> Callable[[Tensor], Tensor]:
    def residuals(x: Tensor) -> Tensor:
        t = _data(f"biggs-t-{m}", [0.1 * i for i in range(1, m + 1)], x)
        y = torch.exp(-t) - 5.0 * torch.exp(-10.0 * t) + 3.0 * torch.exp(-4.0 * t)
        x1, x2, x3, x4, x5, x6 = (x[..., k : k + 1] for k in range(6))
        return x3 * torch.exp(-t * x1) - x4 * torch.exp(-t * x2) + x6 * torch.exp(-t * x5) - y

    residuals.__name__ = "biggs_residuals"
    return residuals


def biggs_exp6() -> LeastSquaresProblem:
    r"""MGH (18), Biggs EXP6: n = 6, m = 13.

    .. math:: f_i = x_3 e^{-t_i x_1} - x_4 e^{-t_i x_2} + x_6 e^{-t_i x_5} - y_i,
              \quad t_i = 0.1i, \quad y_i = e^{-t_i} - 5e^{-10t_i} + 3e^{-4t_i}

    :math:`x_0 = (1, 2, 1, 1, 1, 1)`; f* = 0 at (1, 10, 1, 5, 4, 3) and at its image
    (4, 10, 3, 5, 1, 1) under swapping the first and third exponential. MGH also prints
    f = 5.65565...e-3 (for m = 13), where methods are known to stop; Levenberg-Marquardt
    from there reaches f = 0, so no minimizer is stored for it.
    """
    return _problem(
        number=18,
        name="mgh-biggs-exp6",
        residuals=_biggs_residuals(13),
        n=6,
        m=13,
        start=(1.0, 2.0, 1.0, 1.0, 1.0, 1.0),
        minima=[(1.0, 10.0, 1.0, 5.0, 4.0, 3.0), (4.0, 10.0, 3.0, 5.0, 1.0, 1.0)],
        f_min=0.0,
        description="three exponentials with a zero-residual fit",
    )


_OSBORNE2_Y = (
    1.366,
    1.191,
    1.112,
    1.013,
    0.991,
    0.885,
    0.831,
    0.847,
    0.786,
    0.725,
    0.746,
    0.679,
    0.608,
    0.655,
    0.616,
    0.606,
    0.602,
    0.626,
    0.651,
    0.724,
    0.649,
    0.649,
    0.694,
    0.644,
    0.624,
    0.661,
    0.612,
    0.558,
    0.533,
    0.495,
    0.500,
    0.423,
    0.395,
    0.375,
    0.372,
    0.391,
    0.396,
    0.405,
    0.428,
    0.429,
    0.523,
    0.562,
    0.607,
    0.653,
    0.672,
    0.708,
    0.633,
    0.668,
    0.645,
    0.632,
    0.591,
    0.559,
    0.597,
    0.625,
    0.739,
    0.710,
    0.729,
    0.720,
    0.636,
    0.581,
    0.428,
    0.292,
    0.162,
    0.098,
    0.054,
)


def _osborne_2_residuals(x: Tensor) -> Tensor:
    t = _data("osb2-t", [i / 10.0 for i in range(65)], x)
    y = _data("osb2-y", _OSBORNE2_Y, x)
    c = [x[..., k : k + 1] for k in range(11)]
    model = (
        c[0] * torch.exp(-t * c[4])
        + c[1] * torch.exp(-(t - c[8]).square() * c[5])
        + c[2] * torch.exp(-(t - c[9]).square() * c[6])
        + c[3] * torch.exp(-(t - c[10]).square() * c[7])
    )
    return y - model


_OSB2_MIN = (
    1.3099771546273007,
    0.431553794602989,
    0.6336616989607241,
    0.5994305347859162,
    0.7541832263280115,
    0.9042885798596337,
    1.365811835237028,
    4.823698817227158,
    2.3986848661317546,
    4.568874597667672,
    5.6753414705806415,
)
_OSB2_F = 0.04013773629354776


def osborne_2() -> LeastSquaresProblem:
    r"""MGH (19), Osborne 2: n = 11, m = 65.

    .. math:: f_i = y_i - \big(x_1 e^{-t_i x_5} + x_2 e^{-(t_i - x_9)^2 x_6}
              + x_3 e^{-(t_i - x_{10})^2 x_7} + x_4 e^{-(t_i - x_{11})^2 x_8}\big),
              \quad t_i = (i - 1)/10

    :math:`x_0 = (1.3, 0.65, 0.65, 0.7, 0.6, 3, 5, 7, 2, 4.5, 5.5)`; f* = 4.01377...e-2.
    """
    return _problem(
        number=19,
        name="mgh-osborne-2",
        residuals=_osborne_2_residuals,
        n=11,
        m=65,
        start=(1.3, 0.65, 0.65, 0.7, 0.6, 3.0, 5.0, 7.0, 2.0, 4.5, 5.5),
        minima=[_OSB2_MIN],
        f_min=_OSB2_F,
        f_min_published=4.01377e-2,
        f_min_rtol=_SIX_FIGURES,
        description="an exponential and three Gaussians fitted to 65 points",
    )


# ---------------------------------------------------------------------------------------
# (20)-(35): variable dimension


def _watson_matrices(n: int) -> Callable[[], Tensor]:
    def build() -> Tensor:
        t = torch.arange(1, 30, dtype=torch.float64) / 29.0
        j = torch.arange(n, dtype=torch.float64)  # j - 1 for j = 1..n
        powers = t[:, None] ** j  # t_i^(j-1)
        slopes = torch.zeros(29, n, dtype=torch.float64)
        slopes[:, 1:] = j[1:] * t[:, None] ** (j[1:] - 1.0)  # (j-1) t_i^(j-2)
        return torch.stack([slopes, powers])

    return build


def _watson_residuals(n: int) -> Callable[[Tensor], Tensor]:
    build = _watson_matrices(n)

    def residuals(x: Tensor) -> Tensor:
        slopes, powers = _matrix(f"watson-{n}", build, x).unbind(0)
        fit = x @ slopes.T - (x @ powers.T).square() - 1.0
        x1, x2 = x[..., :1], x[..., 1:2]
        return torch.cat([fit, x1, x2 - x1.square() - 1.0], -1)

    residuals.__name__ = "watson_residuals"
    return residuals


_WATSON = {
    6: (
        2.28767e-3,
        0.0022876700535524714,
        (
            -0.015725086401458577,
            1.0124348693691099,
            -0.2329916259567373,
            1.260430087799606,
            -1.5137289227222754,
            0.992996432431132,
        ),
    ),
    9: (
        1.39976e-6,
        1.3997601380982458e-06,
        (
            -1.5307036514106603e-05,
            0.9997897039319475,
            0.014763963693617306,
            0.14634232829879057,
            1.0008211030073753,
            -2.617731140525389,
            4.104403164487076,
            -3.143612278561864,
            1.0526264080116066,
        ),
    ),
    12: (
        4.72238e-10,
        4.72238110622653e-10,
        (
            -6.63806045149331e-09,
            1.0000016441178619,
            -0.0005639322103273744,
            0.3478205405037869,
            -0.15673150409466727,
            1.0528151772040604,
            -3.2472711534621874,
            7.288434897961407,
            -10.271848241366408,
            9.07411364711627,
            -4.541375466711024,
            1.0120118885560863,
        ),
    ),
}


def watson(n: int = 6) -> LeastSquaresProblem:
    r"""MGH (20), Watson: n = 6, 9 or 12 (where MGH gives f*), m = 31.

    .. math:: f_i = \sum_{j=2}^n (j-1) x_j t_i^{j-2} - \Big(\sum_{j=1}^n x_j t_i^{j-1}\Big)^2 - 1,
              \quad t_i = i/29,\ i = 1..29; \quad f_{30} = x_1,\ f_{31} = x_2 - x_1^2 - 1

    :math:`x_0 = 0`; f* = 2.28767...e-3 (n = 6), 1.39976...e-6 (n = 9), 4.72238...e-10 (n = 12).
    """
    n = check_int("n", n, low=2)
    if n not in _WATSON:
        raise ValueError(f"n must be one of 6, 9, 12 (where MGH gives f*) for watson, got {n}")
    published, f_min, minimizer = _WATSON[n]
    return _problem(
        number=20,
        name="mgh-watson" if n == 6 else f"mgh-watson-n{n}",
        residuals=_watson_residuals(n),
        n=n,
        m=31,
        start=(0.0,) * n,
        minima=[minimizer],
        f_min=f_min,
        f_min_published=published,
        f_min_rtol=_SIX_FIGURES,
        description="a polynomial fit to an ODE's solution; ill-conditioned as n grows",
    )


def _extended_rosenbrock_residuals(x: Tensor) -> Tensor:
    odd, even = x[..., 0::2], x[..., 1::2]
    return torch.stack([10.0 * (even - odd.square()), 1.0 - odd], -1).flatten(-2)


def extended_rosenbrock(n: int = 10) -> LeastSquaresProblem:
    r"""MGH (21), extended Rosenbrock: n even, m = n.

    .. math:: f_{2i-1} = 10(x_{2i} - x_{2i-1}^2), \quad f_{2i} = 1 - x_{2i-1}

    :math:`x_0 = (-1.2, 1, -1.2, 1, \dots)`; f* = 0 at (1, ..., 1). n/2 uncoupled
    Rosenbrock valleys, so f(x0) = 12.1 n.
    """
    n = check_int("n", n, low=2)
    if n % 2:
        raise ValueError(f"n must be an even integer >= 2 for extended rosenbrock, got {n}")
    return _problem(
        number=21,
        name="mgh-extended-rosenbrock" if n == 10 else f"mgh-extended-rosenbrock-n{n}",
        residuals=_extended_rosenbrock_residuals,
        n=n,
        m=n,
        start=[-1.2 if i % 2 == 0 else 1.0 for i in range(n)],
        minima=[(1.0,) * n],
        f_min=0.0,
        description="n/2 independent Rosenbrock valleys",
    )


def _extended_powell_residuals(x: Tensor) -> Tensor:
    a, b, c, d = x[..., 0::4], x[..., 1::4], x[..., 2::4], x[..., 3::4]
    parts = [
        a + 10.0 * b,
        math.sqrt(5.0) * (c - d),
        (b - 2.0 * c).square(),
        math.sqrt(10.0) * (a - d).square(),
    ]
    return torch.stack(parts, -1).flatten(-2)


def extended_powell_singular(n: int = 12) -> LeastSquaresProblem:
    r"""MGH (22), extended Powell singular: n a multiple of 4, m = n.

    .. math:: f_{4i-3} = x_{4i-3} + 10x_{4i-2},\ f_{4i-2} = \sqrt5(x_{4i-1} - x_{4i}),\
              f_{4i-1} = (x_{4i-2} - 2x_{4i-1})^2,\ f_{4i} = \sqrt{10}(x_{4i-3} - x_{4i})^2

    :math:`x_0 = (3, -1, 0, 1, \dots)`; f* = 0 at the origin (singular Hessian); f(x0) = 215 n/4.
    """
    n = check_int("n", n, low=4)
    if n % 4:
        raise ValueError(f"n must be a multiple of 4 for extended powell singular, got {n}")
    return _problem(
        number=22,
        name="mgh-extended-powell" if n == 12 else f"mgh-extended-powell-n{n}",
        residuals=_extended_powell_residuals,
        n=n,
        m=n,
        start=[(3.0, -1.0, 0.0, 1.0)[i % 4] for i in range(n)],
        minima=[(0.0,) * n],
        f_min=0.0,
        description="n/4 independent Powell singular blocks",
    )


_PENALTY_A = 1e-5


def _penalty_1_residuals(x: Tensor) -> Tensor:
    tail = x.square().sum(-1, keepdim=True) - 0.25
    return torch.cat([math.sqrt(_PENALTY_A) * (x - 1.0), tail], -1)


_PENALTY_1 = {
    4: (2.24997e-5, 2.2499775008999375e-05, (0.2500074995875379,) * 4),
    10: (7.08765e-5, 7.087651467090369e-05, (0.15812230111273845,) * 10),
}


def penalty_1(n: int = 10) -> LeastSquaresProblem:
    r"""MGH (23), penalty function I: n = 4 or 10 (where MGH gives f*), m = n + 1.

    .. math:: f_i = \sqrt a\,(x_i - 1),\ i = 1..n; \quad
              f_{n+1} = \Big(\sum_j x_j^2\Big) - \tfrac14; \quad a = 10^{-5}

    :math:`x_0 = (1, 2, \dots, n)`; f* = 2.24997...e-5 (n = 4), 7.08765...e-5 (n = 10).
    By symmetry the minimizer has equal coordinates c, the root of
    :math:`a(c - 1) + 2c(nc^2 - 1/4) = 0`.
    """
    n = check_int("n", n, low=1)
    if n not in _PENALTY_1:
        raise ValueError(f"n must be 4 or 10 (where MGH gives f*) for penalty 1, got {n}")
    published, f_min, minimizer = _PENALTY_1[n]
    return _problem(
        number=23,
        name="mgh-penalty-1" if n == 10 else f"mgh-penalty-1-n{n}",
        residuals=_penalty_1_residuals,
        n=n,
        m=n + 1,
        start=[float(j) for j in range(1, n + 1)],
        minima=[minimizer],
        f_min=f_min,
        f_min_published=published,
        f_min_rtol=_SIX_FIGURES,
        description="a quadratic penalty for the constraint |x|^2 = 1/4, weight 1e5",
    )


def _penalty_2_residuals(n: int) -> Callable[[Tensor], Tensor]:
    def residuals(x: Tensor) -> Tensor:
        i = torch.arange(2, n + 1, dtype=x.dtype, device=x.device)
        y = torch.exp(i / 10.0) + torch.exp((i - 1.0) / 10.0)
        e = torch.exp(x / 10.0)
        root_a = math.sqrt(_PENALTY_A)
        weights = torch.arange(n, 0, -1, dtype=x.dtype, device=x.device)  # n - j + 1
        return torch.cat(
            [
                x[..., :1] - 0.2,
                root_a * (e[..., 1:] + e[..., :-1] - y),
                root_a * (e[..., 1:] - math.exp(-0.1)),
                (weights * x.square()).sum(-1, keepdim=True) - 1.0,
            ],
            -1,
        )

    residuals.__name__ = "penalty_2_residuals"
    return residuals


_PENALTY_2 = {
    4: (
        9.37629e-6,
        9.376293007355447e-06,
        (0.1999993333503804, 0.19131670099277237, 0.48010148533262315, 0.5188454043902007),
    ),
    10: (
        2.93660e-4,
        0.000293660537456746,
        (
            0.19998360519782363,
            0.010350648471292306,
            0.01960493448043841,
            0.03208906722068565,
            0.049932677399641315,
            0.0765139951539936,
            0.11862407286950419,
            0.19214487233557667,
            0.3473205869418436,
            0.3691643741593508,
        ),
    ),
}


def penalty_2(n: int = 10) -> LeastSquaresProblem:
    r"""MGH (24), penalty function II: n = 4 or 10 (where MGH gives f*), m = 2n.

    .. math::
        f_1 &= x_1 - 0.2\\
        f_i &= \sqrt a\,(e^{x_i/10} + e^{x_{i-1}/10} - y_i), \quad 2 \le i \le n\\
        f_i &= \sqrt a\,(e^{x_{i-n+1}/10} - e^{-1/10}), \quad n < i < 2n\\
        f_{2n} &= \Big(\sum_{j=1}^n (n - j + 1) x_j^2\Big) - 1

    with :math:`a = 10^{-5}`, :math:`y_i = e^{i/10} + e^{(i-1)/10}`. :math:`x_0 = (1/2, \dots)`;
    f* = 9.37629...e-6 (n = 4), 2.93660...e-4 (n = 10).
    """
    n = check_int("n", n, low=2)
    if n not in _PENALTY_2:
        raise ValueError(f"n must be 4 or 10 (where MGH gives f*) for penalty 2, got {n}")
    published, f_min, minimizer = _PENALTY_2[n]
    return _problem(
        number=24,
        name="mgh-penalty-2" if n == 10 else f"mgh-penalty-2-n{n}",
        residuals=_penalty_2_residuals(n),
        n=n,
        m=2 * n,
        start=(0.5,) * n,
        minima=[minimizer],
        f_min=f_min,
        f_min_published=published,
        f_min_rtol=_SIX_FIGURES,
        description="an exponential penalty problem, badly scaled",
    )


def _variably_dimensioned_residuals(x: Tensor) -> Tensor:
    j = torch.arange(1, x.shape[-1] + 1, dtype=x.dtype, device=x.device)
    s = ((x - 1.0) * j).sum(-1, keepdim=True)
    return torch.cat([x - 1.0, s, s.square()], -1)


def variably_dimensioned(n: int = 10) -> LeastSquaresProblem:
    r"""MGH (25), variably dimensioned: m = n + 2.

    .. math:: f_i = x_i - 1,\ i = 1..n; \quad f_{n+1} = \sum_j j(x_j - 1); \quad
              f_{n+2} = \Big(\sum_j j(x_j - 1)\Big)^2

    :math:`x_0 = (1 - j/n)_j`; f* = 0 at (1, ..., 1).
    """
    n = check_int("n", n, low=1)
    return _problem(
        number=25,
        name="mgh-variably-dimensioned" if n == 10 else f"mgh-variably-dimensioned-n{n}",
        residuals=_variably_dimensioned_residuals,
        n=n,
        m=n + 2,
        start=[1.0 - j / n for j in range(1, n + 1)],
        minima=[(1.0,) * n],
        f_min=0.0,
        description="a quartic in one direction: f grows like (sum j(x_j - 1))^4",
    )


def _trigonometric_residuals(x: Tensor) -> Tensor:
    n = x.shape[-1]
    i = torch.arange(1, n + 1, dtype=x.dtype, device=x.device)
    cos = torch.cos(x)
    return n - cos.sum(-1, keepdim=True) + i * (1.0 - cos) - torch.sin(x)


def trigonometric(n: int = 10) -> LeastSquaresProblem:
    r"""MGH (26), trigonometric: m = n.

    .. math:: f_i = n - \sum_j \cos x_j + i(1 - \cos x_i) - \sin x_i

    :math:`x_0 = (1/n, \dots)`; f* = 0 (at the origin, among other points). Descent from x0
    often ends at a local minimum instead (for n = 10, f = 2.79506...e-5).
    """
    n = check_int("n", n, low=1)
    return _problem(
        number=26,
        name="mgh-trigonometric" if n == 10 else f"mgh-trigonometric-n{n}",
        residuals=_trigonometric_residuals,
        n=n,
        m=n,
        start=(1.0 / n,) * n,
        minima=[(0.0,) * n],
        f_min=0.0,
        description="sums of cosines: a zero-residual minimum and nearby local ones",
    )


def _brown_almost_linear_residuals(x: Tensor) -> Tensor:
    n = x.shape[-1]
    linear = x[..., :-1] + x.sum(-1, keepdim=True) - (n + 1.0)
    return torch.cat([linear, x.prod(-1, keepdim=True) - 1.0], -1)


def brown_almost_linear(n: int = 10) -> LeastSquaresProblem:
    r"""MGH (27), Brown almost-linear: m = n.

    .. math:: f_i = x_i + \sum_j x_j - (n + 1),\ 1 \le i < n; \quad f_n = \Big(\prod_j x_j\Big) - 1

    :math:`x_0 = (1/2, \dots)`; f* = 0 at :math:`(\alpha, \dots, \alpha, \alpha^{1-n})` where
    :math:`n\alpha^n - (n+1)\alpha^{n-1} + 1 = 0` (in particular :math:`\alpha = 1`);
    f = 1 at (0, ..., 0, n + 1).
    """
    n = check_int("n", n, low=2)
    return _problem(
        number=27,
        name="mgh-brown-almost-linear" if n == 10 else f"mgh-brown-almost-linear-n{n}",
        residuals=_brown_almost_linear_residuals,
        n=n,
        m=n,
        start=(0.5,) * n,
        minima=[(1.0,) * n],
        f_min=0.0,
        local_minima=[(0.0,) * (n - 1) + (n + 1.0,)],
        description="linear equations plus one product: a curved zero set",
    )


def _grid(n: int, like: Tensor) -> tuple[float, Tensor]:
    h = 1.0 / (n + 1)
    return h, torch.arange(1, n + 1, dtype=like.dtype, device=like.device) * h


def _discrete_boundary_value_residuals(x: Tensor) -> Tensor:
    n = x.shape[-1]
    h, t = _grid(n, x)
    padded = torch.nn.functional.pad(x, (1, 1))  # x_0 = x_{n+1} = 0
    return 2.0 * x - padded[..., :-2] - padded[..., 2:] + 0.5 * h * h * (x + t + 1.0).pow(3)


def _start_grid(n: int) -> list[float]:
    h = 1.0 / (n + 1)
    return [j * h * (j * h - 1.0) for j in range(1, n + 1)]


_DBV_10 = (
    -0.043164982518764876,
    -0.08157715653538689,
    -0.1144857143805293,
    -0.14097357686259668,
    -0.15990869618198314,
    -0.16987720231277492,
    -0.16908998378120835,
    -0.15524953522183182,
    -0.125355891678935,
    -0.07541653368589209,
)


def discrete_boundary_value(n: int = 10) -> LeastSquaresProblem:
    r"""MGH (28), discrete boundary value: m = n.

    .. math:: f_i = 2x_i - x_{i-1} - x_{i+1} + h^2 (x_i + t_i + 1)^3 / 2,
              \quad h = \frac{1}{n+1},\ t_i = ih,\ x_0 = x_{n+1} = 0

    :math:`x_0 = (t_j(t_j - 1))_j`; f* = 0 at the solution of the discretized two-point
    boundary value problem :math:`u'' = (u + t + 1)^3/2`, u(0) = u(1) = 0.
    """
    n = check_int("n", n, low=1)
    minimizer = (
        _DBV_10 if n == 10 else _solve_square(_discrete_boundary_value_residuals, _start_grid(n))
    )
    return _problem(
        number=28,
        name="mgh-discrete-boundary-value" if n == 10 else f"mgh-discrete-boundary-value-n{n}",
        residuals=_discrete_boundary_value_residuals,
        n=n,
        m=n,
        start=_start_grid(n),
        minima=[minimizer],
        f_min=0.0,
        description="finite differences for a nonlinear two-point boundary value problem",
    )


def _integral_kernel(n: int) -> Callable[[], Tensor]:
    def build() -> Tensor:
        t = torch.arange(1, n + 1, dtype=torch.float64) / (n + 1)
        lower = torch.ones(n, n, dtype=torch.float64).tril().bool()  # j <= i
        # K_ij = (1 - t_i) t_j for j <= i, t_i (1 - t_j) for j > i
        return torch.where(lower, (1.0 - t)[:, None] * t[None, :], t[:, None] * (1.0 - t)[None, :])

    return build


def _discrete_integral_residuals(x: Tensor) -> Tensor:
    n = x.shape[-1]
    h, t = _grid(n, x)
    kernel = _matrix(f"integral-{n}", _integral_kernel(n), x)
    return x + 0.5 * h * (x + t + 1.0).pow(3) @ kernel.T


_DIE_10 = (
    -0.04316498251876487,
    -0.08157715653538689,
    -0.11448571438052928,
    -0.14097357686259668,
    -0.1599086961819831,
    -0.16987720231277492,
    -0.16908998378120835,
    -0.15524953522183182,
    -0.12535589167893496,
    -0.07541653368589213,
)


def discrete_integral_equation(n: int = 10) -> LeastSquaresProblem:
    r"""MGH (29), discrete integral equation: m = n.

    .. math:: f_i = x_i + \frac h2 \Big[(1 - t_i)\sum_{j=1}^i t_j (x_j + t_j + 1)^3
              + t_i \sum_{j=i+1}^n (1 - t_j)(x_j + t_j + 1)^3\Big]

    with h and :math:`t_i` as in (28) and the same :math:`x_0`; f* = 0.
    """
    n = check_int("n", n, low=1)
    minimizer = _DIE_10 if n == 10 else _solve_square(_discrete_integral_residuals, _start_grid(n))
    return _problem(
        number=29,
        name="mgh-discrete-integral" if n == 10 else f"mgh-discrete-integral-n{n}",
        residuals=_discrete_integral_residuals,
        n=n,
        m=n,
        start=_start_grid(n),
        minima=[minimizer],
        f_min=0.0,
        description="a trapezoid-rule discretization of a nonlinear integral equation",
    )


def _broyden_tridiagonal_residuals(x: Tensor) -> Tensor:
    padded = torch.nn.functional.pad(x, (1, 1))
    return (3.0 - 2.0 * x) * x - padded[..., :-2] - 2.0 * padded[..., 2:] + 1.0


_BT_10 = (
    -0.5707221320112248,
    -0.6818069499842752,
    -0.7022100760176601,
    -0.7055106298950804,
    -0.7049061557287436,
    -0.7014966070298512,
    -0.6918893223547983,
    -0.6657965144058536,
    -0.5960351090263657,
    -0.4164122575286934,
)


def broyden_tridiagonal(n: int = 10) -> LeastSquaresProblem:
    r"""MGH (30), Broyden tridiagonal: m = n.

    .. math:: f_i = (3 - 2x_i)x_i - x_{i-1} - 2x_{i+1} + 1, \quad x_0 = x_{n+1} = 0

    :math:`x_0 = (-1, \dots)`; f* = 0.
    """
    n = check_int("n", n, low=1)
    minimizer = _BT_10 if n == 10 else _solve_square(_broyden_tridiagonal_residuals, (-1.0,) * n)
    return _problem(
        number=30,
        name="mgh-broyden-tridiagonal" if n == 10 else f"mgh-broyden-tridiagonal-n{n}",
        residuals=_broyden_tridiagonal_residuals,
        n=n,
        m=n,
        start=(-1.0,) * n,
        minima=[minimizer],
        f_min=0.0,
        description="a tridiagonal system of quadratic equations",
    )


_BANDED_LOWER, _BANDED_UPPER = 5, 1


def _band(n: int) -> Callable[[], Tensor]:
    def build() -> Tensor:
        i = torch.arange(n)[:, None]
        j = torch.arange(n)[None, :]
        inside = (j >= i - _BANDED_LOWER) & (j <= i + _BANDED_UPPER) & (j != i)
        return inside.to(torch.float64)

    return build


def _broyden_banded_residuals(x: Tensor) -> Tensor:
    n = x.shape[-1]
    band = _matrix(f"band-{n}", _band(n), x)
    return x * (2.0 + 5.0 * x.square()) + 1.0 - (x * (1.0 + x)) @ band.T


_BB_10 = (
    -0.4283028635872503,
    -0.47659642435629024,
    -0.5196524636468617,
    -0.5580993248321808,
    -0.5925061568294573,
    -0.624503682199468,
    -0.6232394714405911,
    -0.6213938417965735,
    -0.6204535966590874,
    -0.5864692707204351,
)


def broyden_banded(n: int = 10) -> LeastSquaresProblem:
    r"""MGH (31), Broyden banded: m = n.

    .. math:: f_i = x_i(2 + 5x_i^2) + 1 - \sum_{j \in J_i} x_j(1 + x_j), \quad
              J_i = \{j \ne i : \max(1, i - 5) \le j \le \min(n, i + 1)\}

    :math:`x_0 = (-1, \dots)`; f* = 0.
    """
    n = check_int("n", n, low=1)
    minimizer = _BB_10 if n == 10 else _solve_square(_broyden_banded_residuals, (-1.0,) * n)
    return _problem(
        number=31,
        name="mgh-broyden-banded" if n == 10 else f"mgh-broyden-banded-n{n}",
        residuals=_broyden_banded_residuals,
        n=n,
        m=n,
        start=(-1.0,) * n,
        minima=[minimizer],
        f_min=0.0,
        description="a banded system of cubic equations (5 below, 1 above the diagonal)",
    )


def _linear_full_rank_residuals(m: int) -> Callable[[Tensor], Tensor]:
    def residuals(x: Tensor) -> Tensor:
        s = x.sum(-1, keepdim=True) * (2.0 / m) + 1.0
        n = x.shape[-1]
        tail = (-s).expand(*x.shape[:-1], m - n)
        return torch.cat([x - s, tail], -1)

    residuals.__name__ = "linear_full_rank_residuals"
    return residuals


def _check_m(m: int, n: int, name: str) -> int:
    m = check_int("m", m, low=1)
    if m < n:
        raise ValueError(f"m must be >= n = {n} for {name}, got m = {m}")
    return m


def linear_full_rank(n: int = 9, m: int = 45) -> LeastSquaresProblem:
    r"""MGH (32), linear function, full rank: m >= n.

    .. math:: f_i = x_i - \frac2m \sum_j x_j - 1,\ 1 \le i \le n; \quad
              f_i = -\frac2m \sum_j x_j - 1,\ n < i \le m

    :math:`x_0 = (1, \dots)`; f* = m - n at (-1, ..., -1). The defaults n = 9, m = 45 are
    Moré and Wild's (SIAM J. Optim. 20(1), 2009).
    """
    n = check_int("n", n, low=1)
    m = _check_m(m, n, "linear full rank")
    return _problem(
        number=32,
        name="mgh-linear-full-rank" if (n, m) == (9, 45) else f"mgh-linear-full-rank-n{n}",
        residuals=_linear_full_rank_residuals(m),
        n=n,
        m=m,
        start=(1.0,) * n,
        minima=[(-1.0,) * n],
        f_min=float(m - n),
        description="a linear least-squares problem with a full-rank Jacobian",
    )


def _linear_rank_one_residuals(m: int) -> Callable[[Tensor], Tensor]:
    def residuals(x: Tensor) -> Tensor:
        n = x.shape[-1]
        j = torch.arange(1, n + 1, dtype=x.dtype, device=x.device)
        i = torch.arange(1, m + 1, dtype=x.dtype, device=x.device)
        return i * (x * j).sum(-1, keepdim=True) - 1.0

    residuals.__name__ = "linear_rank_one_residuals"
    return residuals


def linear_rank_one(n: int = 7, m: int = 35) -> LeastSquaresProblem:
    r"""MGH (33), linear function, rank 1: m >= n.

    .. math:: f_i = i \Big(\sum_j j x_j\Big) - 1, \quad 1 \le i \le m

    :math:`x_0 = (1, \dots)`; f* = :math:`\frac{m(m-1)}{2(2m+1)}` wherever
    :math:`\sum_j j x_j = \frac{3}{2m+1}` (listed: the multiple of (1, ..., 1) there).
    Defaults n = 7, m = 35 as in Moré and Wild (2009).
    """
    n = check_int("n", n, low=1)
    m = _check_m(m, n, "linear rank 1")
    c = 3.0 / ((2 * m + 1) * n * (n + 1) / 2.0)
    return _problem(
        number=33,
        name="mgh-linear-rank-1" if (n, m) == (7, 35) else f"mgh-linear-rank-1-n{n}",
        residuals=_linear_rank_one_residuals(m),
        n=n,
        m=m,
        start=(1.0,) * n,
        minima=[(c,) * n],
        f_min=m * (m - 1) / (2.0 * (2 * m + 1)),
        description="a rank-one linear least-squares problem: a hyperplane of minimizers",
    )


def _linear_rank_one_zero_residuals(m: int) -> Callable[[Tensor], Tensor]:
    def residuals(x: Tensor) -> Tensor:
        n = x.shape[-1]
        j = torch.arange(1, n + 1, dtype=x.dtype, device=x.device)
        j[0] = 0.0
        j[-1] = 0.0  # columns 1 and n are zero
        s = (x * j).sum(-1, keepdim=True)
        i = torch.arange(0, m, dtype=x.dtype, device=x.device)  # (i - 1) for i = 1..m
        i[0] = 0.0
        i[-1] = 0.0  # rows 1 and m are zero
        return i * s - 1.0

    residuals.__name__ = "linear_rank_one_zero_residuals"
    return residuals


def linear_rank_one_zero(n: int = 7, m: int = 35) -> LeastSquaresProblem:
    r"""MGH (34), linear function, rank 1 with zero columns and rows: m >= n >= 3.

    .. math:: f_1 = -1, \quad f_i = (i - 1)\Big(\sum_{j=2}^{n-1} j x_j\Big) - 1,\
              2 \le i \le m - 1, \quad f_m = -1

    :math:`x_0 = (1, \dots)`; f* = :math:`\frac{m^2 + 3m - 6}{2(2m - 3)}` wherever
    :math:`\sum_{j=2}^{n-1} j x_j = \frac{3}{2m - 3}`. Defaults n = 7, m = 35 (Moré and
    Wild, 2009).
    """
    n = check_int("n", n, low=3)
    m = _check_m(m, n, "linear rank 1 with zero columns and rows")
    inner = n * (n - 1) / 2.0 - 1.0  # sum of j for j = 2..n-1
    c = 3.0 / ((2 * m - 3) * inner)
    return _problem(
        number=34,
        name="mgh-linear-rank-1-zero" if (n, m) == (7, 35) else f"mgh-linear-rank-1-zero-n{n}",
        residuals=_linear_rank_one_zero_residuals(m),
        n=n,
        m=m,
        start=(1.0,) * n,
        minima=[(0.0,) + (c,) * (n - 2) + (0.0,)],
        f_min=(m * m + 3 * m - 6) / (2.0 * (2 * m - 3)),
        description="rank-one linear least squares with zero first/last rows and columns",
    )


def _chebyquad_residuals(m: int) -> Callable[[Tensor], Tensor]:
    def residuals(x: Tensor) -> Tensor:
        n = x.shape[-1]
        y = 2.0 * x - 1.0  # T_i on [0, 1] is the Chebyshev polynomial of 2x - 1
        previous, current = torch.ones_like(y), y
        rows = [current.mean(-1)]
        for _ in range(2, m + 1):
            previous, current = current, 2.0 * y * current - previous
            rows.append(current.mean(-1))
        # integral over [0, 1] of T_i(2x - 1): 0 for odd i, -1/(i^2 - 1) for even i
        integrals = _data(
            f"cheb-int-{m}",
            [0.0 if i % 2 else -1.0 / (i * i - 1.0) for i in range(1, m + 1)],
            x,
        )
        del n
        return torch.stack(rows, -1) - integrals

    residuals.__name__ = "chebyquad_residuals"
    return residuals


_CHEBYQUAD = {
    # n: (published f*, f*, minimizer, rtol of the published f*); zero residual except n = 8
    1: (0.0, 0.0, (0.5,), 0.0),
    2: (0.0, 0.0, (0.2113248654051871, 0.7886751345948129), 0.0),
    3: (0.0, 0.0, (0.1464466094067262, 0.5, 0.8535533905932737), 0.0),
    4: (
        0.0,
        0.0,
        (0.1026727638541169, 0.4062037629574601, 0.5937962370425399, 0.8973272361458831),
        0.0,
    ),
    5: (
        0.0,
        0.0,
        (0.08375125649950906, 0.31272929522320947, 0.5, 0.6872707047767905, 0.9162487435004909),
        0.0,
    ),
    6: (
        0.0,
        0.0,
        (
            0.06687659094608968,
            0.28874067311944424,
            0.36668229924164764,
            0.6333177007583524,
            0.7112593268805558,
            0.9331234090539102,
        ),
        0.0,
    ),
    7: (
        0.0,
        0.0,
        (
            0.05806914962097551,
            0.2351716123574216,
            0.3380440947400462,
            0.5,
            0.6619559052599538,
            0.7648283876425784,
            0.9419308503790245,
        ),
        0.0,
    ),
    8: (
        3.51687e-3,
        0.0035168737256779338,
        (
            0.04315276015101661,
            0.19309084038418614,
            0.2663287068902729,
            0.5,
            0.5,
            0.7336712931097271,
            0.8069091596158139,
            0.9568472398489833,
        ),
        _SIX_FIGURES,
    ),
    9: (
        0.0,
        0.0,
        (
            0.04420534613578272,
            0.1994906723098811,
            0.23561910847105982,
            0.4160469078925982,
            0.5,
            0.5839530921074021,
            0.76438089152894,
            0.8005093276901191,
            0.9557946538642172,
        ),
        0.0,
    ),
}


def chebyquad(n: int = 8) -> LeastSquaresProblem:
    r"""MGH (35), Chebyquad: m = n here, n = 8 by default.

    .. math:: f_i = \frac1n \sum_{j=1}^n T_i(x_j) - \int_0^1 T_i(x)\,dx

    with :math:`T_i` the Chebyshev polynomial shifted to [0, 1]; the integral is 0 for odd i
    and :math:`-1/(i^2 - 1)` for even i. :math:`x_0 = (j/(n+1))_j`; f* = 0 for
    :math:`1 \le n \le 7` and n = 9; 3.51687...e-3 (n = 8). The family takes n = 1..9.
    (MGH's 6.50395...e-3 for n = 10 is not the global minimum: Moré and Wild, SIAM J.
    Optim. 20(1), 2009, report 4.77271...e-3, so n = 10 is left out.)
    """
    n = check_int("n", n, low=1)
    if n not in _CHEBYQUAD:
        raise ValueError(
            f"n must be one of {', '.join(map(str, sorted(_CHEBYQUAD)))} for chebyquad, got {n}"
        )
    published, f_min, minimizer, rtol = _CHEBYQUAD[n]
    return _problem(
        number=35,
        name="mgh-chebyquad" if n == 8 else f"mgh-chebyquad-n{n}",
        residuals=_chebyquad_residuals(n),
        n=n,
        m=n,
        start=[j / (n + 1) for j in range(1, n + 1)],
        minima=[minimizer],
        f_min=f_min,
        f_min_published=published,
        f_min_rtol=rtol,
        description="Gauss-Chebyshev quadrature nodes: a nonzero minimum for n = 8 and 10",
    )


# ---------------------------------------------------------------------------------------


def _solve_square(
    residuals: Callable[[Tensor], Tensor], start: Sequence[float]
) -> tuple[float, ...]:
    """A root of ``residuals`` (m = n) by Newton's method with backtracking from ``start``.

    Used for the zero-residual problems (28)-(31) at dimensions other than the stored n = 10.
    """
    x = torch.tensor(start, dtype=torch.float64)
    for _ in range(100):
        r = residuals(x)
        norm = torch.linalg.vector_norm(r)
        if norm <= 1e-15:
            break
        jac = torch.func.jacfwd(residuals)(x)
        step = torch.linalg.lstsq(jac, -r).solution
        alpha = 1.0
        while alpha > 1e-10:
            trial = x + alpha * step
            if torch.linalg.vector_norm(residuals(trial)) < norm:
                break
            alpha *= 0.5
        x = x + alpha * step
    return tuple(x.tolist())


def _families() -> list[tuple[LeastSquaresProblem, Callable[[int], LeastSquaresProblem] | None]]:
    return [
        (rosenbrock(), None),
        (freudenstein_roth(), None),
        (powell_badly_scaled(), None),
        (brown_badly_scaled(), None),
        (beale(), None),
        (jennrich_sampson(), None),
        (helical_valley(), None),
        (bard(), None),
        (gaussian(), None),
        (meyer(), None),
        (gulf_research(), None),
        (box_three_dimensional(), None),
        (powell_singular(), None),
        (wood(), None),
        (kowalik_osborne(), None),
        (brown_dennis(), None),
        (osborne_1(), None),
        (biggs_exp6(), None),
        (osborne_2(), None),
        (watson(), watson),
        (extended_rosenbrock(), extended_rosenbrock),
        (extended_powell_singular(), extended_powell_singular),
        (penalty_1(), penalty_1),
        (penalty_2(), penalty_2),
        (variably_dimensioned(), variably_dimensioned),
        (trigonometric(), trigonometric),
        (brown_almost_linear(), brown_almost_linear),
        (discrete_boundary_value(), discrete_boundary_value),
        (discrete_integral_equation(), discrete_integral_equation),
        (broyden_tridiagonal(), broyden_tridiagonal),
        (broyden_banded(), broyden_banded),
        (linear_full_rank(), lambda n: linear_full_rank(n, max(n, 45))),
        (linear_rank_one(), lambda n: linear_rank_one(n, max(n, 35))),
        (linear_rank_one_zero(), lambda n: linear_rank_one_zero(n, max(n, 35))),
        (chebyquad(), chebyquad),
    ]


#: the 35 problems at their default sizes, in MGH order, keyed by registered name
MGH_PROBLEMS: dict[str, LeastSquaresProblem] = {}

for _problem_, _family in _families():
    MGH_PROBLEMS[_problem_.name] = _problem_
    register(_problem_, family=_family)
del _problem_, _family
