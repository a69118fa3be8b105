"""ReduceLROnPlateau: lower the learning rate when a watched metric stops improving."""

from __future__ import annotations

from typing import Any

import torch

from descend.callbacks.base import Callback, MetricWatch, monitor_value
from descend.validation import check_int, check_non_negative, check_number


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when a metric stops improving.

    A callback form of ``torch.optim.lr_scheduler.ReduceLROnPlateau`` (which does the
    work), stepped with ``monitor`` after every epoch (``fit``) or step. It needs the
    run's optimizer (``result.optimizer``), which ``fit`` provides.

    Args:
        monitor: the metric to watch (default ``val_loss`` when validating, else ``loss``).
        factor: new lr = lr * factor, in (0, 1).
        patience: checks without improvement before a reduction, an integer >= 0.
        min_delta: the least absolute change that counts as an improvement, >= 0.
        mode: ``"min"``, ``"max"`` or ``"auto"``.
        cooldown: checks to wait after a reduction before watching again, >= 0.
        min_lr: the floor of the learning rate, >= 0.
        interval: ``"epoch"`` or ``"step"`` (default: epoch for ``fit``).

    Example:
        >>> fit(model, "mse", (X, y), callbacks=[ReduceLROnPlateau(factor=0.5, patience=2)])
    """

    def __init__(
        self,
        monitor: str | None = None,
        *,
        factor: float = 0.1,
        patience: int = 10,
        min_delta: float = 1e-4,
        mode: str = "auto",
        cooldown: int = 0,
        min_lr: float = 0.0,
        interval: str | None = None,
    ) -> None:
        self.factor = check_number(
            "factor", factor, low=0.0, high=1.0, low_open=True, high_open=True
        )
        self.patience = check_int("patience", patience, low=0)
        self.cooldown = check_int("cooldown", cooldown, low=0)
        self.min_lr = check_non_negative("min_lr", min_lr)
        self._watch = MetricWatch(monitor, mode, min_delta, interval)
        self.scheduler: Any = None

    def on_begin(self, result: Any) -> None:
        optimizer = getattr(result, "optimizer", None)
        if optimizer is None:
            raise ValueError(
                "ReduceLROnPlateau needs the run's optimizer (result.optimizer); use it with "
                "descend.fit"
            )
        self._watch.begin(result)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode=self._watch.mode,
            factor=self.factor,
            patience=self.patience,
            threshold=self._watch.min_delta,
            threshold_mode="abs",
            cooldown=self.cooldown,
            min_lr=self.min_lr,
        )

    def _check(self, result: Any) -> None:
        self.scheduler.step(monitor_value(result, self._watch.metric))

    def on_step(self, result: Any) -> bool | None:
        if self._watch.interval == "step":
            self._check(result)
        return None

    def on_epoch_end(self, result: Any) -> bool | None:
        if self._watch.interval == "epoch":
            self._check(result)
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"watch": self._watch.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._watch.load_state_dict(state["watch"])
        self.scheduler.load_state_dict(state["scheduler"])
