"""What a run record holds: the configuration, the environment, the result, the
histories and the diagnoses of one run, in a form that survives a database round trip
bit for bit.

A record is built from a result (:meth:`RunRecord.from_result`) and reads like one:
``record.history`` is a :class:`descend.History`, ``record.status`` a
:class:`descend.Status`, ``record.fun``, ``record.nit``, ``record.x`` are the result's, so
``descend.viz`` draws records as it draws results.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import hashlib
import io
import json
import math
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import numpy as np

from descend.result import History, Status
from descend.version import __version__

__all__ = ["RunRecord", "config_json", "environment", "strict_json"]

#: the parameters of a fitted model are kept in full up to this many numbers (beyond it,
#: only their SHA-256 digest, which still tells whether a rerun ended bit-identical)
MAX_STORED_PARAMETERS = 1_000_000
_SEP = "::"


def environment() -> dict[str, Any]:
    """Where a run ran: package versions, Python, the platform, torch's thread count."""
    import torch

    env: dict[str, Any] = {
        "descend": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda,
    }
    if torch.cuda.is_available():  # pragma: no cover - depends on the machine
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def config_json(config: Mapping[str, Any]) -> str:
    """``config`` as JSON: numbers, strings, booleans, None, lists and dicts (tuples,
    NumPy scalars and arrays, tensors, paths and enums are converted); anything else is
    refused with the key that holds it."""
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    return json.dumps(_plain(config, "config"), sort_keys=False)


def _plain(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, enum.Enum):
        return _plain(value.value, where)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, PurePath):
        return str(value)
    if hasattr(value, "detach") and hasattr(value, "tolist"):
        return value.detach().cpu().tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} has a key {k!r} that is not a string")
            out[k] = _plain(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, list | tuple):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(
        f"{where} is a {type(value).__name__}, which a run record cannot keep; give numbers, "
        "strings, booleans, None, lists or dicts (name a function or a model by a string)"
    )


