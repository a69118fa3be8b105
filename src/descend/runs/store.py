"""The run store: an embedded SQLite database of run records.

One file holds every run. Writers from several processes at once lose nothing: the
database runs in WAL mode (readers never block the writer), each connection waits up to
``BUSY_TIMEOUT`` seconds for a lock instead of failing, and every write is one short
transaction. The schema carries its version in ``PRAGMA user_version`` and its owner in
``PRAGMA application_id``: a file from a newer descend, a corrupt file, or another
program's database is refused with an error that names the file and what to do; nothing
is ever reset silently. A damaged file takes no new run (an integrity check precedes a
store's first write), but what can be read is: a listing skips the runs on damaged pages
with a :class:`DamagedRunWarning`. A file that cannot be written is opened read-only.

Where the file lives (:func:`default_path`): ``--db PATH`` (``RunStore(path)``), else
``$DESCEND_HOME/runs.sqlite``, else the user's data folder: ``$XDG_DATA_HOME/descend`` or
``~/.local/share/descend`` on Linux, ``~/Library/Application Support/descend`` on macOS,
``%LOCALAPPDATA%\\descend`` on Windows.

Example:
    >>> import descend
    >>> config = {"problem": "booth", "x0": [0.0, 0.0], "method": "bfgs"}
    >>> result = descend.minimize(descend.problems.booth, config["x0"], "bfgs")
    >>> with RunStore("runs.sqlite") as store:  # RunStore(): the default file
    ...     run_id = store.add(RunRecord.from_result("minimize", config, result))
    ...     store.get(run_id).fun == result.fun
    True
"""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from descend.runs.record import RunRecord, now

__all__ = [
    "BUSY_TIMEOUT",
    "SCHEMA_VERSION",
    "DamagedRunWarning",
    "RunInfo",
    "RunStore",
    "StoreError",
    "UnknownRun",
    "default_path",
]

#: the schema this version of descend writes and reads
SCHEMA_VERSION = 1
#: ``PRAGMA application_id`` of a descend runs database: "dscn"
APPLICATION_ID = 0x6473636E
#: seconds a connection waits for another process's lock before giving up
BUSY_TIMEOUT = 60.0
FILE_NAME = "runs.sqlite"

_SCHEMA = """
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created     TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    label       TEXT    NOT NULL,
    run_group   TEXT,
    method      TEXT,
    problem     TEXT,
    status      TEXT    NOT NULL,
    fun         REAL,
    nit         INTEGER,
    time        REAL,
    seed        INTEGER,
    runner      TEXT,
    config      TEXT    NOT NULL,
    environment TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    diagnoses   TEXT    NOT NULL,
    arrays      BLOB    NOT NULL
);
CREATE INDEX runs_by_group ON runs (run_group);
CREATE INDEX runs_by_kind ON runs (kind);
"""
_LIST_COLUMNS = "id, created, kind, label, run_group, method, problem, status, fun, nit, time"


class StoreError(RuntimeError):
    """The database file cannot be used: corrupt, another program's, from a newer
    descend, locked too long, or not writable. The message names the file and what to do."""


class DamagedRunWarning(UserWarning):
    """Runs that could not be read were left out of a listing; the message names them."""


class UnknownRun(LookupError):
    """No run with the given id in the store."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown run"


@dataclass(frozen=True)
class RunInfo:
    """A row of :meth:`RunStore.list`: what a table of runs shows, without the arrays."""

    id: int
    created: str
    kind: str
    label: str
    group: str | None
    method: str | None
    problem: str | None
    status: str
    fun: float
    nit: int | None
    time: float | None


def default_path() -> Path:
    """The database file used when none is given: ``$DESCEND_HOME/runs.sqlite``, else
    ``runs.sqlite`` in the user's data folder (see the module docstring)."""
    home = os.environ.get("DESCEND_HOME")
    if home:
        return Path(home).expanduser() / FILE_NAME
    return _data_dir() / FILE_NAME


def _data_dir() -> Path:
    if sys.platform == "win32":  # pragma: no cover - depends on the platform
        base = os.environ.get("LOCALAPPDATA") or os.environ.get("APPDATA")
        return (Path(base) if base else Path.home() / "AppData" / "Local") / "descend"
    if sys.platform == "darwin":  # pragma: no cover - depends on the platform
        return Path.home() / "Library" / "Application Support" / "descend"
    xdg = os.environ.get("XDG_DATA_HOME")
    # the XDG spec says a relative path is invalid and must be ignored
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "descend"


_HOW_TO_CHOOSE = "choose another file with --db PATH or the DESCEND_HOME environment variable"


