"""Loss curves read the recorded histories: f per iteration, fit's steps, epochs and
validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

import descend
from descend.runs import RunRecord
from descend.viz import plot_loss


def _lines(ax) -> dict[str, np.ndarray]:
    return {line.get_label(): line.get_xydata() for line in ax.get_lines()}


def test_each_run_is_its_history_on_a_log_axis(booth_runs, tmp_path) -> None:
    _, runs = booth_runs
    kept = {k: runs[k] for k in ("gd", "adam")}
    fig = plot_loss(kept, tmp_path / "loss.png", dpi=40)
    assert isinstance(fig, Figure) and (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"
    (ax,) = fig.axes
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "iteration"
    lines = _lines(ax)
    for label, result in kept.items():
        history = result.history.as_dict()
        np.testing.assert_array_equal(lines[label][:, 0], history["iteration"])
        np.testing.assert_array_equal(lines[label][:, 1], history["f"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["gd", "adam"]


def test_f_min_shifts_and_a_diverged_run_is_clipped(booth_runs) -> None:
    _, runs = booth_runs
    ax = plot_loss(runs, f_min=0.0).axes[0]
    assert "f − f*" in ax.get_ylabel()
    settled = max(np.nanmax(runs[k].history["f"]) for k in ("gd", "adam"))
    assert ax.get_ylim()[1] <= 1e4 * settled * 1.0001  # not stretched to 1e300


def test_time_axis_and_linear_scale(booth_runs) -> None:
    _, runs = booth_runs
    ax = plot_loss(runs["gd"], x="time", log=False).axes[0]
    assert ax.get_yscale() == "linear" and ax.get_xlabel() == "seconds since the start"
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), runs["gd"].history["time"])


def test_a_list_of_runs_is_labelled_by_method(booth_runs) -> None:
    _, runs = booth_runs
    ax = plot_loss([runs["gd"], runs["adam"]]).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["gd", "adam"]


def test_negative_losses_use_symlog() -> None:
    history = {"iteration": np.arange(5), "f": np.array([1.0, 0.0, -1.0, -2.0, -3.0])}
    assert plot_loss({"h": history}).axes[0].get_yscale() == "symlog"


@pytest.fixture(scope="module")
def fit_run():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(48, 2, generator=g)
    y = X.sum(1, keepdim=True)
    return descend.fit(
        torch.nn.Linear(2, 1), "mse", (X, y), optimizer="gd", lr=0.05, epochs=3,
        batch_size=12, seed=0, validation=0.25, progress=False,
    )  # fmt: skip


def test_fit_runs_show_steps_epochs_and_validation(fit_run) -> None:
    ax = plot_loss({"net": fit_run}).axes[0]
    lines = _lines(ax)
    steps = fit_run.history.as_dict()
    epochs = fit_run.epoch_history.as_dict()
    np.testing.assert_array_equal(lines["net (step loss)"][:, 1], steps["loss"])
    np.testing.assert_array_equal(lines["net (epoch mean)"][:, 0], epochs["step"])
    np.testing.assert_array_equal(lines["net (validation)"][:, 1], epochs["val_loss"])
    assert ax.get_xlabel() == "step"
    without = _lines(plot_loss({"net": fit_run}, validation=False).axes[0])
    assert "net (validation)" not in without


def test_run_records_plot_like_results(fit_run, booth_runs) -> None:
    record = RunRecord.from_result("fit", {}, fit_run)
    lines = _lines(plot_loss({"r": record}).axes[0])
    np.testing.assert_array_equal(lines["r (validation)"][:, 1], fit_run.epoch_history["val_loss"])


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (({},), {}, ValueError, "results must not be empty"),
        (({"a": 3},), {}, TypeError, "run 'a' must be a result of minimize or fit"),
        (({"a": {"x": [1]}},), {}, ValueError, "has no loss to plot"),
        ((None,), {}, ValueError, "must not be empty"),
        (({"a": {"f": [1.0]}},), {"x": "epoch"}, ValueError, "x must be one of iteration, time"),
        (({"a": {"f": [1.0]}},), {"x": "time"}, ValueError, "no recorded time"),
        (({"a": {"f": [1.0]}},), {"f_min": float("nan")}, ValueError, "f_min must be a finite"),
        (({"a": {"f": [1.0]}},), {"dpi": 0}, ValueError, "dpi must be an integer >= 1, got 0"),
        (({"a": {"f": [1.0]}},), {"figsize": (0, 1)}, ValueError, "figsize must be two finite"),
    ],
)
def test_bad_arguments(args, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        plot_loss(*args, **kwargs)


@pytest.mark.parametrize("epochs", [3, 40])
def test_epochs_are_marked_only_while_the_marks_stay_readable(epochs) -> None:
    from descend.viz.curves import MARKED_EPOCHS

    g = torch.Generator().manual_seed(0)
    X = torch.randn(16, 2, generator=g)
    torch.manual_seed(0)
    res = descend.fit(
        torch.nn.Linear(2, 1), "mse", (X, X.sum(1, keepdim=True)), epochs=epochs,
        batch_size=8, validation=(X, X.sum(1, keepdim=True)), progress=False,
    )  # fmt: skip
    (ax,) = plot_loss({"fit": res}).axes
    epoch_lines = [
        line
        for line in ax.get_lines()
        if line.get_label().endswith(("(epoch mean)", "(validation)"))
    ]
    assert len(epoch_lines) == 2
    assert len(epoch_lines[0].get_xdata()) == epochs
    marked = {line.get_marker() not in ("None", "", None) for line in epoch_lines}
    assert marked == {epochs <= MARKED_EPOCHS}
