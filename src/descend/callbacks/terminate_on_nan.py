"""TerminateOnNaN: stop as soon as a watched metric is NaN or infinite."""

from __future__ import annotations

import math
from typing import Any

from descend.callbacks.base import Callback, monitor_value


class TerminateOnNaN(Callback):
    """Stop as soon as a watched metric is NaN or infinite.

    The descent loops already end a run whose training loss or gradient is not finite
    (status ``diverged``); this callback watches anything else, such as the validation
    loss (``monitor="val_loss"``), checked after every step and epoch where it is recorded.
    """

    def __init__(self, monitor: str = "loss") -> None:
        self.monitor = monitor
        self.stop_reason: str | None = None

    def _check(self, result: Any, where: str) -> bool | None:
        logs = getattr(result, "logs", None)
        if isinstance(logs, dict) and self.monitor not in logs and self.monitor != "loss":
            return None  # not recorded at this point (validation is per epoch)
        value = monitor_value(result, self.monitor)
        if math.isfinite(value):
            return None
        self.stop_reason = f"TerminateOnNaN: {self.monitor} became {value} at {where}"
        return True

    def on_step(self, result: Any) -> bool | None:
        return self._check(result, f"step {result.nit}")

    def on_epoch_end(self, result: Any) -> bool | None:
        return self._check(result, f"epoch {result.epoch}")
