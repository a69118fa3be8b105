"""Checkpoint: save the run's full state every N steps or epochs, atomically."""

from __future__ import annotations

import os
from typing import Any

import torch

from descend.callbacks.base import Callback
from descend.validation import check_int


def save_atomic(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to ``path`` so that a reader never sees a half-written file.

    Writes a temporary file in the same folder, flushes it to disk, then renames it over
    ``path`` (``os.replace`` is atomic on POSIX and Windows): a crash at any moment leaves
    either the old checkpoint or the new one.
    """
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
        >>> fit(model, "mse", (X, y), epochs=2, checkpoint=Checkpoint("run.pt", every_steps=2))
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        every_steps: int | None = None,
        every_epochs: int | None = 1,
        save_last: bool = True,
    ) -> None:
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