class RunStore:
    """A SQLite file of run records: add, get, list, delete.

    Args:
        path: the database file; None: :func:`default_path`. Created (with its folder)
            on the first write.
        create: False to never create the file: reading a missing file finds no runs.

    Raises:
        StoreError: the file is corrupt, is another program's database, was written by a
            newer descend, or cannot be created.

    Example:
        >>> import descend
        >>> store = RunStore("three-runs.sqlite")
        >>> result = descend.minimize(descend.problems.booth, [0.0, 0.0], "bfgs")
        >>> for _ in range(3):
        ...     run_id = store.add(RunRecord.from_result("minimize", {}, result))
        >>> [info.id for info in store.list()]
        [1, 2, 3]
        >>> store.close()
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, create: bool = True):
        self.path = Path(os.fspath(path)).expanduser() if path is not None else default_path()
        self.create = bool(create)
        self._conn: sqlite3.Connection | None = None
        #: the file (or its folder) cannot be written: runs are read, never added or deleted
        self.read_only = False
        self._checked = False  # the file's integrity, checked once before the first write
        if self.path.exists() or self.create:
            self._open()

    # -- opening ----------------------------------------------------------------------------

    def _open(self) -> None:
        if self.path.is_dir():
            raise StoreError(
                f"the runs database {self.path} is a folder; give a file path "
                f"(e.g. {self.path / FILE_NAME}), or {_HOW_TO_CHOOSE}"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the folder of the runs database {self.path}: {exc}; "
                f"{_HOW_TO_CHOOSE}"
            ) from exc
        self.read_only = self.path.exists() and not _writable(self.path)
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot open the runs database {self.path}: {exc}; {_HOW_TO_CHOOSE}"
            ) from exc
        self._conn = conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
            self._check_or_create()
            wal = conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
            if not wal and not self.read_only:
                conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.DatabaseError as exc:
            self.close()
            raise self._error(exc) from exc
        except StoreError:
            self.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        """A connection; read-only (``mode=ro``) when the file or its folder cannot be
        written, and then ``immutable`` if even WAL's shared-memory file cannot be made."""
        options: dict[str, Any] = {
            "timeout": BUSY_TIMEOUT,
            "isolation_level": None,
            "check_same_thread": False,
        }
        if not self.read_only:
            return sqlite3.connect(self.path, **options)
        uri = self.path.resolve().as_uri()
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, **options)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            conn.close()
            conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, **options)
        return conn

    def _check_or_create(self) -> None:
        conn = self._require()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and self.read_only:
            raise StoreError(
                f"the runs database {self.path} is read-only and holds no descend runs "
                f"database; {_HOW_TO_CHOOSE}"
            )
        if version == 0:
            # a new (or empty) file: create the schema, once, even when several
            # processes open it at the same moment
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version == 0:
                    tables = conn.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table'"
                    ).fetchall()
                    if tables:
                        raise StoreError(
                            f"{self.path} is an SQLite database of another program (tables: "
                            f"{', '.join(t[0] for t in tables[:5])}), not a descend runs "
                            f"database; {_HOW_TO_CHOOSE}"
                        )
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    version = SCHEMA_VERSION
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        owner = conn.execute("PRAGMA application_id").fetchone()[0]
        if owner != APPLICATION_ID:
            raise StoreError(
                f"{self.path} is an SQLite database of another program (application id "
                f"{owner:#x}), not a descend runs database; {_HOW_TO_CHOOSE}"
            )
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the runs database {self.path} was written by a newer descend (schema "
                f"version {version}; this descend reads up to {SCHEMA_VERSION}): upgrade "
                f"descend (pip install -U descend), or {_HOW_TO_CHOOSE}"
            )

    def _error(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return StoreError(
                f"the runs database {self.path} stayed locked by another process for more "
                f"than {BUSY_TIMEOUT:g} s ({text}); try again when it finishes, or "
                f"{_HOW_TO_CHOOSE}"
            )
        if "readonly" in text or "read-only" in text or "unable to open" in text:
            return StoreError(
                f"cannot write the runs database {self.path} ({text}); check its "
                f"permissions, or {_HOW_TO_CHOOSE}"
            )
        return StoreError(
            f"the runs database {self.path} is corrupt or not a database ({text}); nothing "
            f"was changed. Move it aside (mv {self.path} {self.path}.broken) to start a new "
            f"one, try to salvage it with the sqlite3 tool's .recover, or {_HOW_TO_CHOOSE}"
        )

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the runs database {self.path} is closed")
        return self._conn

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[sqlite3.Connection | None]:
        """A short transaction (``BEGIN IMMEDIATE`` for writes: the lock is taken up front,
        so a writer waits on the busy timeout instead of failing half way). A read ends
        by rolling back: it changed nothing, and a damaged page it met leaves nothing to
        commit."""
        if self._conn is None:
            if write:
                self._open()
            else:
                yield None
                return
        conn = self._require()
        if write:
            self.check_writable()
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT" if write else "ROLLBACK")
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc

    def check_writable(self) -> None:
        """Raise :class:`StoreError` unless runs can be added: the file can be written and
        is whole (checked once, before the first write: a file damaged where a read does
        not look, a table's pages, would otherwise take new runs into broken pages)."""
        conn = self._require()
        if self.read_only:
            raise StoreError(
                f"cannot write the runs database {self.path}: it is read-only (its file or "
                f"folder permissions); runs list and show still read it. {_HOW_TO_CHOOSE}"
            )
        if self._checked:
            return
        try:
            found = [row[0] for row in conn.execute("PRAGMA quick_check(3)")]
        except sqlite3.DatabaseError as exc:
            found = [str(exc)]
        if found != ["ok"]:
            problem = " ".join(" ".join(found).split())
            raise StoreError(
                f"the runs database {self.path} is damaged ({problem}); nothing was written "
                f"to it. The runs that can still be read are listed by descend runs list. "
                f"Move it aside (mv {self.path} {self.path}.broken) to start a new one, try "
                f"to salvage it with the sqlite3 tool's .recover, or {_HOW_TO_CHOOSE}"
            )
        self._checked = True

    # -- the records --------------------------------------------------------------------------

    def add(self, record: RunRecord) -> int:
        """Store ``record``; returns its new id (also set on ``record.id``)."""
        if not isinstance(record, RunRecord):
            raise TypeError(f"record must be a RunRecord, got {type(record).__name__}")
        created = record.created or now()
        row = (
            created,
            record.kind,
            record.label,
            record.group,
            record.method or None,
            record.problem,
            record.summary["status"],
            _real(record.fun),
            record.summary.get("nit"),
            _real(record.time),
            record.seed,
            record.runner,
            json.dumps(record.config),
            json.dumps(record.environment),
            json.dumps(record.summary),
            json.dumps(record.diagnoses),
            sqlite3.Binary(record.encode_arrays()),
        )
        with self._transaction(write=True) as conn:
            assert conn is not None
            cursor = conn.execute(
                "INSERT INTO runs (created, kind, label, run_group, method, problem, status, "
                "fun, nit, time, seed, runner, config, environment, summary, diagnoses, arrays) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            run_id = int(cursor.lastrowid or 0)
        record.id, record.created = run_id, created
        return run_id

    def get(self, run_id: int) -> RunRecord:
        """The record with id ``run_id``.

        Raises:
            UnknownRun: no such run.
        """
        run_id = _check_id(run_id)
        damaged = None
        with self._transaction(write=False) as conn:
            row = None
            if conn is not None:
                try:
                    row = conn.execute(
                        "SELECT id, created, kind, label, run_group, seed, runner, config, "
                        "environment, summary, diagnoses, arrays FROM runs WHERE id = ?",
                        (run_id,),
                    ).fetchone()
                except sqlite3.DatabaseError as exc:
                    damaged = exc
        if damaged is not None:
            raise StoreError(
                f"run {run_id} in {self.path} is damaged and cannot be read ({damaged}); "
                "runs list shows the runs that can still be read"
            ) from damaged
        if row is None:
            raise UnknownRun(self._missing(run_id))
        try:
            return RunRecord(
                id=row[0],
                created=row[1],
                kind=row[2],
                label=row[3],
                group=row[4],
                seed=row[5],
                runner=row[6],
                config=json.loads(row[7]),
                environment=json.loads(row[8]),
                summary=json.loads(row[9]),
                diagnoses=json.loads(row[10]),
                arrays=RunRecord.decode_arrays(row[11]),
            )
        except (ValueError, OSError, KeyError) as exc:
            raise StoreError(
                f"run {run_id} in {self.path} is damaged and cannot be read ({exc}); the "
                f"other runs are unaffected (delete it with: descend runs delete {run_id})"
            ) from exc

    def list(
        self, *, kind: str | None = None, group: str | None = None, limit: int | None = None
    ) -> list[RunInfo]:
        """The runs, oldest first (the newest ``limit`` when given), without their arrays.

        Args:
            kind: only runs of this kind (``"minimize"``, ``"compare"``, ``"fit"``).
            group: only runs recorded together under this group.
            limit: at most this many (the newest), an integer >= 1; None: all.
        """
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ValueError(f"limit must be an integer >= 1 or None, got {limit!r}")
        where, args = [], []
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        if group is not None:
            where.append("run_group = ?")
            args.append(group)
        condition = " AND ".join(where)
        sql = f"SELECT {_LIST_COLUMNS} FROM runs"
        if where:
            sql += f" WHERE {condition}"
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        damaged: dict[int, str] = {}
        with self._transaction(write=False) as conn:
            try:
                rows = [] if conn is None else conn.execute(sql, args).fetchall()
            except sqlite3.DatabaseError:
                assert conn is not None
                rows = self._salvage(conn, condition, args, damaged)[: limit or None]
        infos = []
        for r in reversed(rows):
            try:
                infos.append(
                    RunInfo(
                        id=int(r[0]),
                        created=str(r[1]),
                        kind=str(r[2]),
                        label=str(r[3]),
                        group=r[4],
                        method=r[5],
                        problem=r[6],
                        status=str(r[7]),
                        fun=float("nan") if r[8] is None else float(r[8]),
                        nit=None if r[9] is None else int(r[9]),
                        time=None if r[10] is None else float(r[10]),
                    )
                )
            except (TypeError, ValueError) as exc:
                damaged[r[0]] = f"a column holds {exc}"
        if damaged:
            warnings.warn(
                DamagedRunWarning(
                    f"skipped {len(damaged)} damaged run(s) in {self.path} that cannot be "
                    f"read: {_by_reason(damaged)}. The other runs are listed; to keep only "
                    "them, move the file aside and salvage it with the sqlite3 tool's .recover"
                ),
                stacklevel=2,
            )
        return infos

    def _salvage(
        self,
        conn: sqlite3.Connection,
        condition: str,
        args: builtins.list[Any],
        damaged: dict[int, str],
    ) -> builtins.list[Any]:
        """The rows a whole-table read could not give, read one id at a time (newest
        first); ``damaged`` collects the ids whose pages cannot be read."""
        try:
            row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'runs'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc
        sql = f"SELECT {_LIST_COLUMNS} FROM runs WHERE id = ?"
        if condition:
            sql += f" AND {condition}"
        rows = []
        for run_id in range(int(row[0]) if row else 0, 0, -1):
            try:
                found = conn.execute(sql, [run_id, *args]).fetchone()
            except sqlite3.DatabaseError as exc:
                damaged[run_id] = str(exc)
                continue
            if found is not None:
                rows.append(found)
        return rows

    def delete(self, run_id: int) -> None:
        """Delete run ``run_id``.

        Raises:
            UnknownRun: no such run.
        """
        run_id = _check_id(run_id)
        with self._transaction(write=self._conn is not None) as conn:
            gone = (
                0
                if conn is None
                else conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount
            )
        if not gone:
            raise UnknownRun(self._missing(run_id))

    def require(self, run_id: int) -> None:
        """Raise :class:`UnknownRun` unless run ``run_id`` is stored (its record unread,
        so a damaged run can still be found, and deleted)."""
        run_id = _check_id(run_id)
        with self._transaction(write=False) as conn:
            found = (
                conn is not None
                and conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone()
            )
        if not found:
            raise UnknownRun(self._missing(run_id))

    def ids(self) -> builtins.list[int]:
        """Every run's id, in order."""
        with self._transaction(write=False) as conn:
            rows = [] if conn is None else conn.execute("SELECT id FROM runs ORDER BY id")
            return [r[0] for r in rows]

    def __len__(self) -> int:
        with self._transaction(write=False) as conn:
            return 0 if conn is None else conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def _missing(self, run_id: int) -> str:
        ids = self.ids()
        held = f"it holds runs {ids[0]} to {ids[-1]}" if ids else "it holds no runs yet"
        return f"no run with id {run_id} in {self.path} ({held}; see: descend runs list)"

    # -- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"


def _by_reason(damaged: dict[int, str]) -> str:
    """``{3: "malformed", 4: "malformed"}`` -> ``"runs 3, 4 (malformed)"``."""
    reasons: dict[str, list[int]] = {}
    for run_id, why in sorted(damaged.items()):
        reasons.setdefault(why, []).append(run_id)
    return "; ".join(
        f"run{'s' * (len(ids) > 1)} {', '.join(map(str, ids))} ({why})"
        for why, ids in reasons.items()
    )


def _writable(path: Path) -> bool:
    """Can this process write ``path`` and create files beside it (WAL's)?"""
    folder = path.parent if str(path.parent) else Path(".")
    return os.access(path, os.W_OK) and os.access(folder, os.W_OK | os.X_OK)


def _check_id(run_id: Any) -> int:
    if isinstance(run_id, bool) or not isinstance(run_id, int) or run_id < 1:
        raise ValueError(f"run id must be an integer >= 1, got {run_id!r}")
    return run_id


def _real(value: float) -> float | None:
    # SQLite stores NaN as NULL anyway; say so explicitly
    return None if value != value else value
