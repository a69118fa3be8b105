"""EarlyStopping: stop when a watched metric stops improving, and keep the best weights."""

from __future__ import annotations

from typing import Any

from descend.callbacks.base import Callback, MetricWatch, monitor_value
from descend.result import Status
from descend.validation import check_int


class EarlyStopping(Callback):
    """Stop when a watched metric stops improving; put back the best weights at the end.

    After each epoch (``fit``) or step (``minimize``), the metric ``monitor`` improves when
    it beats the best value seen by more than ``min_delta`` (below it in mode ``min``,
    above in ``max``). After ``patience`` checks in a row without improvement the run
    stops, with status :attr:`status` (``early_stopping``: not converged) and
    :attr:`stop_reason` in its message. With ``restore_best_weights``, the model's state
    at the best check is put back when the run ends, whether or not this callback stopped
    it (``fit``; ``minimize`` already returns its best iterate).

    Args:
        monitor: a metric of ``result.logs`` (``"val_loss"``, ``"loss"``,
            ``"val_accuracy"``, ...). Default: ``"val_loss"`` when the run validates,
            else ``"loss"``.
        patience: checks without improvement before stopping, an integer >= 1.
        min_delta: the least change that counts as an improvement, >= 0.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracy-like names).
        restore_best_weights: put back the weights of the best check at the end.
        interval: ``"epoch"`` or ``"step"``; default epoch for ``fit``, step otherwise.

    Example:
        >>> fit(model, "mse", (X, y), validation=0.2, callbacks=[EarlyStopping(patience=3)])
    """

    #: the status of a run this callback stopped
    status = Status.EARLY_STOPPING

    def __init__(
        self,
        monitor: str | None = None,
        *,
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = True,
        interval: str | None = None,
    ) -> None:
        self.patience = check_int("patience", patience, low=1)
        self.restore_best_weights = bool(restore_best_weights)
        self._watch = MetricWatch(monitor, mode, min_delta, interval)
        self._best_weights: dict[str, Any] | None = None
        self.best_step: int | None = None
        self.best_epoch: int | None = None
        self.stopped = False
        self.stop_reason: str | None = None

    @property
    def best(self) -> float:
        return self._watch.best

    def on_begin(self, result: Any) -> None:
        self._watch.begin(result)
        self._best_weights = None
        self.best_step = self.best_epoch = None
        self.stopped = False
        self.stop_reason = None

    def _check(self, result: Any) -> bool | None:
        value = monitor_value(result, self._watch.metric)
        if self._watch.improved(value):
            self._watch.best = value
            self._watch.wait = 0
            self.best_step = getattr(result, "nit", None)
            self.best_epoch = getattr(result, "epoch", None)
            model = getattr(result, "model", None)
            if self.restore_best_weights and model is not None:
                self._best_weights = self._measured_state(result, model)
            return None
        self._watch.wait += 1
        if self._watch.wait >= self.patience:
            self.stopped = True
            where = (
                f"epoch {self.best_epoch}"
                if self._watch.interval == "epoch"
                else f"step {self.best_step}"
            )
            self.stop_reason = (
                f"EarlyStopping: {self._watch.name} did not improve by more than "
                f"{self._watch.min_delta:g} for {self.patience} {self._watch.interval}(s); "
                f"best {self._watch.best:.6g} at {where}"
            )
            return True
        return None

    def _measured_state(self, result: Any, model: Any) -> dict[str, Any]:
        """The weights the watched value measures: the model now for validation metrics;
        for a training metric at an epoch's end (the mean loss over the epoch's steps),
        the weights at the epoch's start, before the steps that loss paid for."""
        start = getattr(result, "epoch_start", None)
        if self._watch.interval == "epoch" and not self._watch.metric.startswith("val_") and start:
            return _copy_state_dict(start)
        return _copy_state(model)

    def on_step(self, result: Any) -> bool | None:
        return self._check(result) if self._watch.interval == "step" else None

    def on_epoch_end(self, result: Any) -> bool | None:
        return self._check(result) if self._watch.interval == "epoch" else None

    def on_end(self, result: Any) -> None:
        model = getattr(result, "model", None)
        if self.restore_best_weights and model is not None and self._best_weights is not None:
            model.load_state_dict(self._best_weights)

    def state_dict(self) -> dict[str, Any]:
        return {
            "watch": self._watch.state_dict(),
            "best_weights": self._best_weights,
            "best_step": self.best_step,
            "best_epoch": self.best_epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._watch.load_state_dict(state["watch"])
        self._best_weights = state["best_weights"]
        self.best_step, self.best_epoch = state["best_step"], state["best_epoch"]


def _copy_state(model: Any) -> dict[str, Any]:
    return _copy_state_dict(model.state_dict())


def _copy_state_dict(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in state.items()}
