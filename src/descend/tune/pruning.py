"""The callback that feeds a run's intermediate values to an Optuna trial and stops the
run when the study's pruner says so."""

from __future__ import annotations

import math
from typing import Any

import optuna

from descend.callbacks import Callback, monitor_value
from descend.validation import check_int

__all__ = ["PruningCallback"]


class PruningCallback(Callback):
    """Reports ``monitor`` to ``trial`` and stops the run when the trial should be pruned.

    ``fit`` reports at each epoch's end (step = the epoch); ``minimize`` every ``every``
    iterations (step = the iteration). The run then ends normally (status ``callback``)
    and the caller raises :class:`optuna.TrialPruned` when :attr:`pruned` is set, so the
    run's result (its best state, its history) is still whole. A value that is not finite
    is not reported: the run's own divergence test ends such a run.

    Args:
        trial: the Optuna trial of this run.
        monitor: the metric reported (``"val_loss"``, ``"val_accuracy"``, ``"loss"``;
            ``minimize``: ``"fun"``), read by :func:`descend.callbacks.monitor_value`.
        every: ``minimize`` only: report every this many iterations, >= 1.

    Example:
        >>> prune = PruningCallback(trial, "val_loss")
        >>> result = descend.fit(net, "mse", data, validation=0.2, callbacks=[prune])
        >>> if prune.pruned: raise optuna.TrialPruned()
    """

    def __init__(self, trial: optuna.trial.Trial, monitor: str, *, every: int = 1) -> None:
        self.trial = trial
        self.monitor = monitor
        self.every = check_int("every", every, low=1)
        self.by_epoch = False
        self.pruned = False
        self.stop_reason: str | None = None
        #: what was reported, by step
        self.values: dict[int, float] = {}

    def bind(self, **run: Any) -> None:
        # fit binds its batches: such a run reports at epoch ends, never per step
        self.by_epoch = "batches" in run

    def on_begin(self, result: Any) -> None:
        self.pruned = False
        self.stop_reason = None
        self.values = {}

    def on_iteration(self, nit: int) -> bool:
        return not self.by_epoch and nit % self.every == 0

    def on_step(self, result: Any) -> bool | None:
        return self._report(result, int(result.nit))

    def on_epoch_end(self, result: Any) -> bool | None:
        return self._report(result, int(result.epoch))

    def _report(self, result: Any, step: int) -> bool:
        value = monitor_value(result, self.monitor)
        if not math.isfinite(value):
            return False
        self.values[step] = value
        self.trial.report(value, step)
        if self.trial.should_prune():
            self.pruned = True
            self.stop_reason = (
                f"pruned by the study's pruner at step {step} ({self.monitor} = {value:.6g})"
            )
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"pruned": self.pruned, "values": dict(self.values)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pruned = state["pruned"]
        self.values = dict(state["values"])
