"""The callback contract shared by every descent run (``minimize`` and ``fit``), and the
ready-made callbacks.

* :mod:`~descend.callbacks.base`: :class:`Callback` (the hooks), :class:`CallbackList`
  (a run's callbacks called as one), :func:`as_callbacks`, :func:`bind_callbacks`,
  :func:`monitor_value` and :class:`MetricWatch` (the watched-metric bookkeeping).
* One module per callback (after the Keras ones): :class:`EarlyStopping`,
  :class:`ReduceLROnPlateau`, :class:`Checkpoint` (with :func:`save_atomic`),
  :class:`TerminateOnNaN`, :class:`HistoryLogger` and :class:`ProgressBar`.

They read what they watch with :func:`monitor_value`: ``result.logs[name]`` when the run
keeps logs (``fit``), else the result's attribute (``"fun"``, ``"grad_norm"`` for
``minimize``; ``"loss"`` means ``fun``). The health monitors, callbacks too, live one
layer up in :mod:`descend.monitors`.
"""

from descend.callbacks.base import (
    Callback,
    CallbackList,
    FunctionCallback,
    MetricWatch,
    as_callbacks,
    bind_callbacks,
    monitor_value,
)
from descend.callbacks.checkpoint import Checkpoint, save_atomic
from descend.callbacks.early_stopping import EarlyStopping
from descend.callbacks.history_logger import HistoryLogger
from descend.callbacks.progress import ProgressBar
from descend.callbacks.reduce_lr import ReduceLROnPlateau
from descend.callbacks.terminate_on_nan import TerminateOnNaN

__all__ = [
    "Callback",
    "CallbackList",
    "Checkpoint",
    "EarlyStopping",
    "FunctionCallback",
    "HistoryLogger",
    "MetricWatch",
    "ProgressBar",
    "ReduceLROnPlateau",
    "TerminateOnNaN",
    "as_callbacks",
    "bind_callbacks",
    "monitor_value",
    "save_atomic",
]
