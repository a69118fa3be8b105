"""The learning-rate range test figure is the sweep's own drawing, sized and saved."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from descend.diagnostics import lr_range_test
from descend.problems import get_problem
from descend.viz import plot_lr_range


@pytest.fixture(scope="module")
def sweep():
    problem = get_problem("rosenbrock")
    return lr_range_test(problem, list(problem.start), method="gd", end=1.0, steps=60)


def test_sweep_smoothed_suggestion_and_divergence_are_drawn(sweep, tmp_path) -> None:
    assert sweep.suggested_lr is not None and sweep.divergence_lr is not None
    fig = plot_lr_range(sweep, tmp_path / "lr.png", title="rosenbrock", dpi=40)
    assert (tmp_path / "lr.png").read_bytes()[:4] == b"\x89PNG"
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and ax.get_title() == "rosenbrock"
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_array_equal(lines["loss"].get_ydata(), sweep.losses)
    np.testing.assert_array_equal(lines["smoothed loss"].get_ydata(), sweep.smoothed)
    marks = [label for label in lines if label.startswith(("suggested lr", "diverges at"))]
    assert marks == [
        f"suggested lr {sweep.suggested_lr:.2g}",
        f"diverges at {sweep.divergence_lr:.2g}",
    ]


def test_same_drawing_as_the_sweeps_plot(sweep) -> None:
    ours = plot_lr_range(sweep).axes[0]
    theirs = sweep.plot().axes[0]
    assert [line.get_label() for line in ours.get_lines()] == [
        line.get_label() for line in theirs.get_lines()
    ]


def test_draws_into_given_axes(sweep) -> None:
    fig = Figure()
    ax = fig.subplots()
    assert plot_lr_range(sweep, ax=ax) is fig
    assert ax.get_xlabel() == "learning rate"


def test_refuses_what_is_not_a_sweep() -> None:
    with pytest.raises(
        TypeError, match="sweep must be the result of descend.diagnostics.lr_range_test"
    ):
        plot_lr_range({"lrs": [1, 2]})
