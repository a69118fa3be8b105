"""What a figure reads from a run: its loss curve, validation curve and labels.

A *run* is anything a descent produced or a store gave back: an ``OptimizeResult``
(``minimize``), a ``FitResult`` (``fit``), a run record (``descend.runs``), a
:class:`descend.History`, or a mapping of column names to arrays. Figures read these and
nothing else; no plot re-runs an optimization.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = ["Curve", "check_dpi", "check_figsize", "curve_of", "run_label", "save"]


@dataclass(frozen=True)
class Curve:
    """One run's loss against its iterations (or steps), with what else it recorded.

    Attributes:
        label: the legend entry.
        x: iteration (``minimize``) or step (``fit``) numbers.
        y: f or the step's loss at each ``x``.
        x_name: ``"iteration"`` or ``"step"``.
        time: seconds since the start at each ``x`` (None when not recorded).
        epoch_x: the step at which each epoch ended (None for runs without epochs).
        epoch_loss: the mean training loss of each epoch.
        val_loss: the validation loss of each epoch (None without validation).
        status: why the run stopped (``"ftol"``, ``"diverged"``, ...), if known.
    """

    label: str
    x: np.ndarray
    y: np.ndarray
    x_name: str
    time: np.ndarray | None = None
    epoch_x: np.ndarray | None = None
    epoch_loss: np.ndarray | None = None
    val_loss: np.ndarray | None = None
    status: str | None = None

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"


def curve_of(run: Any, label: str) -> Curve:
    """The :class:`Curve` of ``run`` (see the module docstring for what a run may be)."""
    history = getattr(run, "history", run)
    columns = _columns(history, label)
    if "f" in columns:
        y, x_name = columns["f"], "iteration"
    elif "loss" in columns:
        y, x_name = columns["loss"], "step"
    else:
        raise ValueError(
            f"run {label!r} has no loss to plot: its history has columns "
            f"{sorted(columns)}, expected 'f' (minimize) or 'loss' (fit)"
        )
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    x = columns.get(x_name)
    x = np.arange(len(y)) if x is None else np.asarray(x, dtype=np.float64).reshape(-1)
    if len(x) != len(y):
        raise ValueError(f"run {label!r}: {len(x)} {x_name} values for {len(y)} losses")
    time = columns.get("time")
    epoch_x: np.ndarray | None = None
    epoch_loss: np.ndarray | None = None
    val_loss: np.ndarray | None = None
    epochs = getattr(run, "epoch_history", None)
    if epochs is not None and len(epochs):
        e = _columns(epochs, label)
        epoch_x = np.asarray(e["step"], dtype=np.float64)
        epoch_loss = np.asarray(e["loss"], dtype=np.float64)
        if "val_loss" in e and np.isfinite(e["val_loss"]).any():
            val_loss = np.asarray(e["val_loss"], dtype=np.float64)
    elif "val_loss" in columns and np.isfinite(np.asarray(columns["val_loss"], float)).any():
        epoch_x, val_loss = x, np.asarray(columns["val_loss"], dtype=np.float64)
    status = getattr(run, "status", None)
    return Curve(
        label=label,
        x=x,
        y=y,
        x_name=x_name,
        time=None if time is None else np.asarray(time, dtype=np.float64),
        epoch_x=epoch_x,
        epoch_loss=epoch_loss,
        val_loss=val_loss,
        status=None if status is None else str(getattr(status, "value", status)),
    )


def _columns(history: Any, label: str) -> Mapping[str, Any]:
    if isinstance(history, Mapping):
        return history
    as_dict = getattr(history, "as_dict", None)
    if callable(as_dict):
        return as_dict()
    raise TypeError(
        f"run {label!r} must be a result of minimize or fit, a run record, a History or a "
        f"dict of arrays, got {type(history).__name__}"
    )


def run_label(run: Any, index: int) -> str:
    """A legend label for a run given without one: its record label or id, its method, or
    ``run <index + 1>``."""
    for attribute in ("label", "method"):
        value = getattr(run, attribute, None)
        if isinstance(value, str) and value:
            return value
    return f"run {index + 1}"


def check_dpi(dpi: Any) -> int:
    if isinstance(dpi, bool) or not isinstance(dpi, int) or dpi < 1:
        raise ValueError(f"dpi must be an integer >= 1, got {dpi!r}")
    return dpi


def check_figsize(figsize: Any) -> tuple[float, float]:
    try:
        width, height = (float(v) for v in figsize)
    except (TypeError, ValueError):
        raise TypeError(f"figsize must be (width, height) in inches, got {figsize!r}") from None
    if not (width > 0 and height > 0 and math.isfinite(width) and math.isfinite(height)):
        raise ValueError(f"figsize must be two finite numbers > 0, got {figsize!r}")
    return width, height


def save(fig: Figure, path: str | os.PathLike[str] | None, dpi: int) -> Figure:
    """Save ``fig`` to ``path`` when one is given (format from the suffix); return it."""
    if path is not None:
        fig.savefig(os.fspath(path), dpi=dpi)
    return fig
