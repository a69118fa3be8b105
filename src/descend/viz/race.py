"""The race plot: several optimizers' paths over one landscape, and their losses."""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Mapping

import numpy as np
import torch
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatterSciNotation, LogLocator

from descend.problems.problem import Problem
from descend.result import OptimizeResult, Status

__all__ = ["plot_race"]

# Ratio of the top of the landscape to its 5% quantile above which contours are log-spaced:
# Rosenbrock, Beale, Himmelblau and Goldstein-Price span decades and show only their rims on
# linear levels; Rastrigin, Ackley and Styblinski-Tang look right on linear ones.
_LOG_LEVELS_RATIO = 50.0
_CMAP = "viridis"
_FILL_ALPHA = 0.55
_HALO = patheffects.Stroke(linewidth=3.2, foreground="white", alpha=0.55)
_GRID = 300
_LEVELS = 24


def plot_race(
    problem: Problem,
    results: Mapping[str, OptimizeResult],
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
        >>> runs = {m: descend.minimize(rosenbrock, [-1.2, 1.0], m, record=True)
        ...         for m in ("gd", "adam")}
        >>> plot_race(rosenbrock, runs, "race.png")
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a descend.problems.Problem, got {type(problem).__name__}")
    if not isinstance(results, Mapping) or not results:
        raise ValueError("results must be a non-empty mapping {label: OptimizeResult}")
    for label, result in results.items():
        if not isinstance(result, OptimizeResult):
            raise TypeError(
                f"results[{label!r}] must be an OptimizeResult, got {type(result).__name__}"
            )
    if isinstance(dpi, bool) or not isinstance(dpi, int) or dpi < 1:
        raise ValueError(f"dpi must be an integer >= 1, got {dpi!r}")
    paths = _paths(problem, results) if problem.dim == 2 else None

    colors = _colors(len(results))
    if paths is not None:
        fig = Figure(figsize=(13.5, 6.2), layout="constrained")
        fig.get_layout_engine().set(wspace=0.06)
        landscape, loss = fig.subplots(1, 2, width_ratios=[1.1, 1.0])
        _draw_landscape(landscape, problem, paths, colors)
    else:
        fig = Figure(figsize=(9.0, 6.4), layout="constrained")
        loss = fig.subplots()
    _draw_losses(loss, problem, results, colors)
    heading = title if title is not None else f"{problem.name}: {problem.description}"
    # About 7.5 characters of 13-point bold text per inch of figure width.
    fig.suptitle(
        textwrap.fill(heading, width=int(7.5 * fig.get_figwidth())),
        fontsize=13,
        fontweight="bold",
    )
    if paths is None:
        loss.set_title(f"loss per iteration (dimension {problem.dim})", fontsize=10)
    if path is not None:
        fig.savefig(os.fspath(path), dpi=dpi)
    return fig


def _paths(problem: Problem, results: Mapping[str, OptimizeResult]) -> dict[str, np.ndarray]:
    paths = {}
    for label, result in results.items():
        history = result.history
        xs = history.as_dict().get("x") if history.record_x else None
        if xs is None or len(xs) == 0:
            raise ValueError(
                f"results[{label!r}] has no recorded path; run minimize(..., record=True) "
                "to plot the trajectory on the landscape"
            )
        paths[label] = np.asarray(xs, dtype=np.float64).reshape(len(xs), -1)
        if paths[label].shape[1] != problem.dim:
            raise ValueError(
                f"results[{label!r}] has points of dimension {paths[label].shape[1]}, "
                f"but problem {problem.name!r} has dimension {problem.dim}"
            )
    return paths


def _colors(n: int) -> list:
    from matplotlib import colormaps

    palette = colormaps["tab10"].colors
    return [palette[i % len(palette)] for i in range(n)]


def _starts(paths: Mapping[str, np.ndarray]) -> np.ndarray:
    """The distinct first points of the paths, in order."""
    starts: list[np.ndarray] = []
    for xs in paths.values():
        if not any(np.array_equal(xs[0], s) for s in starts):
            starts.append(xs[0])
    return np.asarray(starts)


def _view(problem: Problem, starts: np.ndarray) -> tuple[tuple[float, float], ...]:
    """The problem's plotting bounds, widened to show every start with a margin."""
    view = []
    for i, (low, high) in enumerate(problem.bounds):
        margin = 0.05 * (high - low)
        finite = starts[:, i][np.isfinite(starts[:, i])]
        if finite.size:
            low = min(low, float(finite.min()) - margin)
            high = max(high, float(finite.max()) + margin)
        view.append((low, high))
    return tuple(view)


def _grid(
    problem: Problem, view: tuple[tuple[float, float], ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    (x_lo, x_hi), (y_lo, y_hi) = view
    xs = torch.linspace(x_lo, x_hi, _GRID, dtype=torch.float64)
    ys = torch.linspace(y_lo, y_hi, _GRID, dtype=torch.float64)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    with torch.no_grad():
        z = problem(torch.stack([gx, gy], dim=-1))
    return gx.numpy(), gy.numpy(), z.numpy()


def _draw_landscape(
    ax: Axes, problem: Problem, paths: Mapping[str, np.ndarray], colors: list
) -> None:
    starts = _starts(paths)
    gx, gy, z = _grid(problem, _view(problem, starts))
    finite = np.isfinite(z)
    gap = z - problem.f_min if math.isfinite(problem.f_min) else None
    use_log = False
    if gap is not None:
        spread = np.nanmax(gap[finite]) / max(float(np.quantile(gap[finite], 0.05)), 1e-300)
        use_log = spread > _LOG_LEVELS_RATIO
    if use_log and gap is not None:
        positive = gap[finite & (gap > 0)]
        low = max(float(np.quantile(positive, 0.002)), float(positive.max()) * 1e-12)
        levels = np.geomspace(low, float(positive.max()), _LEVELS)
        shown = np.clip(gap, low, None)
        filled = ax.contourf(
            gx, gy, shown, levels=levels, norm=LogNorm(), cmap=_CMAP, alpha=_FILL_ALPHA
        )
        ax.contour(gx, gy, shown, levels=levels, colors="k", linewidths=0.3, alpha=0.35)
        label = "f − f*"
    else:
        filled = ax.contourf(gx, gy, z, levels=_LEVELS, cmap=_CMAP, alpha=_FILL_ALPHA)
        ax.contour(gx, gy, z, levels=_LEVELS, colors="k", linewidths=0.3, alpha=0.35)
        label = "f"
    colorbar = ax.figure.colorbar(filled, ax=ax, shrink=0.9, pad=0.01)
    if use_log:
        # The default ticks sit on the levels (1.04316e3, ...); decades read better.
        colorbar.set_ticks(LogLocator(base=10.0))
        colorbar.ax.yaxis.set_major_formatter(LogFormatterSciNotation(base=10.0))
        colorbar.ax.minorticks_off()
    colorbar.set_label(label)

    for xs, color in zip(paths.values(), colors, strict=True):
        # A pale halo keeps paths that share a valley apart from each other.
        ax.plot(
            xs[:, 0],
            xs[:, 1],
            "-",
            color=color,
            lw=1.5,
            alpha=0.95,
            zorder=3,
            path_effects=[_HALO, patheffects.Normal()],
        )
        ax.plot(xs[-1, 0], xs[-1, 1], "o", color=color, ms=7, mec="white", mew=1.2, zorder=5)

    ax.plot(
        starts[:, 0],
        starts[:, 1],
        "s",
        color="black",
        mec="white",
        mew=1.5,
        ms=9,
        zorder=6,
        label="start" if len(starts) == 1 else "starts",
    )
    if problem.minima:
        mins = np.asarray(problem.minima)
        ax.plot(
            mins[:, 0],
            mins[:, 1],
            "*",
            color="gold",
            mec="black",
            mew=1.0,
            ms=17,
            zorder=6,
            label="global minimum" if len(mins) == 1 else "global minima",
        )
    if problem.local_minima:
        loc = np.asarray(problem.local_minima)
        ax.plot(
            loc[:, 0],
            loc[:, 1],
            "*",
            color="white",
            mec="black",
            mew=0.8,
            ms=11,
            zorder=6,
            label="local minima",
        )
    if problem.saddles:
        sad = np.asarray(problem.saddles)
        ax.plot(
            sad[:, 0],
            sad[:, 1],
            "X",
            color="white",
            mec="black",
            mew=0.8,
            ms=9,
            zorder=6,
            label="saddle / maximum",
        )

    (x_lo, x_hi), (y_lo, y_hi) = _view(problem, starts)
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    where = f"the start ({starts[0, 0]:g}, {starts[0, 1]:g})" if len(starts) == 1 else "each start"
    ax.set_title(f"paths from {where}", fontsize=10)
    ax.legend(loc="best", fontsize=8.5, framealpha=0.9)


def _draw_losses(
    ax: Axes, problem: Problem, results: Mapping[str, OptimizeResult], colors: list
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


def _final(problem: Problem, result: OptimizeResult) -> str:
    if math.isfinite(problem.f_min) and problem.f_min != 0.0:
        return f"f − f* = {result.fun - problem.f_min:.3g}"
    return f"f = {result.fun:.3g}"
