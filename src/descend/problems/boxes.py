"""Bounded test problems: seeded random boxes around the minimizers of the MGH problems,
the standard start clipped into each, so a bound may or may not bind at the solution.

Each side of a box is 1/2 to 2 scale units wide (a unit is max(1, |x*_i|)), its low end
drawn from 1 unit below to 0.3 above the minimizer x*: the minimizer lies inside or just
outside, and then the constrained minimum sits on the box's face.

Example:
    >>> for box in random_boxes(["mgh-rosenbrock"], count=2):
    ...     descend.minimize(box.problem.fn, box.x0, "lbfgs", bounds=box.bounds)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from descend.problems.mgh import MGH_PROBLEMS, LeastSquaresProblem

__all__ = ["BoxedProblem", "random_boxes"]


@dataclass(frozen=True)
class BoxedProblem:
    """An MGH problem in a box: ``name`` is ``<problem>/<i>``, ``x0`` the standard start
    clipped into ``[low, high]``."""

    name: str
    problem: LeastSquaresProblem
    x0: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @property
    def bounds(self) -> list[tuple[float, float]]:
        """SciPy's form: one ``(low, high)`` pair per coordinate."""
        return [(float(lo), float(hi)) for lo, hi in zip(self.low, self.high)]


def random_boxes(names: Iterable[str], count: int = 3, seed: int = 0) -> Iterator[BoxedProblem]:
    """``count`` boxes around each named MGH problem's first minimizer, from one seeded
    generator (the same names, count and seed give the same boxes)."""
    generator = np.random.default_rng(seed)
    for name in names:
        problem = MGH_PROBLEMS[name]
        minimizer = np.array(problem.minima[0])
        size = np.maximum(1.0, np.abs(minimizer))
        for i in range(count):
            low = minimizer + size * generator.uniform(-1.0, 0.3, problem.dim)
            high = low + size * generator.uniform(0.5, 2.0, problem.dim)
            x0 = np.clip(np.array(problem.start), low, high)
            yield BoxedProblem(f"{name}/{i}", problem, x0, low, high)
