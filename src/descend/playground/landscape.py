"""The landscapes the playground draws and races on: every problem of
:mod:`descend.problems` (a problem in more than two dimensions as the 2-D slice through
its minimum) and any formula in ``x`` and ``y``.

Example:
    >>> land = get_landscape(problem="rosenbrock")
    >>> land.fn(torch.tensor([1.0, 1.0], dtype=torch.float64))
    tensor(0., dtype=torch.float64)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from descend.playground.formula import parse_formula
from descend.problems import PROBLEMS, Problem, get_problem

__all__ = [
    "FORMULA_BOUNDS",
    "MAX_GRID",
    "Landscape",
    "get_landscape",
    "grid",
    "problem_names",
    "slice_of",
    "sliced",
]

#: the square a formula is drawn on unless the request names one
FORMULA_BOUNDS = ((-3.0, 3.0), (-3.0, 3.0))
#: the most grid points per axis a landscape request may ask for
MAX_GRID = 200


@dataclass(frozen=True)
class Landscape:
    """A function of two variables with what the page marks on it.

    Attributes:
        name: the problem's registry name, or ``"formula"``.
        fn: f of ``x`` with shape ``(..., 2)``, returning shape ``(...)`` (torch ops).
        f_min: the known minimum value f* on this landscape; None when unknown.
        minima: the known minimizers that lie on it, each ``(x, y)``.
        bounds: ``((x_low, x_high), (y_low, y_high))`` to draw.
        start: the standard start.
        rest: for a slice of an n-D problem, the coordinates 3..n held fixed.
        formula: the formula's text, for a formula landscape.
        description: one line for the page.
    """

    name: str
    fn: Callable[[Tensor], Tensor]
    f_min: float | None
    minima: tuple[tuple[float, float], ...]
    bounds: tuple[tuple[float, float], tuple[float, float]]
    start: tuple[float, float]
    rest: tuple[float, ...] = ()
    formula: str | None = None
    description: str = ""


def get_landscape(
    problem: str | None = None,
    formula: str | None = None,
    bounds: Sequence[Sequence[float]] | None = None,
) -> Landscape:
    """The landscape of a registered problem or of a formula (exactly one of the two).

    Args:
        problem: a name in ``descend.problems.PROBLEMS``.
        formula: an expression in x and y (see :func:`~descend.playground.formula.parse_formula`).
        bounds: ``[[x_low, x_high], [y_low, y_high]]`` to draw instead of the default.

    Raises:
        ValueError: naming the argument that is wrong.
    """
    if (problem is None) == (formula is None):
        raise ValueError("give exactly one of problem (a name) or formula (an expression in x, y)")
    for name, given in (("problem", problem), ("formula", formula)):
        if given is not None and not isinstance(given, str):
            raise TypeError(f"{name} must be a string, got {type(given).__name__}")
    land = _landscape(problem, formula)
    if bounds is not None:
        land = replace(land, bounds=_check_bounds(bounds))
    return land


def slice_of(problem: Problem) -> Landscape:
    """``problem`` as a landscape: itself in 2-D; in n-D the slice through its first known
    minimum (or its start) varying the first two coordinates."""
    low, high = problem.bounds[0], problem.bounds[1]
    f_min = problem.f_min if math.isfinite(problem.f_min) else None
    if problem.dim == 2:
        return Landscape(
            name=problem.name, fn=problem, f_min=f_min,
            minima=tuple((m[0], m[1]) for m in problem.minima), bounds=(low, high),
            start=(problem.start[0], problem.start[1]), description=problem.description,
        )  # fmt: skip
    anchor = problem.minima[0] if problem.minima else problem.start
    rest = tuple(float(v) for v in anchor[2:])
    on_slice = tuple((m[0], m[1]) for m in problem.minima if tuple(m[2:]) == rest)
    return Landscape(
        name=problem.name, fn=sliced(problem, rest), f_min=f_min if on_slice else None,
        minima=on_slice, bounds=(low, high), start=(problem.start[0], problem.start[1]),
        rest=rest,
        description=f"{problem.description} (x3..x{problem.dim} fixed at "
        f"{'the minimum' if problem.minima else 'the start'})",
    )  # fmt: skip


def sliced(fn: Callable[[Tensor], Tensor], rest: Sequence[float]) -> Callable[[Tensor], Tensor]:
    """``fn`` of the first two coordinates, the others held at ``rest`` (what
    :func:`descend.playground.race.race_code` prints for a slice, operation for operation)."""
    fixed = torch.tensor(rest, dtype=torch.float64)

    def f(x: Tensor) -> Tensor:
        return fn(torch.cat([x, fixed.to(x.dtype).expand(*x.shape[:-1], fixed.numel())], dim=-1))

    return f


def grid(land: Landscape, n: int) -> dict[str, list]:
    """f on an ``n`` x ``n`` grid over the landscape's bounds: ``x``, ``y`` (the axes) and
    ``z`` (rows along y); values that are not finite come back as None."""
    if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= MAX_GRID:
        raise ValueError(f"n must be an integer from 2 to {MAX_GRID}, got {n!r}")
    (x0, x1), (y0, y1) = land.bounds
    xs = torch.linspace(x0, x1, n, dtype=torch.float64)
    ys = torch.linspace(y0, y1, n, dtype=torch.float64)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    with torch.no_grad():
        z = land.fn(torch.stack([xx, yy], dim=-1))
    if z.shape != xx.shape:
        raise ValueError(f"the landscape returned shape {tuple(z.shape)} on an {n} x {n} grid")
    z = z.to(torch.float64)
    z = torch.where(torch.isfinite(z), z, torch.nan)
    rows = [[None if math.isnan(v) else v for v in row] for row in z.tolist()]
    return {"x": xs.tolist(), "y": ys.tolist(), "z": rows}


@functools.lru_cache(maxsize=64)
def _landscape(problem: str | None, formula: str | None) -> Landscape:
    """The landscape of a problem or a formula, made once: the same request gets the same
    ``fn``, whose compiled race kernels (:mod:`descend.engine.compiled_rows`) it reuses."""
    if formula is not None:
        return Landscape(
            name="formula", fn=parse_formula(formula), f_min=None, minima=(),
            bounds=FORMULA_BOUNDS, start=(2.0, 2.0), formula=formula,
            description=f"f(x, y) = {formula}",
        )  # fmt: skip
    assert problem is not None
    return slice_of(get_problem(problem))


def _check_bounds(
    bounds: Sequence[Sequence[float]],
) -> tuple[tuple[float, float], tuple[float, float]]:
    try:
        pairs = tuple((float(lo), float(hi)) for lo, hi in bounds)
    except (TypeError, ValueError):
        raise ValueError(
            f"bounds must be [[x_low, x_high], [y_low, y_high]], got {bounds!r}"
        ) from None
    if len(pairs) != 2 or not all(
        math.isfinite(lo) and math.isfinite(hi) and lo < hi for lo, hi in pairs
    ):
        raise ValueError(
            f"bounds must be two finite [low, high] pairs with low < high, got {bounds!r}"
        )
    return pairs[0], pairs[1]


def problem_names() -> list[str]:
    """Every registered problem, 2-D ones first, each group by name."""
    return sorted(PROBLEMS, key=lambda k: (PROBLEMS[k].dim != 2, k))
