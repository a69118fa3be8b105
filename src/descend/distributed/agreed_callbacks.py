"""Callbacks whose stop requests all ranks follow together.

The engine stops where a callback asks to. In a data-parallel run every rank runs the
loop, and a rank that stopped alone would leave the others waiting in their next
all-reduce. :class:`AgreedCallbacks` asks each rank's callbacks, then reduces their
answer across the ranks (one all-reduce of a flag): if any rank's callbacks ask to stop,
every rank stops at the same step. The callbacks built from values every rank shares (the
all-reduced losses: early stopping, a plateau) agree anyway; the reduction makes a
callback that reads something of one rank's own (a clock, a file) safe too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from descend.callbacks import Callback, CallbackList
from descend.distributed.data_parallel import DataParallel


class AgreedCallbacks(CallbackList):
    """A :class:`~descend.callbacks.CallbackList` whose ``step`` and ``on_epoch_end``
    return the same stop decision on every rank."""

    def __init__(self, callbacks: Iterable[Callback], parallel: DataParallel) -> None:
        super().__init__(callbacks)
        self.parallel = parallel

    def __bool__(self) -> bool:
        # the loop asks only a non-empty list; every rank must ask, or the reduction hangs
        return True

    def step(self, nit: int, result: Callable[[], Any]) -> bool:
        return self.parallel.any(super().step(nit, result))

    def on_epoch_end(self, result: Any) -> bool:
        return self.parallel.any(super().on_epoch_end(result))
