"""The learning-rate range test as a figure: the sweep, its smoothed curve, the
suggested rate and the divergence point."""

from __future__ import annotations

import os
from typing import Any, cast

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from descend.viz.series import check_dpi, check_figsize, save

__all__ = ["plot_lr_range"]


def plot_lr_range(
    sweep: Any,
    path: str | os.PathLike[str] | None = None,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    dpi: int = 130,
    figsize: tuple[float, float] = (6.4, 4.2),
) -> Figure:
    """Plot a learning-rate range test: loss against rate (log scale), the raw sweep in
    grey, the smoothed loss, the suggested rate (red, dashed) and where the sweep
    diverged (orange, dotted).

    The drawing is the sweep's own ``plot(ax)``
    (:meth:`descend.diagnostics.lr_range.LRRangeResult.plot`), so the figure a user gets
    from either call is the same; this adds the figure size, a title and saving.

    Args:
        sweep: the result of :func:`descend.diagnostics.lr_range_test`.
        path: where to save it (.png, .pdf, .svg); None: only return the figure.
        ax: draw into these axes instead of a new figure.
        title: the axes title; default: the sweep's own.
        dpi: resolution of a saved raster image, an integer >= 1.
        figsize: (width, height) in inches, for a new figure.

    Returns:
        the matplotlib ``Figure``.

    Example:
        >>> from descend.diagnostics import lr_range_test
        >>> sweep = lr_range_test(rosenbrock, [-1.2, 1.0], method="gd", end=1.0, steps=50)
        >>> plot_lr_range(sweep, "lr_range.png")  # doctest: +ELLIPSIS
        <Figure size ...>
    """
    draw = getattr(sweep, "plot", None)
    if not callable(draw) or not hasattr(sweep, "lrs") or not hasattr(sweep, "smoothed"):
        raise TypeError(
            f"sweep must be the result of descend.diagnostics.lr_range_test, got "
            f"{type(sweep).__name__}"
        )
    dpi = check_dpi(dpi)
    if ax is None:
        fig = Figure(figsize=check_figsize(figsize), layout="constrained")
        ax = fig.subplots()
    else:
        if not isinstance(ax, Axes):
            raise TypeError(f"ax must be matplotlib Axes, got {type(ax).__name__}")
        fig = cast(Figure, ax.figure)  # an Axes of a Figure, not of a SubFigure
    draw(ax=ax)
    if title is not None:
        ax.set_title(title)
    return save(fig, path, dpi)
