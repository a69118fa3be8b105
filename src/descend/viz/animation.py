"""An animation of optimizers racing over a landscape, saved as a GIF."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from descend.problems.problem import Problem
from descend.viz.landscape import (
    as_runs,
    check_problem,
    colors,
    draw_contours,
    draw_markers,
    paths_of,
    start_title,
    starts_of,
    view_of,
)
from descend.viz.series import check_dpi, check_figsize, curve_of

__all__ = ["animate_race", "frame_indices", "race_animation"]


def frame_indices(length: int, frames: int) -> np.ndarray:
    """Which iterations to draw: at most ``frames`` of ``0 .. length - 1``, spaced
    geometrically (the early iterations, where most of the motion is, get most frames),
    always including the first and the last.

    Example:
        >>> frame_indices(1000, 5)
        array([  0,   5,  31, 177, 999])
    """
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    if frames >= length:
        return np.arange(length)
    spaced = np.round(np.geomspace(1, length, frames)).astype(np.int64) - 1
    return np.unique(np.concatenate([[0], spaced, [length - 1]]))


def race_animation(
    problem: Problem,
    results: Any,
    *,
    frames: int = 60,
    fps: int = 10,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
) -> FuncAnimation:
    """The race as a ``matplotlib.animation.FuncAnimation`` (for notebooks:
    ``race_animation(...).to_jshtml()``); :func:`animate_race` saves it as a GIF.

    Arguments as for :func:`animate_race`.

    Example:
        >>> runs = {m: descend.minimize(rosenbrock, [-1.2, 1.0], m, max_iter=100, record=True)
        ...         for m in ("gd", "adam")}
        >>> anim = race_animation(rosenbrock, runs, frames=5)
        >>> "<script" in anim.to_jshtml()  # a notebook shows it with IPython.display.HTML
        True

    """
    frames_ = _race_frames(problem, results, frames, fps, title, figsize)
    return FuncAnimation(
        frames_.fig,
        frames_.draw,
        frames=frames_.indices,
        interval=1000 / fps,
        blit=False,
        repeat=False,
    )


class _Frames(NamedTuple):
    fig: Figure
    draw: Callable[[int], list]
    indices: list[int]
    moving: list  # the artists that change from frame to frame


def _race_frames(
    problem: Problem,
    results: Any,
    frames: int,
    fps: int,
    title: str | None,
    figsize: tuple[float, float] | None,
) -> _Frames:
    """The figure, laid out and showing the last frame, and how to draw any frame."""
    problem = check_problem(problem, dim=None)
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 2:
        raise ValueError(f"frames must be an integer >= 2, got {frames!r}")
    if isinstance(fps, bool) or not isinstance(fps, int) or not 1 <= fps <= 50:
        raise ValueError(f"fps must be an integer in [1, 50], got {fps!r}")
    runs = as_runs(results)
    curves = [curve_of(run, label) for label, run in runs.items()]
    paths = paths_of(problem, runs) if problem.dim == 2 else None
    length = max(len(c.y) for c in curves)
    shown = frame_indices(length, frames)
    line_colors = colors(len(curves))

    if paths is not None:
        fig = Figure(figsize=check_figsize(figsize or (10.0, 4.6)), layout="constrained")
        landscape, loss = fig.subplots(1, 2, width_ratios=[1.1, 1.0])
        starts = starts_of(paths)
        # a coarser grid than a still figure's: every frame redraws the contours
        draw_contours(landscape, problem, view_of(problem, starts), colorbar=False, size=120)
        draw_markers(landscape, problem, starts)
        landscape.set_title(start_title(starts), fontsize=9)
    else:
        fig = Figure(figsize=check_figsize(figsize or (6.4, 4.6)), layout="constrained")
        loss = fig.subplots()
        landscape = None

    bounded = math.isfinite(problem.f_min)
    floor = 1e-16 * max(1.0, abs(problem.f_min)) if bounded else 0.0
    losses = [np.maximum(c.y - problem.f_min, floor) if bounded else c.y for c in curves]
    trails, heads, growing = [], [], []
    for curve, color in zip(curves, line_colors, strict=True):
        (line,) = loss.plot([], [], "-", color=color, lw=1.6, label=curve.label)
        growing.append(line)
        if landscape is not None:
            (trail,) = landscape.plot([], [], "-", color=color, lw=1.6, zorder=3)
            (head,) = landscape.plot([], [], "o", color=color, ms=6, mec="white", zorder=5)
            trails.append(trail)
            heads.append(head)
    _fix_loss_limits(loss, curves, losses, bounded, length)
    loss.set_xlabel("iteration")
    loss.set_ylabel("f − f*" if bounded else "f")
    loss.grid(True, alpha=0.35)
    loss.legend(loc="upper right", fontsize=8)
    clock = loss.text(0.02, 0.03, "", transform=loss.transAxes, fontsize=9)
    fig.suptitle(title if title is not None else problem.name, fontsize=12, fontweight="bold")

    def draw(k: int) -> list:
        for i, (curve, y) in enumerate(zip(curves, losses, strict=True)):
            j = min(int(k), len(y) - 1)
            growing[i].set_data(curve.x[: j + 1], y[: j + 1])
            if paths is not None:
                xs = paths[curve.label]
                trails[i].set_data(xs[: j + 1, 0], xs[: j + 1, 1])
                heads[i].set_data(xs[j : j + 1, 0], xs[j : j + 1, 1])
        clock.set_text(f"iteration {int(k)}")
        return [*growing, *trails, *heads, clock]

    draw(int(shown[-1]))
    # lay the figure out once, on the last frame; every frame keeps that layout (the axes'
    # limits are fixed, so nothing would move), which halves the time a frame takes
    fig.draw_without_rendering()
    fig.set_layout_engine("none")
    return _Frames(fig, draw, [int(k) for k in shown], [*growing, *trails, *heads, clock])


def animate_race(
    problem: Problem,
    results: Any,
    path: str | os.PathLike[str] | None = None,
    *,
    frames: int = 60,
    fps: int = 10,
    dpi: int = 72,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Animate optimizers racing: their paths growing over the landscape (2-D problems)
    and their losses growing beside them; save it as a GIF.

    Each frame shows every run up to the same iteration k. The frames are a geometric
    subsample of the iterations (``frame_indices``), so a run of thousands of iterations
    still makes a GIF of ``frames`` frames (about 0.2 to 1 MB at the defaults). Drawn
    from the recorded histories only.

    Args:
        problem: the problem the runs minimized.
        results: ``{label: result}``, a list of results or one result, each from
            ``minimize(..., record=True)`` (2-D problems need the recorded path).
        path: where to save the GIF (suffix ``.gif``); None: only return the figure.
        frames: the most frames to draw, an integer >= 2.
        fps: frames per second, an integer in [1, 50].
        dpi: resolution of the GIF, an integer >= 1 (72: 720 x 330 pixels for a 2-D race).
        title: the figure title; default: the problem's name.
        figsize: (width, height) in inches.

    Returns:
        the ``Figure``, showing the last frame.

    Example:
        >>> runs = {m: descend.minimize(rosenbrock, [-1.2, 1], m, max_iter=100, record=True)
        ...         for m in ("gd", "momentum", "adam")}
        >>> animate_race(rosenbrock, runs, "race.gif", frames=5)  # doctest: +ELLIPSIS
        <Figure size ...>
    """
    dpi = check_dpi(dpi)
    if path is not None and Path(os.fspath(path)).suffix.lower() != ".gif":
        raise ValueError(f"path must end in .gif (an animated GIF), got {os.fspath(path)!r}")
    drawn = _race_frames(problem, results, frames, fps, title, figsize)
    if path is not None:
        animation = FuncAnimation(
            drawn.fig, drawn.draw, frames=drawn.indices, blit=False, repeat=False
        )
        writer = _BlittingPillowWriter(drawn.moving, fps=fps)
        animation.save(os.fspath(path), writer=writer, dpi=dpi)
    return drawn.fig


