"""multistart takes its arguments in minimize's order, ``(fun, x0, method)`` by position and
the rest by keyword; a call written for the old order ``(fun, bounds, k, ...)`` is refused
with a TypeError that says so, never read as something else."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from descend import minimize
from descend.constraints import Box
from descend.multistart import multistart
from descend.problems import get_problem

HIMMELBLAU = get_problem("himmelblau")
BOX = [(-5.0, 5.0), (-5.0, 5.0)]


def test_the_positional_arguments_are_minimizes() -> None:
    ours = inspect.signature(multistart).parameters.values()
    theirs = inspect.signature(minimize).parameters.values()
    positional = [p.name for p in ours if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert positional == [p.name for p in theirs if p.kind is p.POSITIONAL_OR_KEYWORD][:3]
    assert positional == ["fun", "x0", "method"]
    method = inspect.signature(multistart).parameters["method"].default
    assert method == inspect.signature(minimize).parameters["method"].default


def test_by_position_and_by_keyword_one_run_and_minimizes_restarts() -> None:
    x0 = [1.0, 2.0]
    options = {"k": 6, "seed": 4, "lr": 0.05, "max_iter": 50}
    by_position = multistart(HIMMELBLAU.fn, x0, "adam", **options)
    by_keyword = multistart(HIMMELBLAU.fn, x0=x0, method="adam", **options)
    np.testing.assert_array_equal(by_position.x, by_keyword.x)
    assert [r.fun for r in by_position.results] == [r.fun for r in by_keyword.results]
    np.testing.assert_array_equal(by_position.x[0], x0)  # the first start is x0 itself
    best = minimize(HIMMELBLAU.fn, x0, "adam", restarts=6, seed=4, lr=0.05, max_iter=50)
    np.testing.assert_array_equal(best.x, by_position.best.x)
    boxed = multistart(HIMMELBLAU.fn, None, "gd", bounds=BOX, k=50, seed=0, max_iter=0)
    assert (np.abs(boxed.x) <= 5).all() and boxed.x.std(0).min() > 2  # uniform in the box


@pytest.mark.parametrize(
    "bounds",
    [
        BOX,
        tuple(tuple(pair) for pair in BOX),  # a Problem's own bounds
        [[-5, 5], [-5, 5]],
        [(0.0, None), (0, 1)],
        Box([-5.0, -5.0], [5.0, 5.0]),
        "nonnegative",
    ],
    ids=["pairs", "problem-bounds", "lists", "open-end", "box", "named-set"],
)
def test_bounds_where_x0_stands_are_refused(bounds) -> None:
    with pytest.raises(TypeError, match=r"minimize's order: multistart\(fun, x0, method, \*"):
        multistart(HIMMELBLAU.fn, bounds, 16)
    with pytest.raises(TypeError, match=r"looks like bounds \(.*\), not x0: pass bounds="):
        multistart(HIMMELBLAU.fn, bounds, k=16, method="gd")


def test_scipy_bounds_where_x0_stands_are_refused() -> None:
    optimize = pytest.importorskip("scipy.optimize")
    with pytest.raises(TypeError, match="looks like bounds"):
        multistart(HIMMELBLAU.fn, optimize.Bounds([-5, -5], [5, 5]), 8)


def test_a_count_where_method_stands_is_refused() -> None:
    with pytest.raises(TypeError, match=r"method got the number 16: pass k= by keyword"):
        multistart(HIMMELBLAU, None, 16)


def test_x0_of_any_shape_is_still_x0() -> None:
    """A matrix x0 with two columns is a centre, not bounds, through minimize's restarts;
    a tensor or array x0 is never suspected."""

    def matrix_bowl(x: torch.Tensor) -> torch.Tensor:
        return ((x - 1.0) ** 2).sum()

    res = minimize(matrix_bowl, [[0.0, 2.0], [3.0, 4.0]], "lbfgs", restarts=2, seed=0)
    assert res.x.shape == (2, 2) and np.allclose(res.x, 1.0)
    around = multistart(matrix_bowl, torch.zeros(3, 2), "gd", k=2, lr=0.1, max_iter=0)
    assert around.x.shape == (2, 6)
