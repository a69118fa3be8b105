"""The race plot is drawn from the recorded histories alone."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

import descend
from descend.problems import get_problem, quadratic
from descend.viz import plot_race

METHODS = ("gd", "momentum", "adam")


def _race(problem, max_iter: int = 60, record: bool = True, start=None):
    x0 = list(problem.start if start is None else start)
    return {m: descend.minimize(problem, x0, m, max_iter=max_iter, record=record) for m in METHODS}


@pytest.fixture(scope="module")
def rosenbrock_race():
    problem = get_problem("rosenbrock")
    return problem, _race(problem)


def _counting(problem):
    """The problem with its function wrapped to count calls."""
    calls = []

    def fn(x):
        calls.append(tuple(x.shape))
        return problem.fn(x)

    return dataclasses.replace(problem, fn=fn), calls


def test_two_dimensional_race_has_landscape_and_loss_panels(rosenbrock_race) -> None:
    problem, results = rosenbrock_race
    fig = plot_race(problem, results)
    assert isinstance(fig, Figure)
    landscape, loss, colorbar = fig.axes
    assert colorbar.get_ylabel() == "f − f*"
    assert loss.get_yscale() == "log"
    assert landscape.get_xlim() == problem.bounds[0]
    assert landscape.get_ylim() == problem.bounds[1]
    assert landscape.get_xlabel() and loss.get_xlabel() == "iteration k"
    assert "rosenbrock" in fig._suptitle.get_text()
    # Rosenbrock spans decades: log-spaced levels
    assert any(isinstance(c.norm, LogNorm) for c in landscape.collections if hasattr(c, "norm"))
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert [entry.split(":")[0] for entry in legend] == list(METHODS)
    markers = [t.get_text() for t in landscape.get_legend().get_texts()]
    assert markers == ["start", "global minimum"]


def test_paths_and_losses_are_the_recorded_histories(rosenbrock_race) -> None:
    problem, results = rosenbrock_race
    fig = plot_race(problem, results)
    landscape, loss, _ = fig.axes
    paths = [line.get_xydata() for line in landscape.get_lines() if len(line.get_xydata()) > 1]
    losses = [line.get_xydata() for line in loss.get_lines() if len(line.get_xydata()) > 1]
    for path, curve, result in zip(paths, losses, results.values(), strict=True):
        history = result.history.as_dict()
        np.testing.assert_array_equal(path, history["x"])
        np.testing.assert_array_equal(curve[:, 0], history["iteration"])
        np.testing.assert_allclose(curve[:, 1], np.maximum(history["f"], 1e-16))


def test_plot_never_reruns_an_optimizer() -> None:
    problem, calls = _counting(get_problem("beale"))
    results = _race(problem, max_iter=20)
    before = {m: (r.nit, r.nfev, len(r.history)) for m, r in results.items()}
    calls.clear()
    plot_race(problem, results)
    # one batched evaluation of the grid for the contours, nothing else
    assert len(calls) == 1 and len(calls[0]) == 3
    assert before == {m: (r.nit, r.nfev, len(r.history)) for m, r in results.items()}


def test_saves_png_and_svg(rosenbrock_race, tmp_path: Path) -> None:
    problem, results = rosenbrock_race
    plot_race(problem, results, tmp_path / "race.png", dpi=40)
    assert (tmp_path / "race.png").read_bytes()[:4] == b"\x89PNG"
    plot_race(problem, results, str(tmp_path / "race.svg"))
    assert "<svg" in (tmp_path / "race.svg").read_text()


def test_other_dimensions_get_the_loss_panel_only() -> None:
    problem = quadratic(5, 50.0, seed=1)
    results = _race(problem, record=False)
    fig = plot_race(problem, results, title="five dimensions")
    (loss,) = fig.axes
    assert loss.get_yscale() == "log"
    assert fig._suptitle.get_text() == "five dimensions"
    assert "dimension 5" in loss.get_title()


def test_custom_start_is_marked_and_kept_in_view() -> None:
    problem = get_problem("booth")
    results = _race(problem, max_iter=10, start=(-14.0, 3.0))
    landscape = plot_race(problem, results).axes[0]
    start = next(line for line in landscape.get_lines() if line.get_label() == "start")
    np.testing.assert_array_equal(start.get_xydata(), [[-14.0, 3.0]])
    assert landscape.get_xlim()[0] < -14.0
    assert "(-14, 3)" in landscape.get_title()


def test_problem_without_minimum_uses_symlog_and_clips_divergence() -> None:
    problem = get_problem("monkey-saddle")
    results = _race(problem, max_iter=400)
    assert results["momentum"].status.value == "diverged"
    fig = plot_race(problem, results)
    landscape, loss, _ = fig.axes
    assert loss.get_yscale() == "symlog"
    bottom, top = loss.get_ylim()
    assert math.isfinite(bottom) and bottom > -1e10  # not stretched to -1e200
    assert top == pytest.approx(2.0)  # f rose no higher than f(start) = 0.054 < 1
    markers = [t.get_text() for t in landscape.get_legend().get_texts()]
    assert "global minimum" not in markers and "saddle / maximum" in markers


def test_local_minima_and_saddles_are_marked() -> None:
    problem = get_problem("goldstein-price")
    fig = plot_race(problem, _race(problem, max_iter=5))
    labels = {line.get_label() for line in fig.axes[0].get_lines()}
    assert {"start", "global minimum", "local minima"} <= labels
    problem = get_problem("himmelblau")
    fig = plot_race(problem, _race(problem, max_iter=5))
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert len(lines["global minima"].get_xdata()) == 4
    assert len(lines["saddle / maximum"].get_xdata()) == len(problem.saddles)


def test_refuses_results_without_recorded_paths(rosenbrock_race) -> None:
    problem, _ = rosenbrock_race
    results = _race(problem, max_iter=5, record=False)
    with pytest.raises(ValueError, match=r"results\['gd'\] has no recorded path.*record=True"):
        plot_race(problem, results)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (("not a problem", {}), TypeError, "problem must be a descend.problems.Problem"),
        ((None, {}), ValueError, "non-empty mapping"),
        ((None, {"gd": 3}), TypeError, r"results\['gd'\] must be an OptimizeResult"),
    ],
)
def test_bad_arguments(args, error, match) -> None:
    problem, results = args
    if problem is None:
        problem = get_problem("booth")
    with pytest.raises(error, match=match):
        plot_race(problem, results)


def test_bad_dpi(rosenbrock_race) -> None:
    problem, results = rosenbrock_race
    with pytest.raises(ValueError, match="dpi must be an integer >= 1, got 0"):
        plot_race(problem, results, dpi=0)


def test_dimension_mismatch_is_refused() -> None:
    three = _race(get_problem("rosenbrock-3d"), max_iter=3)
    with pytest.raises(ValueError, match="points of dimension 3, but problem 'rosenbrock'"):
        plot_race(get_problem("rosenbrock"), three)
