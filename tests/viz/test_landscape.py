"""Contour and surface plots: the recorded paths over the landscape, evaluated once."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from mpl_toolkits.mplot3d import Axes3D

from descend.problems import get_problem
from descend.viz import plot_contour, plot_surface


def test_contour_draws_each_recorded_path(booth_runs, tmp_path) -> None:
    problem, runs = booth_runs
    fig = plot_contour(problem, runs, tmp_path / "c.svg")
    assert "<svg" in (tmp_path / "c.svg").read_text()
    ax = fig.axes[0]
    lines = {line.get_label(): line.get_xydata() for line in ax.get_lines()}
    for label, result in runs.items():
        np.testing.assert_array_equal(lines[label], result.history["x"])
    np.testing.assert_array_equal(lines["start"], [[-4.0, 6.0]])
    assert "global minimum" in lines
    assert ax.get_xlim()[0] <= -4.0  # the start is in view


def test_contour_of_the_landscape_alone_and_of_raw_points() -> None:
    problem = get_problem("himmelblau")
    alone = plot_contour(problem)
    assert alone.axes[0].get_title() == problem.description
    points = np.array([[0.0, 0.0], [1.0, 1.0], [3.0, 2.0]])
    ax = plot_contour(problem, {"mine": points}).axes[0]
    mine = next(line for line in ax.get_lines() if line.get_label() == "mine")
    np.testing.assert_array_equal(mine.get_xydata(), points)


def test_the_problem_is_evaluated_once_on_the_grid(booth_runs) -> None:
    problem, runs = booth_runs
    calls = []

    def counting(x):
        calls.append(tuple(x.shape))
        return problem.fn(x)

    plot_contour(dataclasses.replace(problem, fn=counting), runs)
    assert len(calls) == 1 and len(calls[0]) == 3
    calls.clear()
    plot_surface(dataclasses.replace(problem, fn=counting), runs)
    assert len(calls) == 1  # the path heights are the recorded f values


def test_surface_lifts_paths_to_their_recorded_f(booth_runs) -> None:
    problem, runs = booth_runs
    kept = {k: runs[k] for k in ("gd", "adam")}
    fig = plot_surface(problem, kept, elev=20, azim=-100)
    ax = fig.axes[0]
    assert isinstance(ax, Axes3D)
    assert (ax.elev, ax.azim) == (20, -100)
    lines = {line.get_label(): line for line in ax.get_lines()}
    for label, result in kept.items():
        xs, ys, zs = lines[label].get_data_3d()
        np.testing.assert_array_equal(np.c_[xs, ys], result.history["x"])
        label_z = ax.get_zlabel()
        f = result.history["f"]
        expected = f if label_z == "f" else np.log10(np.maximum(f - problem.f_min, 1e-300))
        if label_z != "f":  # log heights are clipped at the lowest contour level
            mask = zs > zs.min()
            np.testing.assert_allclose(zs[mask], expected[mask])
        else:
            np.testing.assert_array_equal(zs, expected)


@pytest.mark.parametrize("plot", [plot_contour, plot_surface])
def test_refusals(plot, booth_runs) -> None:
    problem, _ = booth_runs
    with pytest.raises(ValueError, match="dimension 3; landscapes are drawn for 2-D problems"):
        plot(get_problem("rosenbrock-3d"))
    with pytest.raises(TypeError, match="problem must be a descend.problems.Problem"):
        plot("booth")
    import descend

    bare = descend.minimize(problem, [0.0, 0.0], "gd", max_iter=3)
    with pytest.raises(ValueError, match=r"results\['bare'\] has no recorded path"):
        plot(problem, {"bare": bare})
