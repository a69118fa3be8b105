"""Classic test functions for optimizers, with their published minima.

Every function takes ``x`` of shape ``(..., n)`` and returns shape ``(...)``, written with
torch ops so autodiff gives the gradient and a whole grid is evaluated in one call.
The minima are from the references given with each function, checked in the tests by the
value and the gradient at each point. A general reference for all of them:
M. Jamil and X.-S. Yang, "A literature survey of benchmark functions for global
optimization problems", Int. J. Math. Modelling & Num. Optimisation 4(2), 2013.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from descend.problems.problem import Problem
from descend.problems.registry import register
from descend.validation import check_int

__all__ = [
    "ackley",
    "ackley_nd",
    "beale",
    "booth",
    "goldstein_price",
    "himmelblau",
    "monkey_saddle",
    "rastrigin",
    "rastrigin_nd",
    "rosenbrock",
    "rosenbrock_nd",
    "saddle",
    "styblinski_tang",
    "styblinski_tang_nd",
]

# ---------------------------------------------------------------------------------------
# the functions


def rosenbrock_fn(x: Tensor) -> Tensor:
    r"""Rosenbrock's banana valley in n >= 2 dimensions.

    .. math:: f(x) = \sum_{i=1}^{n-1} 100\,(x_{i+1} - x_i^2)^2 + (1 - x_i)^2

    Minimum f = 0 at x = (1, ..., 1).
    """
    head, tail = x[..., :-1], x[..., 1:]
    return (100.0 * (tail - head**2) ** 2 + (1.0 - head) ** 2).sum(-1)


def beale_fn(x: Tensor) -> Tensor:
    r""":math:`f = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2`."""
    u, v = x[..., 0], x[..., 1]
    return (1.5 - u + u * v) ** 2 + (2.25 - u + u * v**2) ** 2 + (2.625 - u + u * v**3) ** 2


def booth_fn(x: Tensor) -> Tensor:
    r""":math:`f = (x + 2y - 7)^2 + (2x + y - 5)^2`, a quadratic with condition number 9."""
    u, v = x[..., 0], x[..., 1]
    return (u + 2.0 * v - 7.0) ** 2 + (2.0 * u + v - 5.0) ** 2


def himmelblau_fn(x: Tensor) -> Tensor:
    r""":math:`f = (x^2 + y - 11)^2 + (x + y^2 - 7)^2`."""
    u, v = x[..., 0], x[..., 1]
    return (u**2 + v - 11.0) ** 2 + (u + v**2 - 7.0) ** 2


def rastrigin_fn(x: Tensor) -> Tensor:
    r""":math:`f = 10n + \sum_i x_i^2 - 10\cos(2\pi x_i)`: a bowl under a grid of ripples."""
    n = x.shape[-1]
    return 10.0 * n + (x**2 - 10.0 * torch.cos(2.0 * math.pi * x)).sum(-1)


def ackley_fn(x: Tensor) -> Tensor:
    r"""Ackley's function (a = 20, b = 0.2, c = 2 pi).

    .. math:: f = -a\exp\Big(-b\sqrt{\tfrac1n\textstyle\sum_i x_i^2}\Big)
              - \exp\Big(\tfrac1n\textstyle\sum_i\cos(c x_i)\Big) + a + e

    The square root has a kink at 0; the gradient there is taken as 0 (a subgradient),
    so autodiff returns 0 rather than NaN at the minimum.
    """
    mean_sq = (x**2).mean(-1)
    positive = mean_sq > 0
    # The double ``where`` keeps sqrt's infinite derivative at 0 out of the backward pass.
    radius = torch.where(positive, torch.sqrt(torch.where(positive, mean_sq, 1.0)), 0.0)
    ripple = torch.cos(2.0 * math.pi * x).mean(-1)
    return -20.0 * torch.exp(-0.2 * radius) - torch.exp(ripple) + 20.0 + math.e


def styblinski_tang_fn(x: Tensor) -> Tensor:
    r""":math:`f = \tfrac12 \sum_i x_i^4 - 16 x_i^2 + 5 x_i`."""
    return 0.5 * (x**4 - 16.0 * x**2 + 5.0 * x).sum(-1)


def goldstein_price_fn(x: Tensor) -> Tensor:
    r"""Goldstein-Price: a product of two quartics, spanning six decades on [-2, 2]^2.

    .. math:: f = [1 + (x+y+1)^2 (19 - 14x + 3x^2 - 14y + 6xy + 3y^2)]
              \,[30 + (2x - 3y)^2 (18 - 32x + 12x^2 + 48y - 36xy + 27y^2)]
    """
    u, v = x[..., 0], x[..., 1]
    first = 1.0 + (u + v + 1.0) ** 2 * (
        19.0 - 14.0 * u + 3.0 * u**2 - 14.0 * v + 6.0 * u * v + 3.0 * v**2
    )
    second = 30.0 + (2.0 * u - 3.0 * v) ** 2 * (
        18.0 - 32.0 * u + 12.0 * u**2 + 48.0 * v - 36.0 * u * v + 27.0 * v**2
    )
    return first * second


def saddle_fn(x: Tensor) -> Tensor:
    r""":math:`f = x^2 - y^2 + y^4/4`: a saddle at the origin, minima at (0, ±sqrt 2)."""
    u, v = x[..., 0], x[..., 1]
    return u**2 - v**2 + 0.25 * v**4


def monkey_saddle_fn(x: Tensor) -> Tensor:
    r""":math:`f = x^3 - 3xy^2 = r^3\cos 3\theta`: a degenerate saddle, unbounded below."""
    u, v = x[..., 0], x[..., 1]
    return u**3 - 3.0 * u * v**2


# ---------------------------------------------------------------------------------------
# the problems

_ST_GLOBAL = -2.9035340277711783  # the smaller root of 4x^3 - 32x + 5 = 0
_ST_LOCAL = 2.7468027709908376  # the larger root: a local minimum per coordinate
_ST_VALUE = 0.5 * (_ST_GLOBAL**4 - 16.0 * _ST_GLOBAL**2 + 5.0 * _ST_GLOBAL)  # -39.1661657...


def rosenbrock_nd(n: int) -> Problem:
    r"""Rosenbrock's function in ``n`` dimensions, started at (-1.2, 1, -1.2, 1, ...).

    .. math:: f(x) = \sum_{i=1}^{n-1} 100\,(x_{i+1} - x_i^2)^2 + (1 - x_i)^2,
              \qquad f^* = 0 \text{ at } (1, \dots, 1)

    For 4 <= n <= 7 there is also a local minimum near (-1, 1, ..., 1) (Kok & Sandrock,
    Evol. Comput. 17(3), 2009), not listed in ``local_minima``.

    Args:
        n: the dimension, an integer >= 2.

    Example:
        >>> rosenbrock_nd(10).f_min
        0.0
    """
    n = check_int("n", n, low=2)
    return Problem(
        name="rosenbrock" if n == 2 else f"rosenbrock-{n}d",
        fn=rosenbrock_fn,
        dim=n,
        minima=((1.0,) * n,),
        f_min=0.0,
        start=tuple(-1.2 if i % 2 == 0 else 1.0 for i in range(n)),
        bounds=((-2.0, 2.0), (-1.0, 3.0)) if n == 2 else ((-2.0, 2.0),) * n,
        description="banana valley: easy to find, slow to follow to its end",
        reference="H. H. Rosenbrock, The Computer Journal 3(3), 1960",
    )


def rastrigin_nd(n: int) -> Problem:
    r"""Rastrigin's function in ``n`` dimensions: about :math:`11^n` local minima.

    .. math:: f(x) = 10 n + \sum_i x_i^2 - 10\cos(2\pi x_i), \qquad f^* = 0 \text{ at } 0

    Args:
        n: the dimension, an integer >= 1.

    Example:
        >>> rastrigin_nd(5).minima
        ((0.0, 0.0, 0.0, 0.0, 0.0),)
    """
    n = check_int("n", n, low=1)
    return Problem(
        name="rastrigin" if n == 2 else f"rastrigin-{n}d",
        fn=rastrigin_fn,
        dim=n,
        minima=((0.0,) * n,),
        f_min=0.0,
        start=tuple(-2.3 if i % 2 == 0 else 3.4 for i in range(n)),
        bounds=((-5.12, 5.12),) * n,
        description="a bowl under a grid of ripples: local minima everywhere",
        reference="L. A. Rastrigin, Systems of Extremal Control, 1974",
    )


def ackley_nd(n: int) -> Problem:
    r"""Ackley's function in ``n`` dimensions: a nearly flat, rippled plate with a central hole.

    .. math:: f = -20\exp\Big(-0.2\sqrt{\tfrac1n\textstyle\sum x_i^2}\Big)
              - \exp\Big(\tfrac1n\textstyle\sum\cos 2\pi x_i\Big) + 20 + e,
              \qquad f^* = 0 \text{ at } 0

    The minimum is a kink (a cone point), so the gradient norm does not shrink near it.

    Args:
        n: the dimension, an integer >= 1.

    Example:
        >>> ackley_nd(3)(torch.zeros(3, dtype=torch.float64)).abs() < 1e-12
        tensor(True)
    """
    n = check_int("n", n, low=1)
    return Problem(
        name="ackley" if n == 2 else f"ackley-{n}d",
        fn=ackley_fn,
        dim=n,
        minima=((0.0,) * n,),
        f_min=0.0,
        start=tuple(2.5 if i % 2 == 0 else -1.7 for i in range(n)),
        bounds=((-5.0, 5.0),) * n,
        description="rippled plate with a deep central hole; a kink at the minimum",
        reference="D. H. Ackley, A Connectionist Machine for Genetic Hillclimbing, 1987",
    )


def styblinski_tang_nd(n: int) -> Problem:
    r"""The Styblinski-Tang function in ``n`` dimensions: :math:`2^n` minima, one global.

    .. math:: f = \tfrac12\sum_i x_i^4 - 16x_i^2 + 5x_i, \qquad
              f^* = -39.16616570\ldots\,n \text{ at } x_i = -2.90353\ldots

    Every coordinate has its own local minimum at 2.74680..., so the other :math:`2^n - 1`
    corners are local minima (listed for n = 2).

    Args:
        n: the dimension, an integer >= 1.

    Example:
        >>> round(styblinski_tang_nd(3).f_min, 4)
        -117.4985
    """
    n = check_int("n", n, low=1)
    local: tuple[tuple[float, ...], ...] = ()
    if n == 2:
        a, b = _ST_GLOBAL, _ST_LOCAL
        local = ((b, b), (a, b), (b, a))
    return Problem(
        name="styblinski-tang" if n == 2 else f"styblinski-tang-{n}d",
        fn=styblinski_tang_fn,
        dim=n,
        minima=((_ST_GLOBAL,) * n,),
        f_min=n * _ST_VALUE,
        start=(0.0,) * n,
        bounds=((-5.0, 5.0),) * n,
        description="a quartic per coordinate: one global, 2^n - 1 local minima",
        reference="M. A. Styblinski and T.-S. Tang, Neural Networks 3(4), 1990",
        local_minima=local,
    )


rosenbrock = register(rosenbrock_nd(2), family=rosenbrock_nd)

beale = register(
    Problem(
        name="beale",
        fn=beale_fn,
        dim=2,
        minima=((3.0, 0.5),),
        f_min=0.0,
        start=(1.0, 1.0),
        bounds=((-4.5, 4.5), (-4.5, 4.5)),
        description="flat plateau and steep ridges around a narrow valley",
        reference="E. M. L. Beale, Tech. Rep., Princeton University, 1958; Moré et al. 1981 #5",
    )
)

booth = register(
    Problem(
        name="booth",
        fn=booth_fn,
        dim=2,
        minima=((1.0, 3.0),),
        f_min=0.0,
        start=(-5.0, -5.0),
        bounds=((-10.0, 10.0), (-10.0, 10.0)),
        description="a tilted quadratic bowl (Hessian eigenvalues 2 and 18)",
        reference="Jamil & Yang 2013, function 24",
    )
)

himmelblau = register(
    Problem(
        name="himmelblau",
        fn=himmelblau_fn,
        dim=2,
        minima=(
            (3.0, 2.0),
            (-2.805118086952745, 3.131312518250573),
            (-3.779310253377747, -3.2831859912861696),
            (3.5844283403304917, -1.8481265269644036),
        ),
        f_min=0.0,
        start=(0.0, 0.0),
        bounds=((-5.0, 5.0), (-5.0, 5.0)),
        description="four global minima, all with f = 0; the start decides which",
        reference="D. M. Himmelblau, Applied Nonlinear Programming, 1972",
        saddles=(
            (-0.2708445906673476, -0.9230385564799815),  # the local maximum
            (0.08667750455539634, 2.884254701174776),
            (-3.0730257507643897, -0.08135304428796751),
            (3.385154183607021, 0.0738518798377493),
            (-0.12796134673068008, -1.9537149802445766),
        ),
    )
)

rastrigin = register(rastrigin_nd(2), family=rastrigin_nd)

ackley = register(ackley_nd(2), family=ackley_nd)

styblinski_tang = register(styblinski_tang_nd(2), family=styblinski_tang_nd)

goldstein_price = register(
    Problem(
        name="goldstein-price",
        fn=goldstein_price_fn,
        dim=2,
        minima=((0.0, -1.0),),
        f_min=3.0,
        start=(0.5, -1.5),
        bounds=((-2.0, 2.0), (-2.0, 2.0)),
        description="values over six decades; three local minima (f = 30, 84, 840)",
        reference="A. A. Goldstein and J. F. Price, Math. Comp. 25(115), 1971",
        local_minima=((-0.6, -0.4), (1.8, 0.2), (1.2, 0.8)),
    )
)

saddle = register(
    Problem(
        name="saddle",
        fn=saddle_fn,
        dim=2,
        minima=((0.0, math.sqrt(2.0)), (0.0, -math.sqrt(2.0))),
        f_min=-1.0,
        start=(1.5, 0.01),
        bounds=((-2.0, 2.0), (-2.2, 2.2)),
        description="x^2 - y^2 + y^4/4: a saddle at 0 to escape, minima f = -1 at (0, ±√2)",
        reference="the saddle x^2 - y^2 with a quartic wall; minima by hand (df/dy = y^3 - 2y)",
        saddles=((0.0, 0.0),),
    )
)

monkey_saddle = register(
    Problem(
        name="monkey-saddle",
        fn=monkey_saddle_fn,
        dim=2,
        minima=(),
        f_min=-math.inf,
        start=(0.6, 0.3),
        bounds=((-1.5, 1.5), (-1.5, 1.5)),
        description="x^3 - 3xy^2: no minimum (f -> -inf); a flat saddle at 0",
        reference="a degenerate saddle (zero Hessian at 0); every descent diverges",
        saddles=((0.0, 0.0),),
    )
)
