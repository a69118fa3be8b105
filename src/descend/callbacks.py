"""The callback contract shared by every descent run (``minimize`` and ``fit``).

A callback sees the run's intermediate result at its start, after every step and at
its end, and stops the run by returning ``True`` from ``on_step`` (or raising
``StopIteration``, as SciPy's callbacks may). Runs over a data set (``fit``) also call
``on_epoch_end`` after each pass over the data, with the epoch's metrics (training and
validation loss) in ``result.logs``; a callback with state worth keeping across a
checkpoint returns it from ``state_dict`` and takes it back in ``load_state_dict``.

The ready-made callbacks (after the Keras ones): :class:`EarlyStopping`,
:class:`ReduceLROnPlateau`, :class:`Checkpoint`, :class:`TerminateOnNaN`,
:class:`ProgressBar` and :class:`HistoryLogger`. They read what they watch with
:func:`monitor_value`: ``result.logs[name]`` when the run keeps logs (``fit``), else the
result's attribute (``"fun"``, ``"grad_norm"`` for ``minimize``; ``"loss"`` means ``fun``).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from typing import Any


class Callback:
    """Base class: override the hooks you need."""

    def bind(self, **run: Any) -> None:
        """Called once before ``on_begin`` with what the run is made of.

        ``minimize`` passes ``objective`` (the :class:`descend.objective.Objective`, with
        its parameters and ``loss_fn``) and ``optimizer``; ``fit`` also passes ``model``,
        ``loss_fn`` (``loss_fn(prediction, target)``), ``batches`` (a function returning
        a fresh iterator of ``(X, y)`` batches) and ``batch_size``. Ignore what you do
        not need: runners may pass more names in future.
        """

    def on_begin(self, result: Any) -> None:
        """Called once, before the first step, with the result at the start."""

    def on_iteration(self, nit: int) -> bool:
        """Called after every step, before the intermediate result is built, with the
        iteration number; return False to skip this step's :meth:`on_step`.

        A callback that acts every N steps, or only reads what ``bind`` gave it and the
        history, works here and returns False, so the loop builds no intermediate result
        for it. Default: True (``on_step`` every step). Loops that do not call this hook
        call ``on_step`` every step.
        """
        return True

    def on_step(self, result: Any) -> bool | None:
        """Called after every step with the intermediate result; return True to stop."""
        return None

    def on_epoch_end(self, result: Any) -> bool | None:
        """Called after each pass over the data (``fit`` only); return True to stop."""
        return None

    def on_end(self, result: Any) -> None:
        """Called once with the final result."""

    def state_dict(self) -> dict[str, Any]:
        """What this callback must remember across a checkpoint and resume (default: nothing)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`state_dict` returned (called after ``on_begin`` on resume)."""


class FunctionCallback(Callback):
    """Adapts a plain function ``fn(intermediate_result) -> bool | None`` to :class:`Callback`."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def on_step(self, result: Any) -> bool | None:
        return bool(self.fn(result))

    def __repr__(self) -> str:
        return f"FunctionCallback({getattr(self.fn, '__name__', self.fn)!r})"


def as_callbacks(callback: Any) -> list[Callback]:
    """Normalize ``None``, a function, a :class:`Callback` or an iterable of them."""
    if callback is None:
        return []
    if isinstance(callback, Callback):
        return [callback]
    if callable(callback):
        return [FunctionCallback(callback)]
    if isinstance(callback, Iterable):
        out: list[Callback] = []
        for item in callback:
            out.extend(as_callbacks(item))
        return out
    raise TypeError(
        f"callback must be a function, a descend.callbacks.Callback or a list of them, "
        f"got {type(callback).__name__}"
    )


# -- health monitors --------------------------------------------------------------------

_default_monitors: Callable[..., list[Callback]] | None = None


def set_default_monitors(factory: Callable[..., list[Callback]] | None) -> None:
    """Register ``factory(**run) -> [monitors]``, the monitors every run gets by default.

    ``descend.diagnostics`` registers its standard set on import (this layer does not
    import the one above it). ``run`` holds what the runner knows (``model`` for ``fit``).
    """
    global _default_monitors
    _default_monitors = factory


def monitors_for_run(monitors: Any, **run: Any) -> list[Callback]:
    """The health monitors a run asked for: ``"default"`` (or True) for the standard set,
    None or False for none, else callbacks as :func:`as_callbacks` takes them."""
    if monitors is None or monitors is False:
        return []
    if monitors is True or (isinstance(monitors, str) and monitors == "default"):
        return list(_default_monitors(**run)) if _default_monitors is not None else []
    if isinstance(monitors, str):
        raise ValueError(
            f"monitors must be 'default', None or a list of monitors, got {monitors!r}"
        )
    return as_callbacks(monitors)


def bind_callbacks(callbacks: Iterable[Callback], **run: Any) -> None:
    """Call each callback's ``bind(**run)`` (functions adapted by :func:`as_callbacks` too)."""
    for cb in callbacks:
        bind = getattr(cb, "bind", None)
        if callable(bind):
            bind(**run)


