"""Run records: every run a user asks to keep, in an embedded SQLite database.

A record holds the run's full configuration, its seed, where it ran (descend, torch,
NumPy and Python versions, the platform), its histories, its diagnoses and its final
result. Every ``descend`` command run (``minimize``, ``compare``, ``fit``) is recorded;
library runs are recorded when asked:

    >>> res = descend.minimize(rosenbrock, [-1.2, 1.0], "adam", lr=0.01, max_iter=200)
    >>> run_id = descend.runs.record(res, {"problem": "rosenbrock", "x0": [-1.2, 1.0],
    ...                                    "method": "adam", "options": {"lr": 0.01},
    ...                                    "settings": {"max_iter": 200}})
    >>> descend.runs.rerun(run_id).identical
    True

The database is ``$DESCEND_HOME/runs.sqlite``, else ``runs.sqlite`` in the user's data
folder (``~/.local/share/descend`` on Linux); every function takes ``db=`` to use another.
On the command line: ``descend runs list | show | compare | rerun | export | delete`` and
``descend report ID --html page.html``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from descend.runs.record import RunRecord, environment
from descend.runs.rerun import Reproduction, compare_records, minimize_runner, resolve_runner
from descend.runs.store import (
    SCHEMA_VERSION,
    DamagedRunWarning,
    RunInfo,
    RunStore,
    StoreError,
    UnknownRun,
    default_path,
)

__all__ = [
    "SCHEMA_VERSION",
    "DamagedRunWarning",
    "Reproduction",
    "RunInfo",
    "RunRecord",
    "RunStore",
    "StoreError",
    "UnknownRun",
    "compare_records",
    "default_path",
    "environment",
    "load",
    "minimize_runner",
    "record",
    "record_run",
    "rerun",
]

Db = str | os.PathLike[str] | None


def record_run(
    kind: str,
    config: Mapping[str, Any],
    result: Any,
    *,
    seed: int | None = None,
    db: Db = None,
    label: str | None = None,
    group: str | None = None,
    runner: str | None = None,
) -> int:
    """Record one run in the database; returns its id. The one call a command makes.

    Args:
        kind: what made the run: ``"minimize"``, ``"compare"``, ``"fit"``, ...
        config: everything needed to run it again, as JSON values (numbers, strings,
            lists, dicts). ``minimize`` runs: ``problem, x0, method, options, settings``
            (see :func:`descend.runs.rerun.minimize_runner`).
        result: the ``OptimizeResult`` or ``FitResult``.
        seed: the run's seed (default: ``result.seed`` when it has one).
        db: the database file; None: ``$DESCEND_HOME/runs.sqlite`` or the user data folder.
        label: a short name for tables (default: the method).
        group: a name shared by runs recorded together (one race).
        runner: the name of the function that reruns ``config`` (a key of
            :data:`descend.runs.rerun.RUNNERS`, ``"module:function"``), for
            ``descend runs rerun``; default: the built-in runner of ``kind``
            (``minimize`` and ``compare`` have one).

    Example:
        >>> config = {"problem": "booth", "x0": [0.0, 0.0], "method": "bfgs"}
        >>> res = descend.minimize(descend.problems.booth, config["x0"], "bfgs")
        >>> run_id = record_run("minimize", config, res, db="runs.sqlite")
        >>> load(run_id, db="runs.sqlite").fun == res.fun
        True

        A ``fit`` run names the function that reruns its config, such as
        ``runner="descend.tabular:rerun_fit"``.
    """
    entry = RunRecord.from_result(
        kind, config, result, seed=seed, label=label, group=group, runner=runner
    )
    with RunStore(db) as store:
        return store.add(entry)


def record(
    result: Any,
    config: Mapping[str, Any] | None = None,
    *,
    db: Db = None,
    label: str | None = None,
    group: str | None = None,
) -> int:
    """Record a library run (``minimize`` or ``fit``); returns its id.

    Args:
        result: what ``descend.minimize`` or ``descend.fit`` returned.
        config: how it was run, as JSON values. A ``minimize`` run whose config names a
            registered ``problem``, ``x0``, ``method`` and ``options`` can be rerun.
        db, label, group: as for :func:`record_run`.

    Example:
        >>> res = descend.minimize(descend.problems.beale, [1, 1], "bfgs")
        >>> run_id = descend.runs.record(res, {"problem": "beale", "x0": [1, 1], "method": "bfgs"})
        >>> descend.runs.load(run_id).method
        'bfgs'
    """
    from descend.train.result import FitResult

    kind = "fit" if isinstance(result, FitResult) else "minimize"
    return record_run(kind, config or {}, result, db=db, label=label, group=group)


def load(run_id: int, *, db: Db = None) -> RunRecord:
    """The recorded run ``run_id``.

    Example:
        >>> res = descend.minimize(rosenbrock, [-1.2, 1.0], "bfgs")
        >>> run_id = descend.runs.record(res, db="runs.sqlite")
        >>> f = descend.runs.load(run_id, db="runs.sqlite").history["f"]  # f per iteration
        >>> round(float(f[0]), 9)  # f(-1.2, 1) = 4.84 + 19.36
        24.2
    """
    with RunStore(db, create=False) as store:
        return store.get(run_id)


def rerun(run: int | RunRecord, *, db: Db = None) -> Reproduction:
    """Run a recorded configuration again and compare the numbers bit for bit.

    The final f, gradient norm, x (or the model's parameters), the counts and every
    history column but the clock must be identical; on the same machine and versions they
    are. The new run is not recorded.

    Args:
        run: a run id, or a :class:`RunRecord`.
        db: the database holding ``run`` (when an id).

    Returns:
        :class:`Reproduction`: ``identical``, ``difference`` (the first one, in words).

    Example:
        >>> config = {"problem": "booth", "x0": [0.0, 0.0], "method": "gd",
        ...           "options": {"lr": 0.05}, "settings": {"max_iter": 50}}
        >>> res = descend.runs.minimize_runner(config)
        >>> run_id = descend.runs.record(res, config, db="runs.sqlite")
        >>> rep = descend.runs.rerun(run_id, db="runs.sqlite")
        >>> rep.identical, rep.difference
        (True, None)
    """
    original = run if isinstance(run, RunRecord) else load(run, db=db)
    runner = resolve_runner(original)
    result = runner(original.config)
    fresh = RunRecord.from_result(
        original.kind,
        original.config,
        result,
        seed=original.seed,
        label=original.label,
        runner=original.runner,
    )
    difference, compared = compare_records(original, fresh)
    return Reproduction(original=original, rerun=fresh, difference=difference, compared=compared)
