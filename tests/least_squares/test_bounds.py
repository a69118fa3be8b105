"""Bounds with trf and dogbox: every end is feasible, and matches SciPy's on bounded problems.

SciPy's own bounded test set for least_squares (Rosenbrock from five starts in six boxes,
``scipy/optimize/tests/test_least_squares.py``), then boxes drawn around the minimizers of
Moré-Garbow-Hillstrom problems, most of which cut the minimizer off. With bounds a problem
may have several constrained minima, so there "solved" means a cost within 1e-6 (relative,
plus 1e-12 absolute) of the better of the two libraries' costs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import least_squares as scipy_least_squares

from descend import least_squares
from descend.problems.boxes import random_boxes

INF = math.inf


def rosenbrock(x):
    return torch.stack([10.0 * (x[1] - x[0] ** 2), 1.0 - x[0]])


def rosenbrock_np(x):
    return np.array([10.0 * (x[1] - x[0] ** 2), 1.0 - x[0]])


def rosenbrock_jac(x):
    return np.array([[-20.0 * x[0], 10.0], [-1.0, 0.0]])


ROSENBROCK_BOXES = [
    ([-2.0, 1.0], ([-INF, -1.5], INF)),
    ([2.0, 2.0], ([-INF, 1.5], INF)),
    ([-2.0, 2.0], ([-INF, 1.5], INF)),
    ([0.0, 2.0], ([-INF, 1.5], [1.0, INF])),
    ([2.0, 2.0], ([1.0, 1.5], [3.0, 3.0])),
    ([-1.2, 1.0], ([-50.0, -0.3], [-0.5, 100.0])),
]


def feasible(x, bounds) -> bool:
    lb, ub = (np.broadcast_to(np.asarray(b, dtype=float), x.shape) for b in bounds)
    return bool(np.all((lb <= x) & (x <= ub)))


@pytest.mark.parametrize("method", ["trf", "dogbox"])
@pytest.mark.parametrize(("x0", "bounds"), ROSENBROCK_BOXES)
def test_rosenbrock_in_scipys_boxes(method, x0, bounds) -> None:
    ours = least_squares(rosenbrock, x0, method, bounds=bounds)
    ref = scipy_least_squares(rosenbrock_np, x0, jac=rosenbrock_jac, method=method, bounds=bounds)
    assert feasible(ours.x, bounds)
    assert ours.success
    assert ours.optimality < 1e-5  # SciPy's own test of these problems
    np.testing.assert_allclose(ours.x, ref.x, rtol=1e-6, atol=1e-9)
    assert ours.cost == pytest.approx(ref.cost, rel=1e-6, abs=1e-12)
    np.testing.assert_array_equal(ours.active_mask, ref.active_mask)


#: the small MGH problems, boxes around their minimizers (descend.problems.boxes)
BOXED = ("mgh-rosenbrock", "mgh-beale", "mgh-helical-valley", "mgh-bard", "mgh-box3d",
         "mgh-wood", "mgh-osborne-1", "mgh-kowalik-osborne")  # fmt: skip


@pytest.mark.parametrize("method", ["trf", "dogbox"])
def test_mgh_boxes_feasible_and_as_good_as_scipy(method) -> None:
    ours_solved = theirs_solved = 0
    table = []
    for box in random_boxes(BOXED):
        problem, x0, bounds = box.problem, box.x0, (box.low, box.high)
        jacobian = torch.func.jacfwd(problem.residuals)
        ours = least_squares(problem.residuals, x0, method, bounds=bounds)
        ref = scipy_least_squares(
            lambda x, p=problem: p.residuals(torch.from_numpy(x)).numpy(),
            x0,
            jac=lambda x, j=jacobian: j(torch.from_numpy(x)).numpy(),
            method=method,
            bounds=bounds,
        )
        assert feasible(ours.x, bounds), problem.name
        best = min(ours.cost, ref.cost)
        ours_solved += ours.cost <= best + 1e-6 * abs(best) + 1e-12
        theirs_solved += ref.cost <= best + 1e-6 * abs(best) + 1e-12
        table.append(f"{problem.name} {bounds}: descend {ours.cost:.10g}, scipy {ref.cost:.10g}")
    assert ours_solved >= theirs_solved, "\n".join(table)


@pytest.mark.parametrize("method", ["trf", "dogbox"])
def test_a_bound_that_binds_is_reported_active(method) -> None:
    """min (x - 3)^2 over x <= 1 ends at the bound, marked +1, with the gradient pointing out."""
    res = least_squares(lambda x: x - 3.0, [0.0], method, bounds=(-INF, 1.0))
    assert res.x[0] == pytest.approx(1.0, abs=1e-8)
    assert res.x[0] <= 1.0
    assert res.active_mask.tolist() == [1]
    assert res.grad[0] < 0
    assert res.success


def test_trf_starts_strictly_inside() -> None:
    """A start on the bound is moved inside first (trf's iterates are interior)."""
    seen = []

    def residuals(x):
        seen.append(x.detach().clone())
        return x - 3.0

    least_squares(residuals, [1.0], "trf", bounds=(1.0, 5.0))
    assert seen[0][0] > 1.0