@dataclass
class RunRecord:
    """One recorded run.

    Attributes:
        kind: what made it: ``"minimize"``, ``"compare"`` (one method of a race), ``"fit"``,
            or another runner's name.
        config: everything needed to run it again (JSON values).
        summary: the final result: ``method, status, message, fun, grad_norm, nit, nfev,
            njev, nhev, time`` and, for ``fit``, ``epoch, seed, logs, parameters_sha256``.
        arrays: the histories and the final point, by ``"<table>::<column>"``:
            ``history::f``, ``history::x``, ``epoch_history::val_loss``, ``result::x``,
            ``parameters::<name>``.
        diagnoses: what the health monitors found, each a dict of a
            :class:`descend.diagnostics.Diagnosis`'s fields.
        seed: the run's seed, when it had one.
        environment: :func:`environment` where it ran.
        label: a short name for tables and legends (default: the method).
        group: runs recorded together (one ``descend compare``) share it.
        runner: ``"module:function"`` that reruns ``config`` (None: the built-in one for
            ``kind``).
        id, created: set by the store (``created``: UTC, ISO 8601).
    """

    kind: str
    config: dict[str, Any]
    summary: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    diagnoses: list[dict[str, Any]] = field(default_factory=list, repr=False)
    seed: int | None = None
    environment: dict[str, Any] = field(default_factory=dict, repr=False)
    label: str = ""
    group: str | None = None
    runner: str | None = None
    id: int | None = None
    created: str = ""

    # -- building --------------------------------------------------------------------------

    @classmethod
    def from_result(
        cls,
        kind: str,
        config: Mapping[str, Any],
        result: Any,
        *,
        seed: int | None = None,
        label: str | None = None,
        group: str | None = None,
        runner: str | None = None,
    ) -> RunRecord:
        """The record of ``result`` (an ``OptimizeResult``, a ``FitResult`` or any result
        with ``status``, ``fun`` and a ``history``) run from ``config``.

        Example:
            >>> res = descend.minimize(rosenbrock, [-1.2, 1.0], "adam", lr=0.01, max_iter=200)
            >>> record = RunRecord.from_result("minimize", {"problem": "rosenbrock"}, res)
            >>> record.fun == res.fun, record.nit
            (True, 200)
        """
        if not isinstance(kind, str) or not kind.strip():
            raise ValueError(f"kind must be a non-empty string, got {kind!r}")
        if runner is not None and (not isinstance(runner, str) or ":" not in runner):
            raise ValueError(f"runner must be 'module:function', got {runner!r}")
        status = getattr(result, "status", None)
        history = getattr(result, "history", None)
        if not isinstance(status, Status) or not isinstance(history, History):
            raise TypeError(
                "result must be a descend result (minimize's OptimizeResult or fit's "
                f"FitResult), got {type(result).__name__}"
            )
        plain_config: dict[str, Any] = json.loads(config_json(config))
        if seed is None:
            seed = getattr(result, "seed", None)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an integer or None, got {seed!r}")
        summary: dict[str, Any] = {
            "method": str(getattr(result, "method", "") or plain_config.get("method", "")),
            "status": status.value,
            "converged": bool(status.converged),
            "message": str(getattr(result, "message", "")),
        }
        for name in ("fun", "grad_norm", "time"):
            summary[name] = _float(getattr(result, name, math.nan))
        for name in ("nit", "nfev", "njev", "nhev", "epoch"):
            if hasattr(result, name):
                summary[name] = int(getattr(result, name))
        arrays: dict[str, np.ndarray] = {}
        for table in ("history", "epoch_history"):
            recorded = getattr(result, table, None)
            if isinstance(recorded, History):
                summary.setdefault("tables", {})[table] = {
                    "columns": list(recorded.columns),
                    "integer": list(recorded.integer),
                    "record_x": bool(recorded.record_x),
                }
                for column, values in recorded.as_dict().items():
                    arrays[f"{table}{_SEP}{column}"] = np.ascontiguousarray(values)
        x = getattr(result, "x", None)
        if x is not None:
            arrays[f"result{_SEP}x"] = _array(x)
            summary["x_kind"] = "tensor" if hasattr(x, "detach") else "array"
        model = getattr(result, "model", None)
        if model is not None and hasattr(model, "state_dict"):
            summary.update(_parameters(model, arrays))
        if hasattr(result, "logs"):
            summary["logs"] = {k: _float(v) for k, v in dict(result.logs).items()}
        return cls(
            kind=kind,
            config=plain_config,
            summary=summary,
            arrays=arrays,
            diagnoses=[_diagnosis(d) for d in getattr(result, "diagnoses", None) or []],
            seed=seed,
            environment=environment(),
            label=label or summary["method"] or kind,
            group=group,
            runner=runner,
        )

    # -- reading like a result ------------------------------------------------------------

    @property
    def status(self) -> Status:
        return Status(self.summary["status"])

    @property
    def converged(self) -> bool:
        return self.status.converged

    @property
    def method(self) -> str:
        return str(self.summary.get("method", ""))

    @property
    def message(self) -> str:
        return str(self.summary.get("message", ""))

    @property
    def fun(self) -> float:
        return float(self.summary.get("fun", math.nan))

    @property
    def grad_norm(self) -> float:
        return float(self.summary.get("grad_norm", math.nan))

    @property
    def nit(self) -> int:
        return int(self.summary.get("nit", 0))

    @property
    def nfev(self) -> int:
        return int(self.summary.get("nfev", 0))

    @property
    def njev(self) -> int:
        return int(self.summary.get("njev", 0))

    @property
    def nhev(self) -> int:
        return int(self.summary.get("nhev", 0))

    @property
    def time(self) -> float:
        return float(self.summary.get("time", math.nan))

    @property
    def x(self) -> np.ndarray | None:
        """The final point (None for a fit run)."""
        return self.arrays.get(f"result{_SEP}x")

    @property
    def problem(self) -> str | None:
        value = self.config.get("problem")
        return value if isinstance(value, str) else None

    @property
    def history(self) -> History:
        """The per-iteration (``minimize``) or per-step (``fit``) history."""
        return self.table("history")

    @property
    def epoch_history(self) -> History | None:
        """The per-epoch history of a fit run; None for other runs."""
        return self.table("epoch_history") if "epoch_history" in self.tables else None

    @property
    def tables(self) -> list[str]:
        """The names of the recorded histories (``history``, ``epoch_history``)."""
        return list(self.summary.get("tables", {}))

    def table(self, name: str) -> History:
        """The recorded history ``name`` as a :class:`descend.History`."""
        layout = self.summary.get("tables", {}).get(name)
        if layout is None:
            raise ValueError(
                f"run {self.id} has no table {name!r}; it has {', '.join(self.tables) or 'none'}"
            )
        columns = tuple(layout["columns"])
        history = History(
            record_x=bool(layout["record_x"]), columns=columns, integer=tuple(layout["integer"])
        )
        data = [self.arrays[f"{name}{_SEP}{c}"] for c in columns]
        rows = np.column_stack(data).tolist() if data and len(data[0]) else []
        xs = self.arrays.get(f"{name}{_SEP}x") if layout["record_x"] else None
        for i, row in enumerate(rows):
            history.append(tuple(row), None if xs is None else xs[i])
        return history

    def columns(self, name: str = "history") -> dict[str, np.ndarray]:
        """The arrays of history ``name`` by column (``x`` too when recorded), as stored."""
        prefix = f"{name}{_SEP}"
        return {k[len(prefix) :]: v for k, v in self.arrays.items() if k.startswith(prefix)}

    # -- storage --------------------------------------------------------------------------

    def encode_arrays(self) -> bytes:
        """The arrays as one compressed ``.npz`` blob (no pickles)."""
        buffer = io.BytesIO()
        # numpy's stub lets mypy read the arrays as its allow_pickle flag
        np.savez_compressed(buffer, **{_key(k): v for k, v in self.arrays.items()})  # type: ignore[arg-type]
        return buffer.getvalue()

    @staticmethod
    def decode_arrays(blob: bytes) -> dict[str, np.ndarray]:
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            return {_unkey(k): data[k] for k in data.files}

    def to_dict(self) -> dict[str, Any]:
        """The whole record as plain JSON values (arrays as lists; NaN and infinities as
        None, so the output is strict JSON)."""
        arrays: dict[str, Any] = {}
        for key, values in self.arrays.items():
            table, column = key.split(_SEP, 1)
            arrays.setdefault(table, {})[column] = strict_json(values.tolist())
        return {
            "id": self.id,
            "created": self.created,
            "kind": self.kind,
            "label": self.label,
            "group": self.group,
            "seed": self.seed,
            "runner": self.runner,
            "config": strict_json(self.config),
            "environment": self.environment,
            "result": strict_json({k: v for k, v in self.summary.items() if k != "tables"}),
            "diagnoses": strict_json(self.diagnoses),
            "tables": arrays,
        }

    def __repr__(self) -> str:
        return (
            f"RunRecord(id={self.id}, kind={self.kind!r}, label={self.label!r}, "
            f"status={self.summary.get('status')!r}, fun={self.fun:.6g}, nit={self.nit})"
        )


