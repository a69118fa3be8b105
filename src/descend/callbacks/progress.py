"""ProgressBar: a run's progress where it runs: a terminal, a notebook, or a log.

One callback, three displays of the same figures (epoch, step, loss, validation metrics,
lr, speed, time):

* ``"terminal"``: a rich progress bar on standard error, redrawn in place;
* ``"notebook"``: under a Jupyter kernel, an HTML bar (a ``<progress>`` element and the
  figures) in one output cell, updated in place through an IPython display handle (no
  ipywidgets);
* ``"log"``: one line per epoch (``fit``), or one every ``every`` steps for runs without
  epochs (``minimize``), and a last line with the outcome, through :mod:`logging` (logger
  ``descend.progress``, level INFO), so a batch job's log shows the run:
  ``logging.basicConfig(level="INFO")`` prints them.

``display="auto"`` (the default) picks the notebook under a Jupyter kernel, the terminal
bar when standard error is a terminal, and the log otherwise.
"""

from __future__ import annotations

import html
import logging
import time
from typing import Any

from descend.callbacks.base import Callback
from descend.notebook import in_notebook
from descend.validation import check_choice, check_int, check_positive

#: where a run's progress can be shown; "auto" picks one when the run starts
DISPLAYS = ("auto", "terminal", "notebook", "log")

logger = logging.getLogger("descend.progress")


class ProgressBar(Callback):
    """A run's progress: epoch, step, loss, validation metrics, lr, speed, time.

    Args:
        display: ``"auto"``, ``"terminal"``, ``"notebook"`` or ``"log"`` (see the module).
        console: the rich ``Console`` of the terminal bar (default: standard error); with
            ``display="auto"``, the bar draws when this console is a terminal.
        refresh_per_second: at most this many redraws a second (terminal and notebook), so
            the bar costs nothing per step beyond reading the latest logs; > 0.
        every: for runs without epochs, a log line every ``every`` steps (>= 1).

    Example:
        >>> bar = ProgressBar(display="log", every=50)  # INFO lines on "descend.progress"
        >>> res = minimize(lambda x: (x**2).sum(), [1.0], "gd", max_iter=100, callback=bar)
        >>> bar.shown
        'log'
    """

    def __init__(
        self,
        *,
        display: str = "auto",
        console: Any = None,
        refresh_per_second: float = 4.0,
        every: int = 100,
    ) -> None:
        self.display = check_choice("display", display, DISPLAYS)
        self.console = console
        self.refresh_per_second = check_positive("refresh_per_second", refresh_per_second)
        self.every = check_int("every", every, low=1)
        self.enabled = False
        self.shown = ""  # the display chosen when the run started
        self._view: Any = None
        self._next_draw = 0.0
        self._has_epochs = False
        self._epoch_text = ""

    # -- choosing the display -----------------------------------------------------------

    def _choose(self) -> str:
        if self.display != "auto":
            return self.display
        if self.console is None and in_notebook():
            return "notebook"
        return "terminal" if self._console().is_terminal else "log"

    def _console(self) -> Any:
        if self.console is None:
            from rich.console import Console  # rich loads when a run starts, not with descend

            self.console = Console(stderr=True)
        return self.console

    # -- the hooks ----------------------------------------------------------------------

    def on_begin(self, result: Any) -> None:
        self.shown = self._choose()
        self.enabled = True
        self._has_epochs = getattr(result, "epoch", None) is not None
        self._next_draw = 0.0
        self._epoch_text = ""
        views = {"terminal": _TerminalView, "notebook": _NotebookView, "log": _LogView}
        view = views[self.shown]
        self._view = view(self._console()) if view is _TerminalView else view()
        self._view.start(_describe(result), getattr(result, "total_steps", None), result.nit)

    def on_iteration(self, nit: int) -> bool:
        if not self.enabled:
            return False
        if self.shown == "log":  # fit logs at epoch ends; other runs every `every` steps
            return not self._has_epochs and nit % self.every == 0
        return time.perf_counter() >= self._next_draw

    def on_step(self, result: Any) -> bool | None:
        if self.enabled and self.on_iteration(result.nit):
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
            self._draw(result, epoch_ended=True)
        return None

    def on_end(self, result: Any) -> None:
        if self.enabled and self._view is not None:
            self._view.finish(result, self._figures(result))
            self._view = None
            self.enabled = False

    # -- the figures --------------------------------------------------------------------

    def _figures(self, result: Any) -> str:
        logs = getattr(result, "logs", None) or {"loss": result.fun}
        parts = [f"loss {logs['loss']:.4g}"] if "loss" in logs else []
        if "lr" in logs and logs["lr"] == logs["lr"]:
            parts.append(f"lr {logs['lr']:.3g}")
        return "  ".join(parts) + self._epoch_text

    def _draw(self, result: Any, epoch_ended: bool = False) -> None:
        self._next_draw = time.perf_counter() + 1.0 / self.refresh_per_second
        elapsed = getattr(result, "time", 0.0) or 0.0
        speed = f"{result.nit / elapsed:,.0f} steps/s" if elapsed > 0 else ""
        description = _describe(result, epoch_ended)
        self._view.update(description, result.nit, self._figures(result), speed, elapsed)


