"""Reruns reproduce the recorded numbers bit for bit, or name the first difference."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from descend.runs import RunRecord, compare_records, load, minimize_runner, record_run, rerun


def test_a_recorded_minimize_run_reruns_identically(booth_run, db) -> None:
    config, result = booth_run
    run_id = record_run("minimize", config, result)
    outcome = rerun(run_id)
    assert outcome.identical and outcome.difference is None
    assert {"fun", "nit", "history.f", "history.x", "result.x"} <= set(outcome.compared)
    assert "history.time" not in outcome.compared  # the clock is not a number to reproduce
    assert str(outcome).startswith("identical")


def test_tuple_options_come_back_as_tuples(db) -> None:
    config = {
        "problem": "beale",
        "x0": [1.0, 1.0],
        "method": "adam",
        "options": {"lr": 0.01, "betas": (0.8, 0.99)},
        "settings": {"max_iter": 15},
    }
    result = minimize_runner(config)
    assert rerun(record_run("minimize", config, result)).identical


def _tampered(entry: RunRecord, key: str, index, value) -> RunRecord:
    arrays = {k: v.copy() for k, v in entry.arrays.items()}
    arrays[key][index] = value
    return dataclasses.replace(entry, arrays=arrays)


def test_the_first_difference_is_named(booth_run) -> None:
    config, result = booth_run
    entry = RunRecord.from_result("minimize", config, result)
    f = entry.arrays["history::f"]
    changed = _tampered(entry, "history::f", 12, np.nextafter(f[12], np.inf))
    difference, _ = compare_records(changed, entry)
    assert difference.startswith("history column 'f' differs first at row 12: recorded ")
    summary = dict(entry.summary, fun=entry.fun * (1 + 1e-16) + 1e-300, nit=entry.nit + 1)
    difference, _ = compare_records(dataclasses.replace(entry, summary=summary), entry)
    assert difference == f"iterations: recorded {entry.nit + 1}, now {entry.nit}"
    moved = _tampered(entry, "result::x", 1, 0.0)
    difference, _ = compare_records(moved, entry)
    assert difference.startswith("final x differs first at index 1")


def test_time_differences_do_not_count(booth_run) -> None:
    config, result = booth_run
    entry = RunRecord.from_result("minimize", config, result)
    slower = _tampered(entry, "history::time", slice(None), 1e9)
    assert compare_records(slower, entry)[0] is None


def test_shorter_history_is_reported(booth_run) -> None:
    config, result = booth_run
    entry = RunRecord.from_result("minimize", config, result)
    arrays = {k: (v[:-2] if k.startswith("history::") else v) for k, v in entry.arrays.items()}
    difference, _ = compare_records(dataclasses.replace(entry, arrays=arrays), entry)
    assert "recorded 39 rows, now 41" in difference


def test_a_changed_environment_that_changes_numbers_is_caught(booth_run, db) -> None:
    config, result = booth_run
    other = dict(config, options={"lr": 0.021})
    run_id = record_run("minimize", other, result)  # recorded with lr 0.02's numbers
    outcome = rerun(run_id)
    assert not outcome.identical
    assert outcome.difference.startswith(("final f", "history column", "final gradient"))


@pytest.mark.parametrize(
    ("kind", "config", "runner", "match"),
    [
        ("minimize", {"method": "gd"}, None, "its configuration lacks problem, x0"),
        ("tune", {}, None, "of kind 'tune', which has no runner"),
        ("fit", {}, "os:system", "outside the descend package"),
        ("fit", {}, "descend.nothing:here", "needs the runner 'descend.nothing:here'"),
    ],
)
def test_runs_that_cannot_be_rerun_say_why(booth_run, db, kind, config, runner, match) -> None:
    _, result = booth_run
    run_id = record_run(kind, config, result, runner=runner)
    with pytest.raises(ValueError, match=match):
        rerun(run_id)


def test_a_named_runner_in_descend_is_used(booth_run, db) -> None:
    config, result = booth_run
    run_id = record_run("custom", config, result, runner="descend.runs.rerun:minimize_runner")
    assert load(run_id).runner == "descend.runs.rerun:minimize_runner"
    assert rerun(run_id).identical


def test_fit_runs_recorded_under_the_runner_name_of_earlier_versions_still_rerun(
    booth_run,
) -> None:
    from descend.runs.rerun import RUNNERS, fit_table_runner, resolve_runner

    config, result = booth_run
    for name in ("descend.tabular:rerun_fit", "descend.cli.fit:rerun_fit"):
        entry = RunRecord.from_result("fit", config, result, runner=name)
        assert resolve_runner(entry) is fit_table_runner is RUNNERS[name]
