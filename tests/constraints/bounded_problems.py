"""Bounded test problems, shared by tests/constraints and benchmarks/bounds_lbfgsb.py.

* SciPy's own bounded problems: the Hock-Schittkowski problems of SciPy's TNC tests
  (``scipy/optimize/tests/test_tnc.py``: HS 1, 2, 3, 4, 5, 38, 45, with SciPy's starts,
  boxes and known solutions), written here in torch.
* Random boxes around the minimizers of Moré-Garbow-Hillstrom problems
  (``descend.problems.mgh``), as the least-squares tests build them: each side from 1/2 to
  2 scale units wide, shifted so that the minimizer is inside or just outside, the
  standard start projected into the box.

:func:`compare` runs descend's bounded ``"L-BFGS-B"`` and SciPy's L-BFGS-B on one problem
with the same tolerances (SciPy's defaults) and the same exact gradient.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize as scipy_minimize

import descend
from descend.problems.boxes import random_boxes

INF = math.inf


@dataclass(frozen=True)
class Bounded:
    """A function, a start and a box: ``bounds`` as SciPy's (low, high) pairs."""

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    x0: list[float]
    bounds: list[tuple[float, float]]
    xopt: list[float] | None = None

    def feasible(self, x: np.ndarray, atol: float = 0.0) -> bool:
        low, high = np.array(self.bounds, dtype=float).T
        return bool(np.all((x >= low - atol) & (x <= high + atol)))


def _hs1(x):
    return 100.0 * (x[1] - x[0] ** 2) ** 2 + (1.0 - x[0]) ** 2


def _hs3(x):
    return x[1] + 1e-5 * (x[1] - x[0]) ** 2


def _hs4(x):
    return (x[0] + 1.0) ** 3 / 3.0 + x[1]


def _hs5(x):
    return torch.sin(x[0] + x[1]) + (x[0] - x[1]) ** 2 - 1.5 * x[0] + 2.5 * x[1] + 1.0


def _hs38(x):
    return 1e-5 * (
        100.0 * (x[1] - x[0] ** 2) ** 2 + (1.0 - x[0]) ** 2
        + 90.0 * (x[3] - x[2] ** 2) ** 2 + (1.0 - x[2]) ** 2
        + 10.1 * ((x[1] - 1.0) ** 2 + (x[3] - 1.0) ** 2)
        + 19.8 * (x[1] - 1.0) * (x[3] - 1.0)
    )  # fmt: skip


def _hs45(x):
    return 2.0 - x.prod() / 120.0


#: SciPy's TNC test problems (test_tnc.py: test_minimize_tnc1 ... tnc45)
SCIPY_PROBLEMS = [
    Bounded("hs1", _hs1, [-2.0, 1.0], [(-INF, INF), (-1.5, INF)], [1.0, 1.0]),
    Bounded("hs2", _hs1, [-2.0, 1.0], [(-INF, INF), (1.5, INF)], [-1.2210262419616387, 1.5]),
    Bounded("hs3", _hs3, [10.0, 1.0], [(-INF, INF), (0.0, INF)], [0.0, 0.0]),
    Bounded("hs4", _hs4, [1.125, 0.125], [(1.0, INF), (0.0, INF)], [1.0, 0.0]),
    Bounded("hs5", _hs5, [0.0, 0.0], [(-1.5, 4.0), (-3.0, 3.0)],
            [-0.54719755119659763, -1.5471975511965976]),
    Bounded("hs38", _hs38, [-3.0, -1.0, -3.0, -1.0], [(-10.0, 10.0)] * 4, [1.0] * 4),
    Bounded("hs45", _hs45, [2.0] * 5, [(0.0, 1.0), (0.0, 2.0), (0.0, 3.0), (0.0, 4.0),
            (0.0, 5.0)], [1.0, 2.0, 3.0, 4.0, 5.0]),
]  # fmt: skip

#: the MGH problems the random boxes are drawn around (small ones, minimizer known)
MGH_NAMES = ("mgh-rosenbrock", "mgh-beale", "mgh-helical-valley", "mgh-bard", "mgh-box3d",
             "mgh-wood", "mgh-osborne-1", "mgh-kowalik-osborne")  # fmt: skip


def mgh_boxes(names=MGH_NAMES, count: int = 3, seed: int = 0) -> Iterator[Bounded]:
    """``count`` seeded random boxes around each named MGH problem's minimizer."""
    for box in random_boxes(names, count, seed):
        yield Bounded(box.name, box.problem.fn, box.x0.tolist(), box.bounds)


@dataclass(frozen=True)
class Outcome:
    """One library's end on one problem."""

    x: np.ndarray
    fun: float
    time: float
    nfev: int


def run_descend(problem: Bounded, method: str = "L-BFGS-B", **options: Any) -> Outcome:
    started = time.perf_counter()
    res = descend.minimize(problem.fn, problem.x0, method, bounds=problem.bounds,
                           monitors=None, **options)  # fmt: skip
    return Outcome(res.x, res.fun, time.perf_counter() - started, res.nfev)


def run_scipy(problem: Bounded) -> Outcome:
    def fun_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        t = torch.from_numpy(x).requires_grad_(True)
        f = problem.fn(t)
        (g,) = torch.autograd.grad(f, t)
        return f.item(), g.numpy()

    started = time.perf_counter()
    res = scipy_minimize(fun_and_grad, problem.x0, jac=True, method="L-BFGS-B",
                         bounds=problem.bounds)  # fmt: skip
    return Outcome(res.x, float(res.fun), time.perf_counter() - started, res.nfev)


def solved(outcome: Outcome, best: float, problem: Bounded) -> bool:
    """Feasible, and f within 1e-6 (relative) + 1e-9 (absolute) of the better final f."""
    return problem.feasible(outcome.x) and outcome.fun <= best + 1e-6 * abs(best) + 1e-9
