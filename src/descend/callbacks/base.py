"""The callback contract, the dispatcher that calls a run's callbacks as one, and the
shared reading of a watched metric.

A callback sees the run's intermediate result at its start, after every step and at
its end, and stops the run by returning ``True`` from ``on_step`` (or raising
``StopIteration``, as SciPy's callbacks may). Runs over a data set (``fit``) also call
``on_epoch_end`` after each pass over the data, with the epoch's metrics (training and
validation loss) in ``result.logs``; a callback with state worth keeping across a
checkpoint returns it from ``state_dict`` and takes it back in ``load_state_dict``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal, cast

from descend.validation import check_non_negative


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


def bind_callbacks(callbacks: Iterable[Callback], **run: Any) -> None:
    """Call each callback's ``bind(**run)`` (functions adapted by :func:`as_callbacks` too)."""
    for cb in callbacks:
        bind = getattr(cb, "bind", None)
        if callable(bind):
            bind(**run)


class CallbackList:
    """A run's callbacks called as one: each hook once per event, in order.

    The loop asks :meth:`step` with a function that builds the intermediate result, so the
    result is built only when some callback wants this step (:meth:`Callback.on_iteration`).
    A hook that returns True or raises ``StopIteration`` stops the run; the callbacks that
    did are in :attr:`stopped_by`, their ``stop_reason`` in :meth:`stop_reasons` and the
    status they ask for (``EarlyStopping``: ``early_stopping``) in :meth:`stop_status`.

    Example:
        >>> from types import SimpleNamespace
        >>> hooks = CallbackList(as_callbacks(lambda result: result.nit >= 3))
        >>> state = lambda nit: SimpleNamespace(nit=nit)  # an intermediate result
        >>> hooks.step(2, lambda: state(2)), hooks.step(3, lambda: state(3))
        (False, True)
        >>> [type(cb).__name__ for cb in hooks.stopped_by], hooks.stop_status()
        (['FunctionCallback'], None)
    """

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks: list[Callback] = list(callbacks)
        self.stopped_by: list[Callback] = []

    def __iter__(self) -> Iterator[Callback]:
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)

    def __bool__(self) -> bool:
        return bool(self.callbacks)

    def bind(self, **run: Any) -> None:
        bind_callbacks(self.callbacks, **run)

    def on_begin(self, result: Any) -> None:
        self.stopped_by = []
        for cb in self.callbacks:
            cb.on_begin(result)

    def step(self, nit: int, result: Callable[[], Any]) -> bool:
        """Call ``on_step`` of the callbacks that want step ``nit``; True to stop."""
        wanted = [cb for cb in self.callbacks if cb.on_iteration(nit)]
        return bool(wanted) and self._any_stop(wanted, "on_step", result())

    def on_step(self, result: Any) -> bool:
        """Call every callback's ``on_step`` (no ``on_iteration`` filter); True to stop."""
        return self._any_stop(self.callbacks, "on_step", result)

    def on_epoch_end(self, result: Any) -> bool:
        return self._any_stop(self.callbacks, "on_epoch_end", result)

    def on_end(self, result: Any) -> None:
        for cb in self.callbacks:
            cb.on_end(result)

    def _any_stop(self, callbacks: list[Callback], hook: str, result: Any) -> bool:
        stop = False
        for cb in callbacks:
            try:
                wants_stop = bool(getattr(cb, hook)(result))
            except StopIteration:
                wants_stop = True
            if wants_stop:
                self.stopped_by.append(cb)
                stop = True
        return stop

    def stop_reasons(self) -> list[str]:
        """Every callback's ``stop_reason`` that is set, in order."""
        return [r for cb in self.callbacks if (r := getattr(cb, "stop_reason", None))]

    def stop_status(self) -> Any:
        """The ``status`` of the first callback that stopped the run and names one, else None."""
        for cb in self.stopped_by:
            status = getattr(cb, "status", None)
            if status is not None:
                return status
        return None

    def state_dict(self) -> list[tuple[str, dict[str, Any]]]:
        """``(class name, state)`` per callback, as a checkpoint keeps them."""
        return [(type(cb).__name__, cb.state_dict()) for cb in self.callbacks]

    def load_state_dict(self, saved: list[tuple[str, Any]]) -> None:
        names = [type(cb).__name__ for cb in self.callbacks]
        if names != [name for name, _ in saved]:
            raise ValueError(
                f"the checkpoint was saved with callbacks {[n for n, _ in saved]}, "
                f"this run has {names}; resume with the same callbacks"
            )
        for cb, (_, state) in zip(self.callbacks, saved):
            cb.load_state_dict(state)


# -- reading a watched metric -----------------------------------------------------------

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


def _resolve_mode(mode: str, monitor: str) -> Literal["min", "max"]:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"unknown mode {mode!r}; valid choices: auto, min, max")
    if mode != "auto":
        return cast(Literal["min", "max"], mode)
    return "max" if any(word in monitor for word in _MAX_WORDS) else "min"


def _has_epochs(result: Any) -> bool:
    return getattr(result, "epoch", None) is not None


def _default_metric(result: Any) -> str:
    logs = getattr(result, "logs", None)
    if isinstance(logs, dict) and getattr(result, "has_validation", False):
        return "val_loss"
    return "loss"


class MetricWatch:
    """Best-so-far bookkeeping for a watched metric (shared by the plateau callbacks):
    which metric, whether lower or higher is better, per step or per epoch, the best value
    and the checks since it improved."""

    def __init__(self, monitor: str | None, mode: str, min_delta: float, interval: str | None):
        self.monitor = monitor
        self.mode_arg = mode
        self.min_delta = check_non_negative("min_delta", min_delta)
        if interval not in (None, "epoch", "step"):
            raise ValueError(f"unknown interval {interval!r}; valid choices: None, epoch, step")
        self.interval_arg = interval
        self.reset()

    def reset(self) -> None:
        self.name: str | None = self.monitor
        self.mode: Literal["min", "max"] = "min"
        self.interval = self.interval_arg or "step"
        self.best = math.inf
        self.wait = 0

    def begin(self, result: Any) -> None:
        self.reset()
        self.name = self.monitor or _default_metric(result)
        self.mode = _resolve_mode(self.mode_arg, self.name)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.interval = self.interval_arg or ("epoch" if _has_epochs(result) else "step")

    @property
    def metric(self) -> str:
        """The watched metric's name, known from :meth:`begin` on."""
        return cast(str, self.name)

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
