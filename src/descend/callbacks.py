"""The callback contract shared by every descent run (``minimize`` now, ``fit`` too).

A callback sees the run's intermediate result at its start, after every step and at
its end, and stops the run by returning ``True`` from ``on_step`` (or raising
``StopIteration``, as SciPy's callbacks may).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


class Callback:
    """Base class: override the hooks you need."""

    def on_begin(self, result: Any) -> None:
        """Called once, before the first step, with the result at the start."""

    def on_step(self, result: Any) -> bool | None:
        """Called after every step with the intermediate result; return True to stop."""
        return None

    def on_end(self, result: Any) -> None:
        """Called once with the final result."""


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
