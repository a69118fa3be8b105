"""A runs database that is damaged or read-only: what can be read is read, nothing is
written into a damaged file, and every refusal names the file and the way out."""

from __future__ import annotations

import os
import sqlite3
import struct
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from descend.cli import app
from descend.runs import DamagedRunWarning, RunRecord, RunStore, StoreError
from descend.runs import store as store_module

RUNS = 30
PAGE = 4096


@pytest.fixture(scope="module")
def whole(booth_run, tmp_path_factory) -> Path:
    """A database of 30 runs, large enough for the runs table to span many pages."""
    config, result = booth_run
    path = tmp_path_factory.mktemp("whole") / "runs.sqlite"
    with RunStore(path) as store:
        for _ in range(RUNS):
            store.add(RunRecord.from_result("minimize", config, result))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE
        assert conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'runs'").fetchone()
    return path


def _copy_with_garbage(whole: Path, tmp_path: Path, page: int) -> Path:
    path = tmp_path / "runs.sqlite"
    data = bytearray(whole.read_bytes())
    data[(page - 1) * PAGE : page * PAGE] = b"\xde\xad\xbe\xef" * (PAGE // 4)
    path.write_bytes(bytes(data))
    return path


def _last_leaf(whole: Path) -> int:
    """The runs table's right-most leaf (its newest rows): the root's right-most child."""
    header = whole.read_bytes()[(_root(whole, "runs") - 1) * PAGE :][:12]
    assert header[0] == 0x05, "the root is an interior table page"
    return struct.unpack(">I", header[8:12])[0]


def test_a_damaged_page_skips_its_runs_and_lists_the_rest(whole, tmp_path) -> None:
    path = _copy_with_garbage(whole, tmp_path, _last_leaf(whole))
    with RunStore(path, create=False) as store, pytest.warns(DamagedRunWarning) as caught:
        infos = store.list()
    damaged = set(range(1, RUNS + 1)) - {info.id for info in infos}
    assert infos and damaged and max(damaged) == RUNS  # the newest rows lived on that page
    message = str(caught[0].message)
    assert str(path) in message and f"{RUNS}" in message and ".recover" in message
    with RunStore(path, create=False) as store:
        with pytest.raises(StoreError, match=f"run {RUNS} in .* is damaged"):
            store.get(RUNS)
        assert store.get(infos[0].id).nit == infos[0].nit  # the others read whole
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DamagedRunWarning)
            assert [i.id for i in store.list(limit=2)] == sorted(i.id for i in infos)[-2:]


def _root(whole: Path, name: str) -> int:
    with sqlite3.connect(whole) as conn:
        query = "SELECT rootpage FROM sqlite_master WHERE name = ?"
        return conn.execute(query, (name,)).fetchone()[0]


@pytest.mark.parametrize("damaged", ["table root", "index"])
def test_nothing_is_written_into_a_damaged_file(whole, booth_run, tmp_path, damaged) -> None:
    """Damage that a write would not notice: the last cell of the runs table's root (an
    interior page keeps its cells at its end), or an index's page (which reading the run
    list never meets)."""
    config, result = booth_run
    path = tmp_path / "runs.sqlite"
    data = bytearray(whole.read_bytes())
    if damaged == "table root":
        end = _root(whole, "runs") * PAGE
        data[end - 6 : end] = b"\x7f\xff\xff\xff\xff\xff"
        path.write_bytes(bytes(data))
    else:
        path = _copy_with_garbage(whole, tmp_path, _root(whole, "runs_by_kind"))
    before = path.read_bytes()
    with RunStore(path, create=False) as store:
        with warnings.catch_warnings():  # the root's damage may hide some runs: skipped
            warnings.simplefilter("ignore", DamagedRunWarning)
            listed = len(store.list())
        assert listed == RUNS if damaged == "index" else 0 < listed <= RUNS
        with pytest.raises(StoreError, match="is damaged .* nothing was written"):
            store.add(RunRecord.from_result("minimize", config, result))
    assert path.read_bytes() == before


def test_a_read_only_database_is_read_and_never_written(
    whole, booth_run, tmp_path, monkeypatch
) -> None:
    config, result = booth_run
    path = tmp_path / "runs.sqlite"
    path.write_bytes(whole.read_bytes())
    before = path.read_bytes()
    real_access = os.access
    # root writes anywhere: the file says it is not writable, as chmod 444 does for a user
    monkeypatch.setattr(
        store_module.os,
        "access",
        lambda p, mode: not (mode & os.W_OK and Path(p) == path) and real_access(p, mode),
    )
    with RunStore(path) as store:
        assert store.read_only and len(store.list()) == RUNS
        assert store.get(1).nit == result.nit
        with pytest.raises(StoreError, match="read-only"):
            store.add(RunRecord.from_result("minimize", config, result))
    listed = CliRunner().invoke(app, ["runs", "list", "--db", str(path)])
    assert listed.exit_code == 0 and f" {RUNS} " in listed.stdout
    refused = CliRunner().invoke(app, ["minimize", "booth", "--max-iter", "3", "--db", str(path)])
    assert refused.exit_code == 2 and "read-only" in refused.stderr
    assert refused.stdout == ""  # stopped before it ran
    assert path.read_bytes() == before
