"""Loss curves of one or more runs, with their validation curves when they have them."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from descend.viz.landscape import as_runs, colors
from descend.viz.series import Curve, check_dpi, check_figsize, curve_of, save

__all__ = ["draw_loss", "plot_loss"]

_AXES = ("iteration", "time")
#: fits with at most this many epochs get a marker on each epoch's point
MARKED_EPOCHS = 30


def plot_loss(
    results: Any,
    path: str | os.PathLike[str] | None = None,
    *,
    log: bool = True,
    x: str = "iteration",
    f_min: float | None = None,
    validation: bool = True,
    title: str | None = None,
    dpi: int = 130,
    figsize: tuple[float, float] = (8.0, 5.0),
) -> Figure:
    r"""Loss curves of several runs on one axis, log scale, with validation when recorded.

    A ``minimize`` run draws f per iteration. A ``fit`` run draws the loss of each step
    (thin and pale: mini-batch losses are noisy), the mean training loss of each epoch
    (solid) and, when the run was validated, the validation loss per epoch (dashed), all
    against the step; each epoch's point is marked (dots, squares) up to
    ``MARKED_EPOCHS`` epochs. A run that diverged is clipped a few
    decades above where the others settled, so it does not flatten them.

    Args:
        results: ``{label: run}``, a list of runs, or one run: ``OptimizeResult``,
            ``FitResult``, a run record (``descend.runs``), a ``History`` or a dict of
            arrays with ``f`` (or ``loss``).
        path: where to save it (.png, .pdf, .svg); None: only return the figure.
        log: log-scaled loss axis (symmetric-log when some loss is <= 0); False: linear.
        x: ``"iteration"`` (iterations or steps) or ``"time"`` (seconds since the start).
        f_min: plot :math:`f - f^*` with this :math:`f^*` (e.g. ``problem.f_min``).
        validation: draw the validation curves of runs that have them.
        title: the figure title.
        dpi: resolution of a saved raster image, an integer >= 1.
        figsize: (width, height) in inches.

    Returns:
        the matplotlib ``Figure``.

    Example:
        >>> f = lambda x: ((x - 1) ** 2).sum()
        >>> runs = {m: descend.minimize(f, [0.0, 0.0], m, max_iter=100) for m in ("gd", "adam")}
        >>> plot_loss(runs, "loss.png")  # doctest: +ELLIPSIS
        <Figure size ...>
    """
    if x not in _AXES:
        raise ValueError(f"x must be one of {', '.join(_AXES)}, got {x!r}")
    if f_min is not None and not (isinstance(f_min, int | float) and math.isfinite(f_min)):
        raise ValueError(f"f_min must be a finite number or None, got {f_min!r}")
    dpi = check_dpi(dpi)
    runs = as_runs(results)
    curves = [curve_of(run, label) for label, run in runs.items()]
    fig = Figure(figsize=check_figsize(figsize), layout="constrained")
    ax = fig.subplots()
    draw_loss(ax, curves, log=log, x=x, f_min=f_min, validation=validation)
    if title is not None:
        fig.suptitle(title, fontsize=12, fontweight="bold")
    return save(fig, path, dpi)


def draw_loss(
    ax: Axes,
    curves: list[Curve],
    *,
    log: bool = True,
    x: str = "iteration",
    f_min: float | None = None,
    validation: bool = True,
    legend: bool = True,
) -> None:
    """Draw ``curves`` on ``ax`` (what :func:`plot_loss` and the report draw)."""
    shift = 0.0 if f_min is None else float(f_min)
    floor = 1e-16 * max(1.0, abs(shift)) if f_min is not None else None
    settled: list[float] = []
    ends: list[float] = []
    lowest = math.inf
    for curve, color in zip(curves, colors(len(curves)), strict=True):
        xs = _abscissa(curve, x)
        ys = _shifted(curve.y, shift, floor)
        finite = ys[np.isfinite(ys)]
        if finite.size:
            lowest = min(lowest, float(finite.min()))
            (ends if curve.diverged else settled).append(float(np.abs(finite).max()))
        fit = curve.epoch_x is not None
        ax.plot(
            xs,
            ys,
            "-",
            color=color,
            lw=0.8 if fit else 1.6,
            alpha=0.35 if fit else 1.0,
            label=f"{curve.label} (step loss)" if fit else curve.label,
        )
        if not fit:
            ax.plot(xs[-1:], ys[-1:], "o", color=color, ms=4)
            continue
        ex = _epoch_abscissa(curve, x)
        # a dot per epoch reads well for a few epochs; for many it hides the curve
        marked = len(ex) <= MARKED_EPOCHS
        ax.plot(
            ex,
            _shifted(curve.epoch_loss, shift, floor),
            "-o" if marked else "-",
            color=color,
            lw=1.8,
            ms=3.5,
            label=f"{curve.label} (epoch mean)",
        )
        if validation and curve.val_loss is not None:
            ax.plot(
                ex,
                _shifted(curve.val_loss, shift, floor),
                "--s" if marked else "--",
                color=color,
                lw=1.6,
                ms=3.5,
                label=f"{curve.label} (validation)",
            )
    what = "loss" if any(c.x_name == "step" for c in curves) else "f"
    ylabel = f"{what} − f*" if f_min is not None else what
    if log:
        if lowest > 0:
            ax.set_yscale("log")
            ylabel += " (log scale)"
        else:
            ax.set_yscale("symlog", linthresh=_linthresh(curves, shift))
            ylabel += " (symmetric log scale)"
        if settled and ends:
            # a diverged run would stretch the axis over hundreds of decades
            bottom, top = ax.get_ylim()
            ax.set_ylim(bottom, min(top, 1e4 * max(settled)))
    ax.set_ylabel(ylabel)
    if x == "time":
        ax.set_xlabel("seconds since the start")
    else:
        names = {c.x_name for c in curves}
        ax.set_xlabel("iteration" if names == {"iteration"} else " / ".join(sorted(names)))
    ax.grid(True, which="major", alpha=0.35)
    if legend:
        ax.legend(loc="best", fontsize=8.5, framealpha=0.9)


def _abscissa(curve: Curve, x: str) -> np.ndarray:
    if x == "iteration":
        return curve.x
    if curve.time is None:
        raise ValueError(f"run {curve.label!r} has no recorded time; use x='iteration'")
    return curve.time


def _epoch_abscissa(curve: Curve, x: str) -> np.ndarray:
    assert curve.epoch_x is not None
    if x == "iteration":
        return curve.epoch_x
    # the time at each epoch's last step
    index = np.searchsorted(curve.x, curve.epoch_x, side="left").clip(0, len(curve.x) - 1)
    return _abscissa(curve, x)[index]


def _shifted(y: np.ndarray | None, shift: float, floor: float | None) -> np.ndarray:
    assert y is not None
    out = np.asarray(y, dtype=np.float64) - shift
    # f - f* can round to 0 or a hair below it at the minimum; the floor keeps it on the
    # log axis
    return out if floor is None else np.where(np.isnan(out), out, np.maximum(out, floor))


def _linthresh(curves: list[Curve], shift: float) -> float:
    values = np.concatenate([np.abs(c.y - shift) for c in curves])
    values = values[np.isfinite(values) & (values > 0)]
    return float(min(1.0, np.quantile(values, 0.05))) if values.size else 1.0
