"""HistoryLogger: append the run's metrics to a CSV or JSON-lines file as they come."""

from __future__ import annotations

import json
import os
from typing import Any

from descend.callbacks.base import Callback


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