# -- ready-made callbacks ---------------------------------------------------------------

_MAX_WORDS = ("acc", "auc", "r2", "score", "precision", "recall", "f1")


def monitor_value(result: Any, name: str) -> float:
    """The value of metric ``name`` in ``result``: ``result.logs[name]``, else an attribute.

    ``"loss"`` falls back to ``result.fun`` for runs without logs (``minimize``). A name the
    run does not record raises a ValueError listing the ones it does.
    """
    logs = getattr(result, "logs", None)
    if isinstance(logs, dict) and name in logs:
        return float(logs[name])
    attr = "fun" if name == "loss" else name
    value = getattr(result, attr, None)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    known = sorted(logs) if isinstance(logs, dict) else ["fun", "grad_norm", "nit"]
    raise ValueError(f"monitor {name!r} is not recorded by this run; valid choices: {known}")


def _resolve_mode(mode: str, monitor: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"unknown mode {mode!r}; valid choices: auto, min, max")
    if mode != "auto":
        return mode
    return "max" if any(word in monitor for word in _MAX_WORDS) else "min"


def _has_epochs(result: Any) -> bool:
    return getattr(result, "epoch", None) is not None


def _default_monitor(result: Any) -> str:
    logs = getattr(result, "logs", None)
    if isinstance(logs, dict) and getattr(result, "has_validation", False):
        return "val_loss"
    return "loss"


class _Monitor:
    """Best-so-far bookkeeping for a watched metric (shared by the plateau callbacks)."""

    def __init__(self, monitor: str | None, mode: str, min_delta: float, interval: str | None):
        from descend.validation import check_non_negative

        self.monitor = monitor
        self.mode_arg = mode
        self.min_delta = check_non_negative("min_delta", min_delta)
        if interval not in (None, "epoch", "step"):
            raise ValueError(f"unknown interval {interval!r}; valid choices: None, epoch, step")
        self.interval_arg = interval
        self.reset()

    def reset(self) -> None:
        self.name = self.monitor
        self.mode = "min"
        self.interval = self.interval_arg or "step"
        self.best = math.inf
        self.wait = 0

    def begin(self, result: Any) -> None:
        self.reset()
        self.name = self.monitor or _default_monitor(result)
        self.mode = _resolve_mode(self.mode_arg, self.name)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.interval = self.interval_arg or ("epoch" if _has_epochs(result) else "step")

    def improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def state_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mode": self.mode,
            "interval": self.interval,
            "best": self.best,
            "wait": self.wait,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.name, self.mode, self.interval = state["name"], state["mode"], state["interval"]
        self.best, self.wait = state["best"], state["wait"]


class EarlyStopping(Callback):
    """Stop when a watched metric stops improving; put back the best weights at the end.

    After each epoch (``fit``) or step (``minimize``), the metric ``monitor`` improves when
    it beats the best value seen by more than ``min_delta`` (below it in mode ``min``,
    above in ``max``). After ``patience`` checks in a row without improvement the run
    stops with status ``callback``. With ``restore_best_weights``, the model's state at the
    best check is put back when the run ends, whether or not this callback stopped it
    (``fit``; ``minimize`` already returns its best iterate).

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
        from descend.validation import check_int

        self.patience = check_int("patience", patience, low=1)
        self.restore_best_weights = bool(restore_best_weights)
        self._watch = _Monitor(monitor, mode, min_delta, interval)
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
        value = monitor_value(result, self._watch.name)
        if self._watch.improved(value):
            self._watch.best = value
            self._watch.wait = 0
            self.best_step = getattr(result, "nit", None)
            self.best_epoch = getattr(result, "epoch", None)
            model = getattr(result, "model", None)
            if self.restore_best_weights and model is not None:
                self._best_weights = _copy_state(model)
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
        from descend.validation import check_int, check_non_negative, check_number

        self.factor = check_number(
            "factor", factor, low=0.0, high=1.0, low_open=True, high_open=True
        )
        self.patience = check_int("patience", patience, low=0)
        self.cooldown = check_int("cooldown", cooldown, low=0)
        self.min_lr = check_non_negative("min_lr", min_lr)
        self._watch = _Monitor(monitor, mode, min_delta, interval)
        self.scheduler: Any = None

    def on_begin(self, result: Any) -> None:
        import torch

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
        self.scheduler.step(monitor_value(result, self._watch.name))

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


def save_atomic(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to ``path`` so that a reader never sees a half-written file.

    Writes a temporary file in the same folder, flushes it to disk, then renames it over
    ``path`` (``os.replace`` is atomic on POSIX and Windows): a crash at any moment leaves
    either the old checkpoint or the new one.
    """
    import torch

    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    if hasattr(os, "O_DIRECTORY"):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Checkpoint(Callback):
    """Save the run's full training state every N steps and/or epochs, atomically.

    With ``fit``, the file holds everything needed to resume bit-identically
    (``fit(..., resume=path)``): model, optimizer, schedule, random generator states,
    position in the data, histories and the other callbacks' states. With ``minimize``,
    it holds the iterate, f and the iteration count. ``fit`` runs checkpoint callbacks
    after the others at each step, so the saved state includes their update for it.

    Args:
        path: the file; ``{step}`` and ``{epoch}`` in it are filled in (one file per save),
            otherwise each save replaces the last.
        every_steps: save after every this many steps (None: not by steps).
        every_epochs: save after every this many epochs (None: not by epochs).
        save_last: also save when the run ends.

    Example:
        >>> fit(model, "mse", (X, y), checkpoint=Checkpoint("run.pt", every_steps=100))
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        every_steps: int | None = None,
        every_epochs: int | None = 1,
        save_last: bool = True,
    ) -> None:
        from descend.validation import check_int

        self.path = os.fspath(path)
        self.every_steps = (
            None if every_steps is None else check_int("every_steps", every_steps, low=1)
        )
        self.every_epochs = (
            None if every_epochs is None else check_int("every_epochs", every_epochs, low=1)
        )
        self.save_last = bool(save_last)
        self.last_path: str | None = None
        self.saves = 0

    def target(self, result: Any) -> str:
        return self.path.format(step=getattr(result, "nit", 0), epoch=getattr(result, "epoch", 0))

    def save(self, result: Any) -> str:
        """Write the state of ``result``'s run now; returns the file written."""
        state_fn = getattr(result, "training_state", None)
        if callable(state_fn):
            state = state_fn()
        else:
            state = {
                "x": getattr(result, "x", None),
                "fun": getattr(result, "fun", None),
                "nit": getattr(result, "nit", None),
            }
        path = self.target(result)
        self.saves += 1
        save_atomic(state, path)
        self.last_path = path
        return path

    def on_step(self, result: Any) -> bool | None:
        if self.every_steps is not None and result.nit % self.every_steps == 0:
            self.save(result)
        return None

    def on_epoch_end(self, result: Any) -> bool | None:
        if self.every_epochs is not None and result.epoch % self.every_epochs == 0:
            self.save(result)
        return None

    def on_end(self, result: Any) -> None:
        if self.save_last:
            self.save(result)

    def state_dict(self) -> dict[str, Any]:
        return {"saves": self.saves}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.saves = state["saves"]


