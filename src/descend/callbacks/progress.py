"""ProgressBar: a rich progress bar for a run (epoch, step, loss, lr, speed, time left)."""

from __future__ import annotations

import time
from typing import Any

from descend.callbacks.base import Callback


class ProgressBar(Callback):
    """A rich progress bar: epoch, step, loss, validation metric, lr, speed, time left.

    Draws only on a terminal (or with ``force=True``); elsewhere it does nothing. It
    redraws at most ``refresh_per_second`` times a second, so it costs nothing per step
    beyond reading the latest logs.

    Example:
        >>> fit(model, "mse", (X, y), callbacks=[ProgressBar()])  # progress=True adds one
    """

    def __init__(
        self, *, console: Any = None, force: bool = False, refresh_per_second: float = 4.0
    ) -> None:
        self.console = console
        self.force = force
        self.refresh_per_second = refresh_per_second
        self.enabled = False
        self._progress: Any = None
        self._task: Any = None
        self._next_draw = 0.0
        self._epoch_text = ""

    def on_begin(self, result: Any) -> None:
        # rich is imported when a run starts, not when descend is
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = self.console or Console(stderr=True)
        self.enabled = self.force or console.is_terminal
        if not self.enabled:
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}"),
            TextColumn("{task.fields[speed]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=console,
            refresh_per_second=self.refresh_per_second,
        )
        total = getattr(result, "total_steps", None)
        self._task = self._progress.add_task(
            self._describe(result),
            total=total,
            completed=getattr(result, "nit", 0),
            metrics="",
            speed="",
        )
        self._progress.start()
        self._next_draw = 0.0
        self._epoch_text = ""

    @staticmethod
    def _describe(result: Any) -> str:
        epoch, epochs = getattr(result, "epoch", None), getattr(result, "epochs", None)
        if epoch is None:
            return "descent"
        return f"epoch {min(epoch + 1, epochs or epoch + 1)}/{epochs}" if epochs else "epoch"

    def _draw(self, result: Any, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now < self._next_draw:
            return
        self._next_draw = now + 1.0 / self.refresh_per_second
        logs = getattr(result, "logs", None) or {"loss": result.fun}
        parts = [f"loss {logs['loss']:.4g}"] if "loss" in logs else []
        if "lr" in logs and logs["lr"] == logs["lr"]:
            parts.append(f"lr {logs['lr']:.3g}")
        text = "  ".join(parts) + self._epoch_text
        elapsed = getattr(result, "time", 0.0) or 0.0
        speed = f"{result.nit / elapsed:,.0f} steps/s" if elapsed > 0 else ""
        self._progress.update(
            self._task,
            completed=result.nit,
            description=self._describe(result),
            metrics=text,
            speed=speed,
        )

    def on_step(self, result: Any) -> bool | None:
        if self.enabled:
            self._draw(result)
        return None

    def on_epoch_end(self, result: Any) -> bool | None:
        if self.enabled:
            logs = result.logs
            extra = [
                f"{k} {v:.4g}"
                for k, v in logs.items()
                if k.startswith("val_") and isinstance(v, float) and v == v
            ]
            self._epoch_text = ("  " + "  ".join(extra)) if extra else ""
            self._draw(result, force=True)
        return None

    def on_end(self, result: Any) -> None:
        if self.enabled and self._progress is not None:
            self._draw(result, force=True)
            self._progress.stop()
            self._progress = None