class _BlittingPillowWriter(PillowWriter):
    """A PillowWriter that renders the still parts of the figure once and only the moving
    artists on each frame (the contours and the axes are most of the drawing)."""

    _frames: list[Any]  # PillowWriter's, made by its setup; its type hints leave it out

    def __init__(self, moving: list, fps: int) -> None:
        super().__init__(fps=fps)
        self.moving = moving

    def setup(self, fig: Figure, outfile: Any, dpi: float | None = None) -> None:
        super().setup(fig, outfile, dpi)
        self._dpi_before = fig.dpi
        fig.set_dpi(self.dpi)
        canvas = fig.canvas
        # an Agg canvas of our own, handed back at once: the animation redraws the
        # figure's canvas after every frame, which must stay the drawing-free base one
        self.canvas = FigureCanvasAgg(fig)
        fig.set_canvas(canvas)
        for artist in self.moving:
            artist.set_animated(True)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(fig.bbox)

    def grab_frame(self, **savefig_kwargs: Any) -> None:
        from PIL import Image

        self.canvas.restore_region(self.background)
        renderer = self.canvas.get_renderer()
        for artist in self.moving:
            artist.draw(renderer)
        size = self.canvas.get_width_height()
        rgba = bytes(self.canvas.buffer_rgba())
        self._frames.append(Image.frombuffer("RGBA", size, rgba, "raw", "RGBA", 0, 1))

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            for artist in self.moving:
                artist.set_animated(False)
            self.fig.set_dpi(self._dpi_before)


def _fix_loss_limits(
    ax: Any, curves: list, losses: list[np.ndarray], bounded: bool, length: int
) -> None:
    """Fix the axes to the whole race up front (the lines grow into a fixed frame)."""
    ax.set_xlim(0, max(length - 1, 1))
    settled = [y[np.isfinite(y)] for c, y in zip(curves, losses, strict=True) if not c.diverged]
    every = [y[np.isfinite(y)] for y in losses]
    pool = np.concatenate([v for v in (settled if any(v.size for v in settled) else every)])
    if pool.size == 0:
        return
    if bounded:
        ax.set_yscale("log")
        low = float(np.min(np.concatenate([v for v in every if v.size])))
        ax.set_ylim(low / 3.0, float(pool.max()) * 30.0)
    else:
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_ylim(float(pool.min()) - 1.0, float(pool.max()) + 1.0)
