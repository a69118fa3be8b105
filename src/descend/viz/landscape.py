"""Landscapes of 2-D problems: contour and 3-D surface plots with optimizers' paths.

The pieces here (the grid, the levels, the markers of minima and saddles) are shared by
:func:`descend.viz.plot_race` and :func:`descend.viz.animate_race`. Every figure is drawn
from recorded histories: the problem is evaluated once, on the plotting grid, and no
optimizer is re-run.

Example:
    >>> res = descend.minimize(rosenbrock, [-1.2, 1.0], "adam", lr=0.05, max_iter=200,
    ...                        record=True)
    >>> plot_contour(rosenbrock, {"adam": res}, "contour.png")
    >>> plot_surface(rosenbrock, {"adam": res}, "surface.png")
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatterSciNotation, LogLocator

from descend.problems.problem import Problem
from descend.viz.series import check_dpi, check_figsize, run_label, save

__all__ = ["plot_contour", "plot_surface"]

# Ratio of the top of the landscape to its 5% quantile above which contours are log-spaced:
# Rosenbrock, Beale, Himmelblau and Goldstein-Price span decades and show only their rims on
# linear levels; Rastrigin, Ackley and Styblinski-Tang look right on linear ones.
LOG_LEVELS_RATIO = 50.0
CMAP = "viridis"
FILL_ALPHA = 0.55
HALO = patheffects.Stroke(linewidth=3.2, foreground="white", alpha=0.55)
GRID = 300
LEVELS = 24


def colors(n: int) -> list:
    """``n`` distinct line colors (tab10, cycled)."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    tab10 = cast(ListedColormap, colormaps["tab10"])
    palette = cast("Sequence[Any]", tab10.colors)  # ten RGB triples
    return [palette[i % len(palette)] for i in range(n)]


def check_problem(problem: Any, dim: int | None = 2) -> Problem:
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a descend.problems.Problem, got {type(problem).__name__}")
    if dim is not None and problem.dim != dim:
        raise ValueError(
            f"problem {problem.name!r} has dimension {problem.dim}; landscapes are drawn for "
            f"2-D problems only (use plot_loss for the loss curves)"
        )
    return problem


