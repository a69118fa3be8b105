"""A federated run's checkpoint: what the server holds after a round, saved atomically as
plain data (``torch.load(weights_only=True)`` reads it back, running no code).

Every random choice of a round is drawn from the run's seed and the round's number, so a
run resumed from the checkpoint of round r ends bit-identical to one never stopped.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from descend.callbacks import save_atomic

__all__ = ["FORMAT", "check_config", "load_round", "save_round"]

FORMAT = "descend.federated/1"


def save_round(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` (round, config, model, server, history) to ``path`` atomically."""
    save_atomic({"format": FORMAT, **state}, path)


def load_round(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The state :func:`save_round` wrote; a file of another kind is a ValueError."""
    try:
        state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"resume: no checkpoint at {os.fspath(path)!r}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(
            f"resume: {os.fspath(path)!r} is not a federated checkpoint ({FORMAT}); "
            "descend.fit checkpoints resume with descend.fit"
        )
    return state


def check_config(saved: dict[str, Any], config: dict[str, Any]) -> None:
    """Refuse to resume a run whose settings differ from the checkpoint's, naming them."""
    differ = [k for k in config if saved.get(k) != config[k]]
    if differ:
        shown = ", ".join(f"{k}={saved.get(k)!r} (now {config[k]!r})" for k in differ)
        raise ValueError(
            f"resume: the checkpoint was saved by a run with {shown}; resume with the same settings"
        )
