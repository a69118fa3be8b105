"""The SQLite store: round trips, where the file lives, broken files, concurrent writers."""

from __future__ import annotations

import multiprocessing
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

from descend.runs import RunRecord, RunStore, StoreError, UnknownRun, default_path, record_run
from descend.runs.store import APPLICATION_ID, SCHEMA_VERSION


def _record(result, config, **kw) -> RunRecord:
    return RunRecord.from_result("minimize", config, result, **kw)


def test_add_get_round_trip_is_exact(db, booth_run) -> None:
    config, result = booth_run
    with RunStore() as store:
        run_id = store.add(_record(result, config))
        back = store.get(run_id)
    assert store.path == db and db.exists()
    assert back.id == run_id and back.created
    assert back.config == config
    assert back.fun == result.fun and back.nit == result.nit
    assert back.status is result.status
    np.testing.assert_array_equal(back.x, result.x)
    history = result.history.as_dict()
    for column, values in history.items():
        stored = back.history.as_dict()[column]
        assert stored.dtype == values.dtype
        assert stored.tobytes() == values.tobytes(), column
    assert back.environment["torch"] and back.environment["python"]


def test_list_orders_filters_and_limits(db, booth_run) -> None:
    config, result = booth_run
    ids = [record_run("minimize", config, result) for _ in range(3)]
    ids.append(record_run("compare", config, result, group="race-1", label="momentum"))
    with RunStore() as store:
        assert [i.id for i in store.list()] == ids
        assert [i.id for i in store.list(kind="compare")] == ids[3:]
        assert [i.id for i in store.list(group="race-1")] == ids[3:]
        assert [i.id for i in store.list(limit=2)] == ids[2:]
        info = store.list()[0]
        assert (info.kind, info.problem, info.method, info.status) == (
            "minimize",
            "booth",
            "momentum",
            result.status.value,
        )
        assert info.fun == result.fun and info.nit == result.nit
        assert len(store) == 4
        with pytest.raises(ValueError, match="limit must be an integer >= 1 or None, got 0"):
            store.list(limit=0)


def test_delete_and_unknown_ids(db, booth_run) -> None:
    config, result = booth_run
    first = record_run("minimize", config, result)
    second = record_run("minimize", config, result)
    with RunStore() as store:
        store.delete(first)
        assert store.ids() == [second]
        with pytest.raises(UnknownRun, match=rf"no run with id {first} in .*runs {second} to"):
            store.get(first)
        with pytest.raises(UnknownRun, match="no run with id 99"):
            store.delete(99)
        with pytest.raises(ValueError, match="run id must be an integer >= 1, got 0"):
            store.get(0)


def test_reading_a_missing_file_creates_nothing(tmp_path) -> None:
    path = tmp_path / "none" / "runs.sqlite"
    with RunStore(path, create=False) as store:
        assert store.list() == [] and len(store) == 0
        with pytest.raises(UnknownRun, match="it holds no runs yet"):
            store.get(1)
    assert not path.exists() and not path.parent.exists()


def test_default_path_follows_descend_home_then_xdg_then_home(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DESCEND_HOME", str(tmp_path / "dh"))
    assert default_path() == tmp_path / "dh" / "runs.sqlite"
    monkeypatch.delenv("DESCEND_HOME")
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
        assert default_path() == tmp_path / "xdg" / "descend" / "runs.sqlite"
        monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        assert default_path() == tmp_path / "home" / ".local/share/descend/runs.sqlite"


def test_a_corrupt_file_is_refused_and_left_alone(tmp_path) -> None:
    path = tmp_path / "runs.sqlite"
    garbage = b"this is not an SQLite database " * 200
    path.write_bytes(garbage)
    with pytest.raises(StoreError) as info:
        RunStore(path)
    message = str(info.value)
    assert str(path) in message and "corrupt or not a database" in message
    assert "Move it aside" in message and "--db PATH" in message
    assert path.read_bytes() == garbage  # never reset


def test_a_newer_schema_is_refused(tmp_path, booth_run) -> None:
    path = tmp_path / "runs.sqlite"
    config, result = booth_run
    record_run("minimize", config, result, db=path)
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(
        StoreError,
        match=rf"{path}.*newer descend \(schema version 2; this descend reads up to 1\): upgrade",
    ):
        RunStore(path)
    with sqlite3.connect(path) as conn:  # untouched: the run is still there
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1


def test_another_programs_database_is_refused(tmp_path) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE songs (title TEXT)")
    with pytest.raises(StoreError, match=r"another program \(tables: songs\)"):
        RunStore(path)
    path2 = tmp_path / "other2.sqlite"
    with sqlite3.connect(path2) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("PRAGMA user_version = 1")
    with pytest.raises(StoreError, match="application id 0x0"):
        RunStore(path2)


def test_a_folder_is_not_a_database(tmp_path) -> None:
    with pytest.raises(StoreError, match="is a folder; give a file path"):
        RunStore(tmp_path)


def test_the_file_is_marked_and_in_wal_mode(tmp_path, booth_run) -> None:
    path = tmp_path / "runs.sqlite"
    config, result = booth_run
    record_run("minimize", config, result, db=path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _writer(path: str, worker: int, count: int, start, result, config) -> None:
    start.wait(timeout=60)
    for i in range(count):
        record_run("minimize", config, result, db=path, label=f"w{worker}-{i}")


def test_concurrent_writers_lose_nothing(tmp_path, booth_run) -> None:
    """4 processes x 10 records at once, into a file none of them has created yet."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    path = str(tmp_path / "shared" / "runs.sqlite")
    config, result = booth_run
    start = context.Event()
    workers = [
        context.Process(target=_writer, args=(path, w, 10, start, result, config)) for w in range(4)
    ]
    for p in workers:
        p.start()
    start.set()
    for p in workers:
        p.join(timeout=120)
    assert [p.exitcode for p in workers] == [0, 0, 0, 0]
    with RunStore(path) as store:
        labels = sorted(info.label for info in store.list())
        assert labels == sorted(f"w{w}-{i}" for w in range(4) for i in range(10))
        assert store.ids() == list(range(1, 41))
        assert store.get(40).fun == result.fun


def test_a_damaged_row_names_itself(tmp_path, booth_run) -> None:
    path = tmp_path / "runs.sqlite"
    config, result = booth_run
    run_id = record_run("minimize", config, result, db=path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE runs SET arrays = ? WHERE id = ?", (b"not npz", run_id))
    with (
        RunStore(path) as store,
        pytest.raises(StoreError, match=rf"run {run_id} in .* is damaged"),
    ):
        store.get(run_id)


def test_paths_given_as_strings_expand_the_home(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with RunStore("~/x/runs.sqlite") as store:
        assert store.path == Path(tmp_path) / "x" / "runs.sqlite"
