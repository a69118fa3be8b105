"""Checkpoint files of ``fit``: what they hold, how they are written and read back.

A checkpoint is the state of a run between two steps, a dict written by ``torch.save``:

* ``model``, ``optimizer``, ``schedule``: their ``state_dict()``;
* ``rng``: the shuffling generator's state now and at the start of the epoch (the epoch's
  order is replayed from it), and the global CPU/CUDA RNG states (dropout);
* ``position``: steps taken, epochs completed, batches done in the current epoch;
* ``sums``: the running epoch loss and the divergence and stopping bookkeeping;
* ``best``: the best epoch's weights (returned if the run later diverges);
* ``history``, ``epoch_history``, ``counts`` (evaluations) and ``callbacks`` (each
  callback's ``state_dict()``, in order);
* ``config``: seed, batch size, shuffle, rows, method and parameter shapes, checked on
  resume so a checkpoint is not silently applied to a different run.

Writes are atomic (:func:`descend.callbacks.save_atomic`: temporary file, fsync,
``os.replace``), so a run killed at any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from descend.callbacks import save_atomic

FORMAT = "descend.fit/1"

__all__ = ["FORMAT", "check_compatible", "load_checkpoint", "save_atomic"]


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by ``fit`` (tensors land on the CPU)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"resume: no checkpoint at {path!r}")
    if os.path.isdir(path):
        raise ValueError(f"resume: {path!r} is a folder; give the checkpoint file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's unpickler names its own internals, not the file
        raise ValueError(
            f"resume: {path!r} is not a descend.fit checkpoint (format {FORMAT}): it could "
            f"not be read ({type(exc).__name__})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not a descend.fit checkpoint (format {FORMAT})")
    return state


def check_compatible(state: dict[str, Any], config: dict[str, Any]) -> None:
    """Refuse a checkpoint saved by a run set up differently (the names differ)."""
    saved = state["config"]
    for key, value in config.items():
        old = saved.get(key)
        if key == "params":
            old = [tuple(s) for s in old]
        if old != value:
            raise ValueError(
                f"the checkpoint was saved with {key}={old!r}, this run has {key}={value!r}; "
                "resume with the same model, data and arguments"
            )
