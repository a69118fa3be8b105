"""Rerunning a recorded run and telling whether it reproduced the recorded numbers exactly."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from descend.runs.record import RunRecord
from descend.tabular import rerun_fit

__all__ = [
    "RUNNERS",
    "Reproduction",
    "compare_records",
    "fit_table_runner",
    "minimize_runner",
    "resolve_runner",
]

#: columns that measure the clock, not the computation: never compared
TIMING_COLUMNS = frozenset({"time"})
_SUMMARY_FIELDS = ("status", "nit", "nfev", "njev", "nhev", "epoch", "fun", "grad_norm")


def minimize_runner(config: Mapping[str, Any]) -> Any:
    """Run ``descend.minimize`` from a recorded configuration.

    ``config`` holds ``problem`` (a registered problem's name, e.g. ``"rosenbrock-10d"``),
    ``x0``, ``method``, ``options`` (the optimizer's: ``lr``, ``momentum``, ...) and
    ``settings`` (``minimize``'s other keywords: ``max_iter``, ``gtol``, ``record``, ...).

    Example:
        >>> minimize_runner({"problem": "booth", "x0": [0, 0], "method": "gd",
        ...                  "options": {"lr": 0.05}, "settings": {"max_iter": 50}})
    """
    from descend.minimize import minimize
    from descend.problems import get_problem

    missing = [k for k in ("problem", "x0", "method") if k not in config]
    if missing:
        raise ValueError(
            f"this run cannot be rerun: its configuration lacks {', '.join(missing)} (runs "
            "of a Python function are recorded, not rerunnable; record a registered "
            "problem's name as config['problem'] to make them so)"
        )
    options = {k: _tuples(v) for k, v in dict(config.get("options") or {}).items()}
    settings = dict(config.get("settings") or {})
    return minimize(
        get_problem(str(config["problem"])),
        list(config["x0"]),
        str(config["method"]),
        **settings,
        **options,
    )


def _tuples(value: Any) -> Any:
    # JSON has no tuples; optimizer options given as tuples (betas) come back as lists
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def fit_table_runner(config: Mapping[str, Any]) -> Any:
    """Run ``descend fit`` (an estimator on a CSV table) from a recorded configuration:
    :func:`descend.tabular.rerun_fit`, the same function the command trains with."""
    return rerun_fit(dict(config))


#: the built-in runner of each kind of run, for records that name none
_BUILT_IN: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "minimize": minimize_runner,
    "compare": minimize_runner,
}

#: the runners a record may name (``record.runner``, ``"module:function"``), imported here
#: directly: rerunning never loads a module by a name read from a database
RUNNERS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "descend.runs.rerun:minimize_runner": minimize_runner,
    "descend.tabular:rerun_fit": fit_table_runner,
    # the name ``descend fit`` recorded before its runner moved below the command line
    "descend.cli.fit:rerun_fit": fit_table_runner,
}


def resolve_runner(record: RunRecord) -> Callable[[Mapping[str, Any]], Any]:
    """The function that reruns ``record``: the one its ``runner`` names (a key of
    :data:`RUNNERS`), else the built-in one for its kind."""
    if record.runner:
        module_name = record.runner.partition(":")[0]
        if module_name != "descend" and not module_name.startswith("descend."):
            raise ValueError(
                f"run {record.id} names the runner {record.runner!r}, outside the descend "
                "package; only descend's own runners rerun a recorded run"
            )
        if record.runner not in RUNNERS:
            raise ValueError(
                f"run {record.id} needs the runner {record.runner!r}, which this descend "
                f"does not have (it has {', '.join(sorted(RUNNERS))}); rerun it with the "
                f"descend version that recorded it "
                f"({record.environment.get('descend', 'unknown')})"
            )
        return RUNNERS[record.runner]
    if record.kind in _BUILT_IN:
        return _BUILT_IN[record.kind]
    raise ValueError(
        f"run {record.id} is of kind {record.kind!r}, which has no runner to rerun it; "
        f"runs of kinds {', '.join(sorted(_BUILT_IN))} (or with a runner) can be rerun"
    )


@dataclass(frozen=True)
class Reproduction:
    """The outcome of a rerun.

    Attributes:
        original: the recorded run.
        rerun: the new run's record (not stored).
        difference: the first difference found, in words; None when identical.
        compared: what was compared (for the report).
    """

    original: RunRecord
    rerun: RunRecord
    difference: str | None
    compared: tuple[str, ...]

    @property
    def identical(self) -> bool:
        return self.difference is None

    def __str__(self) -> str:
        if self.identical:
            return f"identical: {', '.join(self.compared)}"
        return f"different: {self.difference}"


def compare_records(original: RunRecord, rerun: RunRecord) -> tuple[str | None, tuple[str, ...]]:
    """The first difference between two runs' numbers (bit for bit), and what was compared.

    Compared in order: the status and the counts, the final f and gradient norm, the
    final x (or the model's parameters), then every recorded history column but the
    clock (``time``), row by row.
    """
    compared: list[str] = []
    for name in _SUMMARY_FIELDS:
        if name not in original.summary and name not in rerun.summary:
            continue
        a, b = original.summary.get(name), rerun.summary.get(name)
        compared.append(name)
        if not _same_scalar(a, b):
            return f"{_title(name)}: recorded {_show(a)}, now {_show(b)}", tuple(compared)
    for key in sorted(set(original.arrays) | set(rerun.arrays)):
        table, _, column = key.partition("::")
        if column in TIMING_COLUMNS:
            continue
        compared.append(key.replace("::", "."))
        if key not in original.arrays or key not in rerun.arrays:
            side = "the recorded run" if key not in original.arrays else "the rerun"
            return f"{key.replace('::', '.')} is missing from {side}", tuple(compared)
        difference = _array_difference(table, column, original.arrays[key], rerun.arrays[key])
        if difference:
            return difference, tuple(compared)
    digest = "parameters_sha256"
    if digest in original.summary or digest in rerun.summary:
        compared.append("parameter digest")
        if original.summary.get(digest) != rerun.summary.get(digest):
            return "the final model parameters differ (SHA-256 of their bytes)", tuple(compared)
    return None, tuple(compared)


def _array_difference(table: str, column: str, a: np.ndarray, b: np.ndarray) -> str | None:
    if table == "parameters":
        where = f"parameter {column!r}"
    elif (table, column) == ("result", "x"):
        where = "final x"
    else:
        where = f"{table} column {column!r}"
    if a.dtype != b.dtype:
        return f"{where}: recorded dtype {a.dtype}, now {b.dtype}"
    rows = table.endswith("history")
    if not rows:
        a, b = a.reshape(-1), b.reshape(-1)
    if a.shape[1:] != b.shape[1:] or (not rows and a.shape != b.shape):
        return f"{where}: recorded shape {a.shape}, now {b.shape}"
    n = min(len(a), len(b))
    unequal = _unequal(a[:n], b[:n])
    if unequal.any():
        first = int(np.flatnonzero(unequal)[0])
        at = "row" if rows else "index"
        return (
            f"{where} differs first at {at} {first}: recorded {_show(a[first])}, "
            f"now {_show(b[first])}"
        )
    if len(a) != len(b):
        return f"{where}: recorded {len(a)} rows, now {len(b)} (equal in the first {n})"
    return None


def _unequal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per leading index: do the elements differ in any bit (NaN equals the same NaN)?"""
    if len(a) == 0:
        return np.zeros(0, dtype=bool)
    left = np.ascontiguousarray(a).view(np.uint8).reshape(len(a), -1)
    right = np.ascontiguousarray(b).view(np.uint8).reshape(len(b), -1)
    return (left != right).any(axis=1)


def _same_scalar(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        # a NaN went through JSON as NaN: its payload is not kept, so NaN equals NaN
        return (math.isnan(a) and math.isnan(b)) or (
            np.float64(a).tobytes() == np.float64(b).tobytes()
        )
    return a == b


def _show(value: Any) -> str:
    if isinstance(value, np.ndarray):
        if value.size > 6:
            return np.array2string(value, precision=17, threshold=6)
        return np.array2string(value, precision=17)
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return repr(value.item() if isinstance(value, np.generic) else value)


def _title(name: str) -> str:
    return {"fun": "final f", "grad_norm": "final gradient norm", "nit": "iterations"}.get(
        name, name
    )
