"""The race plot: several optimizers' paths over one landscape, and their losses."""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Mapping
from typing import Protocol, cast

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

from descend.problems.problem import Problem
from descend.result import History, OptimizeResult, Status
from descend.viz.landscape import colors, draw_landscape, paths_of
from descend.viz.series import check_dpi, save

__all__ = ["plot_race"]


class RaceRun(Protocol):
    """What a race reads of a run: an :class:`OptimizeResult`, or a run record of one."""

    @property
    def history(self) -> History: ...

    @property
    def status(self) -> Status: ...

    @property
    def nit(self) -> int: ...

    @property
    def fun(self) -> float: ...


def plot_race(
    problem: Problem,
    results: Mapping[str, RaceRun],
    path: str | os.PathLike[str] | None = None,
    *,
    title: str | None = None,
    dpi: int = 130,
) -> Figure:
    r"""Draw a race between optimizers from their recorded runs, and save it if asked.

    For a 2-D problem the left panel shows the landscape as contours (log-spaced levels of
    :math:`f - f^*` when f spans many decades), every method's path, the start, and the
    known minima and saddles; the right panel shows :math:`f_k - f^*` against the iteration
    k on a log scale (f itself on a symmetric-log scale when :math:`f^* = -\infty`). Other
    dimensions get the loss panel only. Nothing is re-run: the figure is drawn from each
    result's ``history`` alone.

    Args:
        problem: the problem the runs minimized (for the landscape, f* and the minima).
        results: ``{label: result}`` in the order to draw them, each from
            ``descend.minimize(..., record=True)`` (the path needs the recorded ``x``).
        path: where to save the figure (format from the suffix: .png, .pdf, .svg);
            None: only return it.
        title: the figure title; default: the problem's name and description.
        dpi: resolution of a saved raster image, an integer >= 1.

    Returns:
        the matplotlib ``Figure`` (not attached to pyplot, so no window opens).

    Example:
        >>> runs = {m: descend.minimize(rosenbrock, [-1.2, 1.0], m, max_iter=200, record=True)
        ...         for m in ("gd", "adam")}
        >>> plot_race(rosenbrock, runs, "race.png")  # doctest: +ELLIPSIS
        <Figure size ...>
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a descend.problems.Problem, got {type(problem).__name__}")
    if not isinstance(results, Mapping) or not results:
        raise ValueError("results must be a non-empty mapping {label: OptimizeResult}")
    for label, result in results.items():
        # a run record from descend.runs carries the same history, status and counts
        if not isinstance(result, OptimizeResult) and not _is_run_record(result):
            raise TypeError(
                f"results[{label!r}] must be an OptimizeResult (or a run record of one), "
                f"got {type(result).__name__}"
            )
    check_dpi(dpi)
    paths = paths_of(problem, results) if problem.dim == 2 else None

    line_colors = colors(len(results))
    if paths is not None:
        fig = Figure(figsize=(13.5, 6.2), layout="constrained")
        cast(ConstrainedLayoutEngine, fig.get_layout_engine()).set(wspace=0.06)
        landscape, loss = fig.subplots(1, 2, width_ratios=[1.1, 1.0])
        draw_landscape(landscape, problem, paths, line_colors)
    else:
        fig = Figure(figsize=(9.0, 6.4), layout="constrained")
        loss = fig.subplots()
    _draw_losses(loss, problem, results, line_colors)
    heading = title if title is not None else f"{problem.name}: {problem.description}"
    # About 7.5 characters of 13-point bold text per inch of figure width.
    fig.suptitle(
        textwrap.fill(heading, width=int(7.5 * fig.get_figwidth())),
        fontsize=13,
        fontweight="bold",
    )
    if paths is None:
        loss.set_title(f"loss per iteration (dimension {problem.dim})", fontsize=10)
    return save(fig, path, dpi)


def _is_run_record(run: object) -> bool:
    return all(hasattr(run, a) for a in ("history", "status", "nit", "fun")) and isinstance(
        getattr(run, "status", None), Status
    )


def _draw_losses(
    ax: Axes, problem: Problem, results: Mapping[str, RaceRun], colors: list
) -> None:
    bounded = math.isfinite(problem.f_min)
    floor = 1e-16 * max(1.0, abs(problem.f_min)) if bounded else 0.0
    scale = 1.0  # the largest |f0 - f*| (or |f0|) of all runs
    settled = 0.0  # the largest |y| a run that did not diverge reached
    highest = -math.inf  # the largest y any run reached
    for (name, result), color in zip(results.items(), colors, strict=True):
        data = result.history.as_dict()
        iterations, f = data["iteration"], data["f"]
        # f - f* can round to 0 or a hair below it at the minimum; the floor keeps it on
        # the log axis.
        y = np.maximum(f - problem.f_min, floor) if bounded else f
        if np.isfinite(y[0]):
            scale = max(scale, abs(float(y[0])))
        if np.isfinite(y).any():
            highest = max(highest, float(np.max(y[np.isfinite(y)])))
        if result.status is not Status.DIVERGED:
            settled = max(settled, float(np.nanmax(np.abs(y[np.isfinite(y)]), initial=0.0)))
        ax.plot(
            iterations,
            y,
            "-",
            color=color,
            lw=1.6,
            label=f"{name}: {result.status.value}, {result.nit} it, {_final(problem, result)}",
        )
        ax.plot(iterations[-1:], y[-1:], "o", color=color, ms=5)
    # A diverged run would stretch the axis over hundreds of decades: show its take-off
    # and clip the rest.
    reach = max(1e4 * scale, 10.0 * settled)
    if bounded:
        ax.set_yscale("log")
        ax.set_ylabel("f − f*  at iteration k (log scale)")
        bottom, top = ax.get_ylim()
        ax.set_ylim(bottom, min(top, reach))
    else:
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_ylabel("f  at iteration k (symmetric log scale; f* = −∞)")
        bottom, top = ax.get_ylim()
        ax.set_ylim(max(bottom, -reach), min(top, reach, 2.0 * max(highest, 1.0)))
    ax.set_xlabel("iteration k")
    ax.set_title("loss per iteration", fontsize=10)
    ax.grid(True, which="major", alpha=0.35)
    # Below the figure: inside the panel it would hide the curves it names.
    handles, labels = ax.get_legend_handles_labels()
    ax.figure.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=min(3 if len(ax.figure.axes) > 1 else 2, len(labels)),
        fontsize=9,
        frameon=False,
    )


def _final(problem: Problem, result: RaceRun) -> str:
    if math.isfinite(problem.f_min) and problem.f_min != 0.0:
        return f"f − f* = {result.fun - problem.f_min:.3g}"
    return f"f = {result.fun:.3g}"