def paths_of(problem: Problem, runs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Each run's recorded iterates as an ``(iterations, 2)`` array.

    A run is a result (or record) whose ``history`` holds ``x`` (``record=True``), a
    :class:`descend.History`, or an array of points.
    """
    paths = {}
    for label, run in runs.items():
        xs = _points(run)
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


def _points(run: Any) -> np.ndarray | None:
    if isinstance(run, np.ndarray | list | tuple):
        return np.asarray(run, dtype=np.float64)
    history = getattr(run, "history", run)
    if getattr(history, "record_x", False):
        xs = history.as_dict().get("x")
        return None if xs is None else np.asarray(xs)
    if isinstance(history, Mapping) and "x" in history:
        return np.asarray(history["x"], dtype=np.float64)
    return None


def starts_of(paths: Mapping[str, np.ndarray]) -> np.ndarray:
    """The distinct first points of the paths, in order."""
    starts: list[np.ndarray] = []
    for xs in paths.values():
        if not any(np.array_equal(xs[0], s) for s in starts):
            starts.append(xs[0])
    return np.asarray(starts)


def view_of(problem: Problem, starts: np.ndarray) -> tuple[tuple[float, float], ...]:
    """The problem's plotting bounds, widened to show every start with a margin."""
    view = []
    for i, (low, high) in enumerate(problem.bounds):
        margin = 0.05 * (high - low)
        finite = starts[:, i][np.isfinite(starts[:, i])] if len(starts) else np.empty(0)
        if finite.size:
            low = min(low, float(finite.min()) - margin)
            high = max(high, float(finite.max()) + margin)
        view.append((low, high))
    return tuple(view)


def grid_of(
    problem: Problem, view: tuple[tuple[float, float], ...], size: int = GRID
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """f on a ``size`` x ``size`` grid over ``view``, in one batched call of the problem."""
    (x_lo, x_hi), (y_lo, y_hi) = view
    xs = torch.linspace(x_lo, x_hi, size, dtype=torch.float64)
    ys = torch.linspace(y_lo, y_hi, size, dtype=torch.float64)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    with torch.no_grad():
        z = problem(torch.stack([gx, gy], dim=-1))
    return gx.numpy(), gy.numpy(), z.numpy()


@dataclass(frozen=True)
class Levels:
    """How a landscape's values are shown: f itself, or f - f* on log-spaced levels."""

    log: bool
    f_min: float
    low: float = 0.0  # the smallest gap shown (log levels only)
    high: float = 1.0

    def values(self, z: np.ndarray) -> np.ndarray:
        """What is drawn for f values ``z``: f, or f - f* clipped to ``[low, inf)``."""
        if not self.log:
            return z
        return np.clip(z - self.f_min, self.low, None)

    @property
    def label(self) -> str:
        return "f − f*" if self.log else "f"


def levels_of(problem: Problem, z: np.ndarray) -> Levels:
    """Log-spaced levels of f - f* when the landscape spans decades, else linear ones."""
    finite = np.isfinite(z)
    if not math.isfinite(problem.f_min) or not finite.any():
        return Levels(log=False, f_min=problem.f_min)
    gap = z - problem.f_min
    spread = np.nanmax(gap[finite]) / max(float(np.quantile(gap[finite], 0.05)), 1e-300)
    positive = gap[finite & (gap > 0)]
    if spread <= LOG_LEVELS_RATIO or positive.size == 0:
        return Levels(log=False, f_min=problem.f_min)
    low = max(float(np.quantile(positive, 0.002)), float(positive.max()) * 1e-12)
    return Levels(log=True, f_min=problem.f_min, low=low, high=float(positive.max()))


def draw_contours(
    ax: Axes,
    problem: Problem,
    view: tuple[tuple[float, float], ...],
    *,
    colorbar: bool = True,
    size: int = GRID,
) -> Levels:
    """Filled contours of the problem over ``view`` (a ``size`` x ``size`` grid), with a
    colorbar; returns the levels."""
    gx, gy, z = grid_of(problem, view, size)
    levels = levels_of(problem, z)
    if levels.log:
        steps = np.geomspace(levels.low, levels.high, LEVELS)
        shown = levels.values(z)
        filled = ax.contourf(
            gx, gy, shown, levels=steps, norm=LogNorm(), cmap=CMAP, alpha=FILL_ALPHA
        )
        ax.contour(gx, gy, shown, levels=steps, colors="k", linewidths=0.3, alpha=0.35)
    else:
        filled = ax.contourf(gx, gy, z, levels=LEVELS, cmap=CMAP, alpha=FILL_ALPHA)
        ax.contour(gx, gy, z, levels=LEVELS, colors="k", linewidths=0.3, alpha=0.35)
    if colorbar:
        bar = ax.figure.colorbar(filled, ax=ax, shrink=0.9, pad=0.01)
        if levels.log:
            # The default ticks sit on the levels (1.04316e3, ...); decades read better.
            bar.set_ticks(LogLocator(base=10.0))
            bar.ax.yaxis.set_major_formatter(LogFormatterSciNotation(base=10.0))
            bar.ax.minorticks_off()
        bar.set_label(levels.label)
    (x_lo, x_hi), (y_lo, y_hi) = view
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    return levels


def draw_path(ax: Axes, xs: np.ndarray, color: Any, label: str | None = None) -> list:
    """One path with a pale halo (paths that share a valley stay apart) and its end point."""
    line = ax.plot(
        xs[:, 0],
        xs[:, 1],
        "-",
        color=color,
        lw=1.5,
        alpha=0.95,
        zorder=3,
        label=label,
        path_effects=[HALO, patheffects.Normal()],
    )
    end = ax.plot(xs[-1:, 0], xs[-1:, 1], "o", color=color, ms=7, mec="white", mew=1.2, zorder=5)
    return line + end


def draw_markers(ax: Axes, problem: Problem, starts: np.ndarray) -> None:
    """The start(s), the global and local minima and the saddles, with their legend."""
    if len(starts):
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
    marks = [
        (problem.minima, "*", "gold", 1.0, 17, "global minimum", "global minima"),
        (problem.local_minima, "*", "white", 0.8, 11, "local minima", "local minima"),
        (problem.saddles, "X", "white", 0.8, 9, "saddle / maximum", "saddle / maximum"),
    ]
    for points, marker, color, mew, size, one, many in marks:
        if points:
            p = np.asarray(points)
            ax.plot(
                p[:, 0],
                p[:, 1],
                marker,
                color=color,
                mec="black",
                mew=mew,
                ms=size,
                zorder=6,
                label=one if len(p) == 1 else many,
            )


def start_title(starts: np.ndarray) -> str:
    if len(starts) == 1:
        return f"paths from the start ({starts[0, 0]:g}, {starts[0, 1]:g})"
    return "paths from each start"


def draw_landscape(
    ax: Axes, problem: Problem, paths: Mapping[str, np.ndarray], line_colors: list
) -> Levels:
    """Contours, every path, the starts and the known stationary points on ``ax``."""
    starts = starts_of(paths)
    levels = draw_contours(ax, problem, view_of(problem, starts))
    for xs, color in zip(paths.values(), line_colors, strict=True):
        draw_path(ax, xs, color)
    draw_markers(ax, problem, starts)
    ax.set_title(start_title(starts), fontsize=10)
    ax.legend(loc="best", fontsize=8.5, framealpha=0.9)
    return levels


def as_runs(runs: Any, name: str = "results") -> dict[str, Any]:
    """``{label: run}`` from a mapping, a sequence of runs, or one run."""
    if isinstance(runs, Mapping) and not hasattr(runs, "history"):  # a result is a mapping too
        if not runs:
            raise ValueError(f"{name} must not be empty; give at least one run")
        return {str(k): v for k, v in runs.items()}
    if isinstance(runs, list | tuple) and runs and not _is_point_list(runs):
        out: dict[str, Any] = {}
        for i, run in enumerate(runs):
            label = run_label(run, i)
            while label in out:
                label += "'"
            out[label] = run
        return out
    if runs is None or (isinstance(runs, list | tuple) and not runs):
        raise ValueError(f"{name} must not be empty; give at least one run")
    return {run_label(runs, 0): runs}


def _is_point_list(runs: Any) -> bool:
    return all(isinstance(v, int | float | np.floating) for v in np.ravel(runs[0]))


def plot_contour(
    problem: Problem,
    results: Any = None,
    path: str | os.PathLike[str] | None = None,
    *,
    title: str | None = None,
    dpi: int = 130,
    figsize: tuple[float, float] = (7.5, 6.2),
) -> Figure:
    """Contours of a 2-D problem with one or more optimizers' paths over them.

    Levels are log-spaced in :math:`f - f^*` when f spans many decades. The start, the
    known minima and saddles are marked; each path ends in a dot.

    Args:
        problem: a 2-D :class:`descend.problems.Problem`.
        results: ``{label: run}``, a list of runs, one run, or None (the landscape alone).
            A run is an ``OptimizeResult`` from ``minimize(..., record=True)``, a run
            record, a ``History`` with ``x``, or an ``(n, 2)`` array of points.
        path: where to save it (.png, .pdf, .svg); None: only return the figure.
        title: the figure title; default: the problem's name.
        dpi: resolution of a saved raster image, an integer >= 1.
        figsize: (width, height) in inches, both > 0.

    Returns:
        the matplotlib ``Figure``.

    Example:
        >>> from descend.problems import get_problem
        >>> himmelblau = get_problem("himmelblau")
        >>> runs = {m: descend.minimize(himmelblau, [0.0, 0.0], m, max_iter=100, record=True)
        ...         for m in ("gd", "adam")}
        >>> plot_contour(himmelblau, runs, "paths.png")  # doctest: +ELLIPSIS
        <Figure size ...>
    """
    problem = check_problem(problem)
    dpi = check_dpi(dpi)
    runs = as_runs(results) if results is not None else {}
    paths = paths_of(problem, runs)
    fig = Figure(figsize=check_figsize(figsize), layout="constrained")
    ax = fig.subplots()
    starts = starts_of(paths)
    draw_contours(ax, problem, view_of(problem, starts))
    for (label, xs), color in zip(paths.items(), colors(len(paths)), strict=True):
        draw_path(ax, xs, color, label=label)
    draw_markers(ax, problem, starts)
    if paths:
        ax.legend(loc="best", fontsize=8.5, framealpha=0.9)
    fig.suptitle(title if title is not None else problem.name, fontsize=12, fontweight="bold")
    ax.set_title(start_title(starts) if paths else problem.description, fontsize=10)
    return save(fig, path, dpi)


def plot_surface(
    problem: Problem,
    results: Any = None,
    path: str | os.PathLike[str] | None = None,
    *,
    title: str | None = None,
    dpi: int = 130,
    elev: float = 35.0,
    azim: float = -60.0,
    figsize: tuple[float, float] = (8.0, 6.5),
) -> Figure:
    r"""A 3-D surface of a 2-D problem with optimizers' paths lifted onto it.

    The height is f, or :math:`\log_{10}(f - f^*)` when f spans many decades (the same
    rule as the contour levels); a path's heights are the f values its history recorded
    at each iterate, not re-evaluated.

    Args:
        problem: a 2-D :class:`descend.problems.Problem`.
        results: ``{label: run}``, a list of runs, one run, or None (the surface alone);
            each run needs its recorded path (``minimize(..., record=True)``).
        path: where to save it; None: only return the figure.
        title: the figure title; default: the problem's name.
        dpi: resolution of a saved raster image, an integer >= 1.
        elev, azim: the viewing angles in degrees.
        figsize: (width, height) in inches, both > 0.

    Returns:
        the matplotlib ``Figure``.

    Example:
        >>> res = descend.minimize(rosenbrock, [-1.2, 1.0], "adam", max_iter=100, record=True)
        >>> plot_surface(rosenbrock, {"adam": res}, "surface.png", azim=-120)  # doctest: +ELLIPSIS
        <Figure size ...>
    """
    problem = check_problem(problem)
    dpi = check_dpi(dpi)
    runs = as_runs(results) if results is not None else {}
    paths = paths_of(problem, runs)
    heights = {label: _recorded_f(label, runs[label], len(xs)) for label, xs in paths.items()}
    fig = Figure(figsize=check_figsize(figsize), layout="constrained")
    ax = fig.add_subplot(projection="3d")
    starts = starts_of(paths)
    view = view_of(problem, starts)
    gx, gy, z = grid_of(problem, view, size=120)
    levels = levels_of(problem, z)

    def height(values: np.ndarray) -> np.ndarray:
        return np.log10(levels.values(values)) if levels.log else values

    surface = height(z)
    ax.plot_surface(
        gx, gy, surface, cmap=CMAP, alpha=0.6, linewidth=0, antialiased=True, rcount=100, ccount=100
    )
    for (label, xs), color in zip(paths.items(), colors(len(paths)), strict=True):
        zs = height(heights[label])
        ax.plot(xs[:, 0], xs[:, 1], zs, "-", color=color, lw=2.0, label=label, zorder=10)
        ax.scatter(xs[-1:, 0], xs[-1:, 1], zs[-1:], color=color, s=30, depthshade=False)
    if len(starts):
        ax.scatter(
            starts[:, 0],
            starts[:, 1],
            height(_f_at(paths, heights, starts)),
            marker="s",
            color="black",
            s=40,
            depthshade=False,
            label="start" if len(starts) == 1 else "starts",
        )
    ax.set_xlim(*view[0])
    ax.set_ylim(*view[1])
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_zlabel("log₁₀(f − f*)" if levels.log else "f")
    ax.view_init(elev=float(elev), azim=float(azim))
    if paths:
        ax.legend(loc="upper left", fontsize=8.5)
    fig.suptitle(title if title is not None else problem.name, fontsize=12, fontweight="bold")
    return save(fig, path, dpi)


def _recorded_f(label: str, run: Any, n: int) -> np.ndarray:
    history = getattr(run, "history", run)
    try:
        f = np.asarray(history["f"], dtype=np.float64)
    except (KeyError, TypeError, IndexError, ValueError):
        raise ValueError(
            f"results[{label!r}] has no recorded f to lift its path onto the surface; give "
            "a result of minimize(..., record=True)"
        ) from None
    if len(f) != n:
        raise ValueError(f"results[{label!r}] records {len(f)} values of f for {n} points")
    return f


def _f_at(
    paths: Mapping[str, np.ndarray], heights: Mapping[str, np.ndarray], starts: np.ndarray
) -> np.ndarray:
    out = []
    for s in starts:
        label = next(k for k, xs in paths.items() if np.array_equal(xs[0], s))
        out.append(heights[label][0])
    return np.asarray(out)