def now() -> str:
    """The current UTC time, ISO 8601 with microseconds (sorts as text)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def _key(key: str) -> str:
    # npz member names are file names: keep them free of path separators
    return key.replace("/", "%2F")


def _unkey(key: str) -> str:
    return key.replace("%2F", "/")


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _array(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        import torch

        t = x.detach().cpu()
        if t.dtype == torch.bfloat16:  # NumPy has no bfloat16; float32 holds it exactly
            t = t.float()
        return np.ascontiguousarray(t.numpy())
    return np.ascontiguousarray(np.asarray(x))


def _parameters(model: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The model's state as a digest of its exact bytes (always) and as arrays (when it
    holds at most ``MAX_STORED_PARAMETERS`` numbers)."""
    import torch

    digest = hashlib.sha256()
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    total = sum(t.numel() for t in tensors.values())
    for name, t in tensors.items():
        raw = t.view(torch.int16) if t.dtype == torch.bfloat16 else t
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(raw.numpy().tobytes())
        if total <= MAX_STORED_PARAMETERS:
            arrays[f"parameters{_SEP}{name}"] = _array(t)
    return {"parameters_sha256": digest.hexdigest(), "parameter_count": int(total)}


def _diagnosis(d: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(d) and not isinstance(d, type):
        raw = {f.name: getattr(d, f.name) for f in dataclasses.fields(d)}
    elif isinstance(d, Mapping):
        raw = dict(d)
    else:
        raw = {"kind": "note", "severity": "info", "step": 0, "message": str(d)}
    out = {}
    for k, v in raw.items():
        try:
            out[k] = _plain(v, f"diagnosis[{k!r}]")
        except TypeError:
            out[k] = str(v)
    return out


def strict_json(value: Any) -> Any:
    """``value`` (JSON values; tuples become lists) with NaN and infinities as None, so
    ``json.dumps`` writes strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    return value