class HistoryLogger(Callback):
    """Append the run's metrics to a CSV or JSON-lines file as they are recorded.

    One row per step (``every="step"``), per epoch (``"epoch"``, ``fit`` only) or both
    (``"both"``, with a ``"kind"`` column). The format follows the suffix: ``.csv`` or
    ``.jsonl``. On resume from a checkpoint the file is cut back to what it held at that
    checkpoint, so rows are neither lost nor repeated.

    Example:
        >>> fit(model, "mse", (X, y), callbacks=[HistoryLogger("history.csv", every="epoch")])
    """

    def __init__(self, path: str | os.PathLike[str], *, every: str = "epoch") -> None:
        if every not in ("step", "epoch", "both"):
            raise ValueError(f"unknown every {every!r}; valid choices: step, epoch, both")
        self.path = os.fspath(path)
        self.every = every
        self.jsonl = self.path.endswith((".jsonl", ".json"))
        self._handle: Any = None
        self._fields: list[str] | None = None
        self._offset = 0
        self._fresh = True

    def on_begin(self, result: Any) -> None:
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        self._handle = None
        self._fields = None
        self._offset = 0
        self._fresh = True

    def _open(self) -> Any:
        if self._handle is None:
            mode = "w" if self._fresh else "a"
            self._handle = open(self.path, mode, encoding="utf-8", newline="")  # noqa: SIM115
            self._fresh = False
        return self._handle

    def _write(self, kind: str, result: Any) -> None:
        logs = getattr(result, "logs", None)
        if not isinstance(logs, dict):
            logs = {"iteration": result.nit, "f": result.fun, "grad_norm": result.grad_norm}
        row = {"kind": kind, **logs} if self.every == "both" else dict(logs)
        self._open()
        if self.jsonl:
            import json

            self._handle.write(json.dumps(row) + "\n")
        else:
            if self._fields is None:
                self._fields = list(row)
                self._handle.write(",".join(self._fields) + "\n")
            self._handle.write(",".join(_csv_cell(row.get(k, "")) for k in self._fields) + "\n")
        self._handle.flush()
        self._offset = self._handle.tell()

    def on_step(self, result: Any) -> bool | None:
        if self.every in ("step", "both"):
            self._write("step", result)
        return None

    def on_epoch_end(self, result: Any) -> bool | None:
        if self.every in ("epoch", "both"):
            self._write("epoch", result)
        return None

    def on_end(self, result: Any) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def state_dict(self) -> dict[str, Any]:
        return {"offset": self._offset, "fields": self._fields}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        with open(self.path, "a", encoding="utf-8"):
            pass
        with open(self.path, "r+b") as raw:
            raw.truncate(state["offset"])
        self._offset = state["offset"]
        self._fields = state["fields"]
        self._fresh = False


def _csv_cell(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    return f'"{text}"' if ("," in text or '"' in text) else text


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


def _copy_state(model: Any) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