def _describe(result: Any, epoch_ended: bool = False) -> str:
    """``epoch e/E`` for a fit (``e`` the epoch under way, or the one that just ended),
    ``descent`` for other runs."""
    epoch, epochs = getattr(result, "epoch", None), getattr(result, "epochs", None)
    if epoch is None:
        return "descent"
    current = epoch if epoch_ended else min(epoch + 1, epochs or epoch + 1)
    return f"epoch {current}/{epochs}" if epochs else f"epoch {current}"


class _TerminalView:
    """The rich bar on a console."""

    def __init__(self, console: Any) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}", markup=False),
            TextColumn("{task.fields[speed]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=console,
            auto_refresh=False,
        )
        self.task: Any = None

    def start(self, description: str, total: int | None, done: int) -> None:
        self.task = self.progress.add_task(
            description, total=total, completed=done, metrics="", speed=""
        )
        self.progress.start()

    def update(self, description: str, done: int, figures: str, speed: str, _: float) -> None:
        self.progress.update(
            self.task, completed=done, description=description, metrics=figures, speed=speed
        )
        self.progress.refresh()

    def finish(self, result: Any, figures: str) -> None:
        self.progress.update(self.task, completed=result.nit, metrics=figures)
        self.progress.refresh()
        self.progress.stop()


class _NotebookView:
    """An HTML bar in one notebook output, replaced in place at each redraw."""

    def __init__(self) -> None:
        from IPython.display import HTML, display  # present under a Jupyter kernel

        self.html, self.display = HTML, display
        self.handle: Any = None
        self.total: int | None = None

    def _page(self, description: str, done: int, figures: str, tail: str) -> Any:
        bar = (
            f'<progress value="{done}" max="{self.total}"></progress>'
            if self.total
            else "<progress></progress>"
        )
        count = f"{done}/{self.total}" if self.total else str(done)
        text = "  ".join(t for t in (description, count, figures, tail) if t)
        return self.html(
            f'<div class="descend-progress">{bar} <code>{html.escape(text)}</code></div>'
        )

    def start(self, description: str, total: int | None, done: int) -> None:
        self.total = total
        self.handle = self.display(self._page(description, done, "", ""), display_id=True)

    def update(self, description: str, done: int, figures: str, speed: str, elapsed: float) -> None:
        self.handle.update(self._page(description, done, figures, f"{speed}  {elapsed:.1f} s"))

    def finish(self, result: Any, figures: str) -> None:
        self.total = self.total or result.nit
        tail = f"{result.status}  {getattr(result, 'time', 0.0):.1f} s"
        self.handle.update(self._page(_describe(result, True), result.nit, figures, tail))


class _LogView:
    """One INFO line per redraw on the ``descend.progress`` logger."""

    def __init__(self) -> None:
        self.total: int | None = None

    def start(self, description: str, total: int | None, done: int) -> None:
        self.total = total

    def update(self, description: str, done: int, figures: str, speed: str, elapsed: float) -> None:
        steps = f"step {done}/{self.total}" if self.total else f"step {done}"
        logger.info("%s  %s  %s  %.1f s", description, steps, figures, elapsed)

    def finish(self, result: Any, figures: str) -> None:
        logger.info(
            "done: %s after %d steps  %s  %.1f s",
            result.status,
            result.nit,
            figures,
            getattr(result, "time", 0.0) or 0.0,
        )
