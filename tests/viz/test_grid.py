"""Methods x learning rates: the driver runs minimize, the plot reads histories only."""

from __future__ import annotations

import math

import numpy as np
import pytest

import descend
from descend.problems import get_problem
from descend.viz import compare_grid, plot_grid, run_grid

METHODS = ["gd", "adam"]
LRS = [0.01, 0.1, 0.6]


@pytest.fixture(scope="module")
def grid():
    return run_grid("booth", METHODS, LRS, max_iter=25, monitors=None)


def test_run_grid_runs_every_cell_from_the_standard_start(grid) -> None:
    assert list(grid) == [(m, r) for m in METHODS for r in LRS]
    problem = get_problem("booth")
    reference = descend.minimize(problem, list(problem.start), "adam", lr=0.1, max_iter=25)
    assert grid["adam", 0.1].fun == reference.fun
    assert grid["gd", 0.6].status.value == "diverged"


def test_final_heatmap_holds_each_runs_final_f(grid, tmp_path) -> None:
    fig = plot_grid(grid, tmp_path / "grid.png", f_min=0.0, title="booth", dpi=40)
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"
    ax = fig.axes[0]
    (image,) = ax.get_images()
    values = np.ma.filled(image.get_array(), np.nan)
    assert values.shape == (2, 3)
    for i, m in enumerate(METHODS):
        for j, r in enumerate(LRS):
            if grid[m, r].status.value == "diverged":
                assert math.isnan(values[i, j])
            else:
                assert values[i, j] == pytest.approx(max(grid[m, r].fun, image.norm.vmin))
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("diverged") == sum(r.status.value == "diverged" for r in grid.values())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.01", "0.1", "0.6"]
    assert [t.get_text() for t in ax.get_yticklabels()] == METHODS


def test_small_multiples_are_the_histories(grid) -> None:
    fig = plot_grid(grid, kind="curves")
    axes = np.array(fig.axes).reshape(2, 3)
    for i, m in enumerate(METHODS):
        for j, r in enumerate(LRS):
            (line,) = axes[i, j].get_lines()
            np.testing.assert_array_equal(line.get_ydata(), grid[m, r].history["f"])
    assert axes[0, 0].get_title() == "lr = 0.01" and axes[1, 0].get_ylabel() == "adam"


def test_plotting_runs_nothing(grid) -> None:
    before = {k: (r.nfev, len(r.history)) for k, r in grid.items()}
    plot_grid(grid)
    plot_grid(grid, kind="curves")
    assert before == {k: (r.nfev, len(r.history)) for k, r in grid.items()}


def test_compare_grid_on_a_function() -> None:
    fig = compare_grid(
        lambda x: ((x - 1) ** 2).sum(), ["gd"], [0.1, 0.2], x0=[0.0, 0.0], max_iter=5
    )
    assert len(fig.axes[0].texts) == 2 and fig._suptitle is None


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (("booth", ["trust-region"], [0.1]), {}, ValueError, "'trust-region' in methods has no"),
        (("booth", ["gd", "gd"], [0.1]), {}, ValueError, "names 'gd' twice"),
        (("booth", ["gd"], []), {}, ValueError, "lrs must not be empty"),
        (("booth", ["gd"], [-1.0]), {}, ValueError, "learning rates > 0, got -1.0"),
        (("booth", ["gd"], [0.1]), {"lr": 0.1}, ValueError, "lr is what the grid varies"),
        ((lambda x: x.sum(), ["gd"], [0.1]), {}, ValueError, "x0 is required"),
        ((3, ["gd"], [0.1]), {}, TypeError, "fun_or_problem must be a Problem"),
        (
            ("booth", ["gd"], [0.1]),
            {"kind": "bars"},
            ValueError,
            "kind must be one of final, curves",
        ),
    ],
)
def test_bad_arguments(args, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        compare_grid(*args, **kwargs)


def test_plot_grid_wants_method_lr_keys(grid) -> None:
    with pytest.raises(ValueError, match=r"keys must be \(method, lr\) pairs, got 'gd'"):
        plot_grid({"gd": grid["gd", 0.1]})
