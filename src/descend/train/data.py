"""Where ``fit`` reads its rows: in-memory arrays, torch data sets and loaders, and files
streamed in chunks.

A :class:`DataSource` hands out one epoch of batches at a time. All randomness (the
order of rows, of row groups, of files) is drawn from the ``torch.Generator`` the caller
passes, never from global state, so an epoch is a pure function of the generator's state
at its start: :meth:`DataSource.batches` with ``skip=k`` replays the same draws and
resumes after batch ``k``, which is how a checkpointed run continues mid-epoch.

``batch_size=None`` means the full batch: in-memory sources give all rows as one batch;
streaming sources give a :class:`FullPass`, which ``fit`` evaluates chunk by chunk,
accumulating the gradient, so full-batch descent works on data larger than memory.

In a data-parallel run (``fit(..., distributed=True)`` on more than one rank) a
:class:`Stream` is read as a :class:`ShardedStream`: its files are cut into pieces (Parquet
row groups, CSV byte ranges aligned on lines), each rank reads only its own pieces, and
the global batch is the union of the ranks' local batches (the semantics are those of
:mod:`descend.distributed.stream_shards`). Every other source is read whole on each rank,
which keeps each global batch's rows split among the ranks.
"""

from __future__ import annotations

import glob
import gzip
import io
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from descend.distributed.data_parallel import DataParallel
from descend.distributed.stream_shards import (
    Share,
    agreed_order,
    assigned,
    local_batch_size,
    lockstep,
)
from descend.extras import require
from descend.validation import check_int, check_number

Batch = tuple[Tensor, Tensor]

#: rows per chunk when evaluating in-memory data in pieces (validation, full passes)
EVAL_ROWS = 1 << 16


class FullPass:
    """Every row of a source once, as bounded chunks: the full batch of a streaming source."""

    def __init__(self, source: DataSource) -> None:
        self.source = source

    def __iter__(self) -> Iterator[Batch]:
        return self.source.chunks()


class DataSource(ABC):
    """A data set ``fit`` can read.

    Attributes:
        num_rows: the number of rows, or None when unknown before a full pass.
        in_memory: whether all rows are held as tensors (a validation split needs it).
    """

    num_rows: int | None = None
    in_memory: bool = False

    @abstractmethod
    def batches(
        self, batch_size: int | None, *, shuffle: bool, generator: torch.Generator, skip: int = 0
    ) -> Iterator[Batch | FullPass]:
        """One epoch of batches of ``batch_size`` rows (the last may be short); ``None``
        means the full batch. The first ``skip`` batches are drawn but not returned."""

    @abstractmethod
    def chunks(self) -> Iterator[Batch]:
        """Every row once, in stored order, in chunks of bounded size."""

    def steps_per_epoch(self, batch_size: int | None) -> int | None:
        """Batches in one epoch, or None when the number of rows is unknown."""
        if batch_size is None:
            return 1
        if self.num_rows is None:
            return None
        return max(1, math.ceil(self.num_rows / batch_size))

    def for_ranks(self, parallel: DataParallel) -> DataSource:
        """What this rank reads in a data-parallel run: by default every row, each global
        batch then split among the ranks by rows (``DataParallel.shard``)."""
        return self


class InMemory(DataSource):
    """Rows held as two tensors: features ``X`` (n, ...) and targets ``y`` (n, ...)."""

    num_rows: int
    in_memory = True

    def __init__(self, X: Tensor, y: Tensor) -> None:
        if X.shape[0] != y.shape[0]:
            raise ValueError(
                f"X and y must have the same number of rows, got {X.shape[0]} and {y.shape[0]}"
            )
        if X.shape[0] == 0:
            raise ValueError("data is empty; it needs at least one row")
        self.X, self.y = X, y
        self.num_rows = int(X.shape[0])

    def batches(
        self, batch_size: int | None, *, shuffle: bool, generator: torch.Generator, skip: int = 0
    ) -> Iterator[Batch]:
        n = self.num_rows
        if batch_size is None or (batch_size >= n and not shuffle):
            if skip == 0:
                yield self.X, self.y
            return
        order = torch.randperm(n, generator=generator) if shuffle else None
        if order is not None and order.device != self.X.device:
            order = order.to(self.X.device)
        for start in range(skip * batch_size, n, batch_size):
            if order is None:
                yield self.X[start : start + batch_size], self.y[start : start + batch_size]
            else:
                idx = order[start : start + batch_size]
                yield self.X.index_select(0, idx), self.y.index_select(0, idx)

    def chunks(self) -> Iterator[Batch]:
        for start in range(0, self.num_rows, EVAL_ROWS):
            yield self.X[start : start + EVAL_ROWS], self.y[start : start + EVAL_ROWS]

    def split(self, fraction: float, generator: torch.Generator) -> tuple[InMemory, InMemory]:
        """A random (train, validation) split with ``fraction`` of the rows held out."""
        fraction = check_number(
            "validation", fraction, low=0.0, high=1.0, low_open=True, high_open=True
        )
        n_val = round(self.num_rows * fraction)
        if n_val < 1 or n_val >= self.num_rows:
            raise ValueError(
                f"validation={fraction:g} of {self.num_rows} rows leaves {n_val} for "
                "validation; give a fraction that holds out at least one row and keeps one"
            )
        order = torch.randperm(self.num_rows, generator=generator).to(self.X.device)
        train, val = order[: self.num_rows - n_val], order[self.num_rows - n_val :]
        return (
            InMemory(self.X.index_select(0, train), self.y.index_select(0, train)),
            InMemory(self.X.index_select(0, val), self.y.index_select(0, val)),
        )


class MapDataset(DataSource):
    """A map-style ``torch.utils.data.Dataset`` whose items are ``(features, target)``.

    Batches are gathered by index in the order drawn from the generator and collated
    with ``torch.utils.data.default_collate``.
    """

    num_rows: int

    def __init__(self, dataset: Any, converter: Any = None) -> None:
        self.dataset = dataset
        self.num_rows = len(dataset)
        self.converter = converter
        if self.num_rows == 0:
            raise ValueError("data is an empty Dataset; it needs at least one row")

    def _gather(self, idx: list[int]) -> Batch:
        from torch.utils.data import default_collate

        batch = default_collate([self.dataset[i] for i in idx])
        return _pair(batch, self.converter)

    def batches(
        self, batch_size: int | None, *, shuffle: bool, generator: torch.Generator, skip: int = 0
    ) -> Iterator[Batch | FullPass]:
        if batch_size is None:
            if skip == 0:
                yield FullPass(self)
            return
        order = torch.randperm(self.num_rows, generator=generator) if shuffle else None
        for start in range(skip * batch_size, self.num_rows, batch_size):
            stop = min(start + batch_size, self.num_rows)
            idx = order[start:stop].tolist() if order is not None else list(range(start, stop))
            yield self._gather(idx)

    def chunks(self) -> Iterator[Batch]:
        step = 1024
        for start in range(0, self.num_rows, step):
            yield self._gather(list(range(start, min(start + step, self.num_rows))))


class Loader(DataSource):
    """A ``torch.utils.data.DataLoader`` (or any iterable of ``(X, y)`` batches), read as is.

    Its own batch size and order rule; ``fit``'s ``batch_size`` and ``shuffle`` do not apply
    (except ``batch_size="full"``, which accumulates the gradient over the whole loader).
    A resumed run replays the loader and skips the batches already done, so it is
    bit-identical only if the loader's order is itself seeded.
    """

    def __init__(self, loader: Any, converter: Any = None) -> None:
        self.loader = loader
        self.converter = converter
        dataset = getattr(loader, "dataset", None)
        try:
            self.num_rows = len(dataset) if dataset is not None else None
        except TypeError:
            self.num_rows = None
        try:
            self._len: int | None = len(loader)
        except TypeError:
            self._len = None

    def steps_per_epoch(self, batch_size: int | None) -> int | None:
        return 1 if batch_size is None else self._len

    def batches(
        self, batch_size: int | None, *, shuffle: bool, generator: torch.Generator, skip: int = 0
    ) -> Iterator[Batch | FullPass]:
        if batch_size is None:
            if skip == 0:
                yield FullPass(self)
            return
        for i, batch in enumerate(self.loader):
            if i >= skip:
                yield _pair(batch, self.converter)

    def chunks(self) -> Iterator[Batch]:
        for batch in self.loader:
            yield _pair(batch, self.converter)


class Piece(NamedTuple):
    """A part of one file that a reader enters on its own: row group ``part`` of a Parquet
    file (its rows ``[start, stop)`` of the file), or piece ``part`` of a CSV file (the
    lines that begin in its bytes ``[start, stop)``; a compressed CSV is one piece, as it
    cannot be entered in the middle)."""

    path: str
    part: int
    start: int
    stop: int


class Stream(DataSource):
    """Rows streamed from CSV or Parquet files in chunks, in bounded memory.

    Each epoch reads the files chunk by chunk (``chunk_rows`` rows at a time, via pyarrow)
    and never holds more than about ``buffer_rows + chunk_rows`` rows. With ``shuffle``,
    the order of the files and of each Parquet file's row groups is drawn from the
    generator, and the rows are shuffled within a buffer of ``buffer_rows`` rows (the
    larger the buffer, the closer to a full shuffle). Without it, the batches are the
    rows in stored order, exactly as an in-memory array of the same rows would give them.

    In a data-parallel run of N > 1 ranks each rank reads only its pieces of the files
    (:meth:`pieces`: the Parquet row groups, CSV byte ranges of about ``chunk_rows``
    lines); see :class:`ShardedStream`. Parquet files shard as finely as their row groups
    (``pyarrow.parquet.write_table(..., row_group_size=...)``); CSV lines must not hold
    newlines inside quoted values (pyarrow's own block reader assumes the same).

    Args:
        paths: a file, a glob pattern, or a list of them (``.parquet``/``.pq`` or ``.csv``,
            ``.csv.gz``, ``.tsv``).
        target: the name of the target column.
        features: the feature columns (default: every column but ``target``), all numeric.
        chunk_rows: rows read per chunk, >= 1.
        buffer_rows: rows shuffled together, >= 1.

    Example:
        >>> import pathlib, tempfile, torch, descend
        >>> from descend.train import stream
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> lines = [f"{i % 7},{i % 3},{i % 2}" for i in range(40)]
        >>> _ = (folder / "train.csv").write_text("a,b,label\\n" + "\\n".join(lines))
        >>> res = descend.fit(torch.nn.Linear(2, 1), "bce_with_logits",
        ...                   stream(folder / "train.csv", target="label", chunk_rows=16),
        ...                   batch_size=8, epochs=2, seed=0, progress=False)
        >>> res.epoch, res.nit
        (2, 10)
    """

    def __init__(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        target: str,
        features: Sequence[str] | None = None,
        *,
        chunk_rows: int = 65_536,
        buffer_rows: int = 262_144,
        converter: Any = None,
    ) -> None:
        _pyarrow("pyarrow")  # a clear one-line error here, not mid-epoch
        self.paths = _expand(paths)
        self.format = _format(self.paths)
        self.target = target
        self.chunk_rows = check_int("chunk_rows", chunk_rows, low=1)
        self.buffer_rows = check_int("buffer_rows", buffer_rows, low=1)
        self.converter = converter
        columns = self._columns(self.paths[0])
        if target not in columns:
            raise ValueError(
                f"target column {target!r} is not in {self.paths[0]}; columns: {columns}"
            )
        self.features = (
            list(features) if features is not None else [c for c in columns if c != target]
        )
        missing = [c for c in self.features if c not in columns]
        if missing:
            raise ValueError(
                f"feature column(s) {missing} are not in {self.paths[0]}; columns: {columns}"
            )
        if self.format == "parquet":
            pq = _pyarrow("pyarrow.parquet")
            self.num_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in self.paths)
        else:
            self.num_rows = None

    def with_converter(self, converter: Any) -> Stream:
        """A copy of this stream whose chunks pass through ``converter(X, y)``."""
        clone = object.__new__(Stream)
        clone.__dict__.update(self.__dict__)
        clone.converter = converter
        return clone

    def for_ranks(self, parallel: DataParallel) -> DataSource:
        """Each rank its own pieces (a :class:`ShardedStream`) when there are several."""
        return ShardedStream(self, parallel) if parallel.world > 1 else self

    def _columns(self, path: str) -> list[str]:
        if self.format == "parquet":
            return list(_pyarrow("pyarrow.parquet").ParquetFile(path).schema_arrow.names)
        return self._csv_columns(path)

    def _csv_columns(self, path: str) -> list[str]:
        """A CSV file's column names, from its header line alone (not a block of rows)."""
        pacsv = _pyarrow("pyarrow.csv")
        opener: Any = gzip.open if path.lower().endswith(".gz") else open
        with opener(path, "rb") as handle:
            line = handle.readline()
        return list(pacsv.read_csv(io.BytesIO(line), parse_options=self._parse(path)).column_names)

    @staticmethod
    def _parse(path: str) -> Any:
        return _pyarrow("pyarrow.csv").ParseOptions(
            delimiter="\t" if path.lower().endswith(".tsv") else ","
        )

    def _csv_reader(self, path: str) -> Any:
        pacsv = _pyarrow("pyarrow.csv")
        # ~100 bytes per row of a numeric table; keep blocks near chunk_rows rows
        read = pacsv.ReadOptions(block_size=max(1 << 16, min(1 << 28, self.chunk_rows * 128)))
        return pacsv.open_csv(path, read_options=read, parse_options=self._parse(path))

    def _numpy_dtype(self) -> Any:
        # straight into the model's float type: one cast, rounded as torch would round it
        dtype = getattr(self.converter, "dtype", torch.float64)
        if dtype.is_floating_point and dtype not in (torch.bfloat16, torch.float16):
            return torch.empty((), dtype=dtype).numpy().dtype
        return np.float64

    def _arrays(self, generator: torch.Generator | None) -> Iterator[Batch]:
        """Chunks of at most ``chunk_rows`` rows, files (and Parquet row groups) in the
        generator's order when one is given, else in stored order."""
        paths = self.paths
        if generator is not None and len(paths) > 1:
            paths = [paths[i] for i in torch.randperm(len(paths), generator=generator).tolist()]
        for path in paths:
            arrays = self._parquet(path, generator) if self.format == "parquet" else self._csv(path)
            yield from self._sliced(arrays)

    def _sliced(self, arrays: Iterator[Any]) -> Iterator[Batch]:
        """NumPy ``(X, y)`` pairs as tensor chunks of at most ``chunk_rows`` rows."""
        for X, y in arrays:
            for start in range(0, X.shape[0], self.chunk_rows):
                Xt = torch.from_numpy(X[start : start + self.chunk_rows])
                yt = torch.from_numpy(y[start : start + self.chunk_rows])
                yield self.converter(Xt, yt) if self.converter is not None else (Xt, yt)

    @staticmethod
    def _parquet_file(path: str) -> Any:
        return _pyarrow("pyarrow.parquet").ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)

    def _parquet(self, path: str, generator: torch.Generator | None) -> Iterator[Any]:
        """Row group by row group, in the generator's order when one is given."""
        handle = self._parquet_file(path)
        groups = list(range(handle.num_row_groups))
        if generator is not None and len(groups) > 1:
            groups = torch.randperm(len(groups), generator=generator).tolist()
        for group in groups:
            yield self._row_group(handle, group)

    def _row_group(self, handle: Any, group: int) -> tuple[np.ndarray, np.ndarray]:
        """One row group, one column at a time: pyarrow's batch reader decodes whole row
        groups of every column at once and buffers ahead (several times the data); column
        by column, memory stays near one row group of the output array."""
        rows = handle.metadata.row_group(group).num_rows
        X = np.empty((rows, len(self.features)), dtype=self._numpy_dtype())
        for j, name in enumerate(self.features):
            X[:, j] = self._column(handle.read_row_group(group, columns=[name], use_threads=False))
        y = self._column(handle.read_row_group(group, columns=[self.target], use_threads=False))
        return X, np.array(y)  # a writable copy of the target

    def _csv(self, path: str) -> Iterator[Any]:
        for record in self._csv_reader(path):
            yield self._record(record)

    def _record(self, record: Any) -> tuple[np.ndarray, np.ndarray]:
        """The features and target of a pyarrow record batch or table, as NumPy arrays."""
        X = np.empty((record.num_rows, len(self.features)), dtype=self._numpy_dtype())
        for j, name in enumerate(self.features):
            X[:, j] = record.column(name).to_numpy(zero_copy_only=False)
        return X, np.array(record.column(self.target).to_numpy(zero_copy_only=False))

    @staticmethod
    def _column(table: Any) -> np.ndarray:
        return table.column(0).to_numpy()

    # -- pieces: the parts of the files a reader enters on its own ---------------------

    def pieces(self) -> list[Piece]:
        """Every piece of every file, in stored order: each Parquet row group, and for
        an uncompressed CSV byte ranges of about ``chunk_rows`` lines (the bytes per line
        estimated from the first 64 KiB of lines). Only metadata and the first lines are
        read."""
        out: list[Piece] = []
        for path in self.paths:
            if self.format == "parquet":
                meta = _pyarrow("pyarrow.parquet").ParquetFile(path).metadata
                start = 0
                for group in range(meta.num_row_groups):
                    stop = start + meta.row_group(group).num_rows
                    out.append(Piece(path, group, start, stop))
                    start = stop
            elif path.lower().endswith(".gz"):
                out.append(Piece(path, 0, 0, os.path.getsize(path)))
            else:
                out.extend(self._csv_pieces(path))
        return out

    def _csv_pieces(self, path: str) -> list[Piece]:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            data_start = len(handle.readline())
            sample = handle.read(1 << 16)
        per_line = len(sample) / max(1, sample.count(b"\n"))
        span = max(1, round(self.chunk_rows * per_line))
        return [
            Piece(path, i, start, min(start + span, size))
            for i, start in enumerate(range(data_start, size, span))
        ]

    def _piece_arrays(self, piece: Piece) -> Iterator[Any]:
        """The NumPy ``(X, y)`` arrays of one piece, reading nothing outside it."""
        if self.format == "parquet":
            yield self._row_group(self._parquet_file(piece.path), piece.part)
        elif piece.path.lower().endswith(".gz"):
            yield from self._csv(piece.path)
        else:
            pacsv = _pyarrow("pyarrow.csv")
            data = csv_lines(piece.path, piece.start, piece.stop)
            if not data.strip():
                return
            table = pacsv.read_csv(
                io.BytesIO(data),
                read_options=pacsv.ReadOptions(
                    column_names=self._csv_columns(piece.path), use_threads=False
                ),
                parse_options=self._parse(piece.path),
                convert_options=pacsv.ConvertOptions(include_columns=[*self.features, self.target]),
            )
            yield self._record(table)

    def read(self, pieces: Sequence[Piece]) -> Iterator[Batch]:
        """The rows of ``pieces``, in their order, as chunks of at most ``chunk_rows``."""
        for piece in pieces:
            yield from self._sliced(self._piece_arrays(piece))

    def empty(self) -> Batch:
        """A batch of no rows, shaped and typed as this stream's batches."""
        X = torch.from_numpy(np.empty((0, len(self.features)), dtype=self._numpy_dtype()))
        y = torch.from_numpy(np.empty(0))
        return self.converter(X, y) if self.converter is not None else (X, y)

    # -- an epoch ------------------------------------------------------------------------

    def chunks(self) -> Iterator[Batch]:
        return self._arrays(None)

    def batches(
        self, batch_size: int | None, *, shuffle: bool, generator: torch.Generator, skip: int = 0
    ) -> Iterator[Batch | FullPass]:
        if batch_size is None:
            if skip == 0:
                yield FullPass(self)
            return
        chunks = self._arrays(generator if shuffle else None)
        yield from self.buffered(
            chunks, batch_size, shuffle=shuffle, generator=generator, skip=skip
        )

    def buffered(
        self,
        chunks: Iterator[Batch],
        batch_size: int,
        *,
        shuffle: bool,
        generator: torch.Generator,
        skip: int = 0,
    ) -> Iterator[Batch]:
        """``chunks`` as batches of ``batch_size`` rows (the last may be short), through a
        buffer of ``buffer_rows`` rows shuffled by ``generator`` when ``shuffle``."""
        # one preallocated buffer, refilled in place: rows are copied in once, and batches
        # are gathered from it by index (copies, so a batch outlives the refill)
        capacity = max(self.buffer_rows, batch_size) + self.chunk_rows
        buf_X: Tensor | None = None
        buf_y: Tensor | None = None
        fill = emitted = 0

        def drain(final: bool) -> Iterator[Batch]:
            nonlocal fill, emitted
            assert buf_X is not None and buf_y is not None
            X, y = buf_X[:fill], buf_y[:fill]
            order = torch.randperm(fill, generator=generator) if shuffle else None
            n = fill if final else fill // batch_size * batch_size
            for start in range(0, n, batch_size):
                if emitted >= skip:
                    if order is None:
                        yield (
                            X[start : start + batch_size].clone(),
                            y[start : start + batch_size].clone(),
                        )
                    else:
                        idx = order[start : start + batch_size]
                        yield X.index_select(0, idx), y.index_select(0, idx)
                emitted += 1
            if n < fill:  # the rows left over open the next buffer
                if order is None:
                    rest_X, rest_y = X[n:].clone(), y[n:].clone()
                else:
                    rest_X, rest_y = X.index_select(0, order[n:]), y.index_select(0, order[n:])
                buf_X[: fill - n] = rest_X
                buf_y[: fill - n] = rest_y
            fill -= n

        for X, y in chunks:
            if buf_X is None:
                buf_X = torch.empty((capacity, *X.shape[1:]), dtype=X.dtype)
                buf_y = torch.empty((capacity, *y.shape[1:]), dtype=y.dtype)
            assert buf_y is not None
            rows = X.shape[0]
            buf_X[fill : fill + rows] = X
            buf_y[fill : fill + rows] = y
            fill += rows
            if fill >= self.buffer_rows:
                yield from drain(final=False)
        if fill:
            yield from drain(final=True)


class ShardedStream(DataSource):
    """One rank's part of a :class:`Stream` in a data-parallel run of N > 1 ranks: it
    reads only its own pieces of the files (:meth:`Stream.pieces`).

    Each epoch the pieces are in stored order, or with ``shuffle`` in an order drawn from
    the run's generator (rank 0's, so every rank agrees), with a seed for this rank's
    buffer shuffle drawn after it; every rank makes the same draws, so the generators stay
    alike. Rank r reads pieces r, r + N, ... of the order through its buffer of
    ``buffer_rows`` rows into local batches of its share of ``batch_size``, and each
    global step is the union of the ranks' local batches, yielded as a
    :class:`~descend.distributed.stream_shards.Share` (this rank's rows and where they lie
    in the global batch; :mod:`descend.distributed.stream_shards` states what equals
    what). The full batch is every rank's pieces, chunk by chunk, in steps the ranks take
    together. Every rank must iterate it together: each step is one all-reduce.
    """

    def __init__(self, stream: Stream, parallel: DataParallel) -> None:
        self.stream, self.parallel = stream, parallel
        self.pieces = stream.pieces()
        self.num_rows = stream.num_rows

    def steps_per_epoch(self, batch_size: int | None) -> int | None:
        # the busiest rank's count of local batches, which the epoch's pieces decide
        return 1 if batch_size is None else None

    def chunks(self) -> Iterator[Share]:  # type: ignore[override]
        mine = assigned(self.pieces, self.parallel.rank, self.parallel.world)
        return lockstep(self.stream.read(mine), self.parallel, self.stream.empty())

    def batches(  # type: ignore[override]
        self, batch_size: int | None, *, shuffle: bool, generator: torch.Generator, skip: int = 0
    ) -> Iterator[Share | FullPass]:
        if batch_size is None:
            if skip == 0:
                yield FullPass(self)
            return
        rank, world = self.parallel.rank, self.parallel.world
        if batch_size < world:
            raise ValueError(
                f"batch_size={batch_size} is smaller than the {world} ranks reading this "
                f"stream, each its own pieces into its share of every batch; give "
                f"batch_size >= {world}"
            )
        order = list(range(len(self.pieces)))
        local = torch.Generator()
        if shuffle:
            drawn = torch.randperm(len(order), generator=generator).tolist()
            order = agreed_order(drawn, self.parallel)
            seed = int(torch.randint(1 << 62, (1,), generator=generator))
            local.manual_seed(int(np.random.SeedSequence([seed, rank]).generate_state(1)[0]))
        mine = assigned([self.pieces[i] for i in order], rank, world)
        rows = self.stream.buffered(
            self.stream.read(mine),
            local_batch_size(batch_size, rank, world),
            shuffle=shuffle,
            generator=local,
        )
        yield from lockstep(rows, self.parallel, self.stream.empty(), skip=skip)


def csv_lines(path: str, start: int, stop: int) -> bytes:
    """The lines of a file that begin in its bytes ``[start, stop)``, ``start`` >= 1.

    A line belongs to the range its first byte lies in, so ranges that tile the file
    give every line to exactly one of them: the line under way at ``start`` is the
    previous range's, and the line under way at ``stop`` is read to its end.
    """
    with open(path, "rb") as handle:
        handle.seek(start - 1)
        handle.readline()  # to the first line that begins at or after start
        begin = handle.tell()
        if begin >= stop:
            return b""
        data = handle.read(stop - begin)
        if not data.endswith(b"\n"):
            data += handle.readline()
    return data


def stream(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    target: str,
    features: Sequence[str] | None = None,
    *,
    chunk_rows: int = 65_536,
    buffer_rows: int = 262_144,
) -> Stream:
    """A :class:`Stream` of CSV or Parquet files for ``fit`` (see :class:`Stream`); in a
    data-parallel ``fit`` each rank reads only its own pieces of the files."""
    return Stream(paths, target, features, chunk_rows=chunk_rows, buffer_rows=buffer_rows)


# -- conversion at the boundary ---------------------------------------------------------


class Converter:
    """Casts features to the model's dtype and targets to what the loss takes."""

    def __init__(self, dtype: torch.dtype, target: str) -> None:
        self.dtype = dtype
        self.target = target

    def features(self, X: Any, name: str = "X") -> Tensor:
        X = _tensor(X, name)
        if X.is_complex():
            raise TypeError(f"{name} must be real, got dtype {X.dtype}")
        return X.to(self.dtype)

    def targets(self, y: Any, name: str = "y") -> Tensor:
        y = _tensor(y, name)
        if self.target == "long":
            if y.is_floating_point() and not torch.equal(y, y.round()):
                raise ValueError(
                    f"{name} must hold integer class labels for this loss, got "
                    "non-integer values; encode labels as 0..n_classes-1"
                )
            return y.long()
        if self.target == "float" or y.is_floating_point():
            return y.to(self.dtype)
        return y

    def __call__(self, X: Any, y: Any) -> Batch:
        return self.features(X), self.targets(y)


def as_source(data: Any, converter: Converter, name: str = "data") -> DataSource:
    """The :class:`DataSource` for ``data``: an ``(X, y)`` pair of tensors, NumPy arrays,
    lists or pandas objects; a torch ``Dataset`` or ``DataLoader``; or a source."""
    from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

    if isinstance(data, Stream):
        return data.with_converter(converter)
    if isinstance(data, DataSource):
        return data
    if isinstance(data, DataLoader):
        return Loader(data, converter)
    if isinstance(data, TensorDataset) and len(data.tensors) == 2:
        return InMemory(converter.features(data.tensors[0]), converter.targets(data.tensors[1]))
    if isinstance(data, IterableDataset):
        raise TypeError(
            f"{name} is an IterableDataset; wrap it in a torch.utils.data.DataLoader with "
            "the batch size you want"
        )
    if isinstance(data, Dataset):
        return MapDataset(data, converter)
    if isinstance(data, (str, os.PathLike)):
        raise TypeError(
            f"{name} is a path; stream files with descend.train.stream({str(data)!r}, "
            "target='column')"
        )
    if isinstance(data, (tuple, list)) and len(data) == 2:
        X = converter.features(data[0], f"{name}[0] (X)")
        y = converter.targets(data[1], f"{name}[1] (y)")
        return InMemory(X, y)
    raise TypeError(
        f"{name} must be an (X, y) pair of tensors, NumPy arrays or pandas objects, a torch "
        f"Dataset or DataLoader, or descend.train.stream(...); got {type(data).__name__}"
    )


def _tensor(value: Any, name: str) -> Tensor:
    if isinstance(value, Tensor):
        return value.detach()
    if hasattr(value, "to_numpy") and hasattr(value, "dtypes"):  # pandas
        frame = value.to_frame() if value.ndim == 1 else value
        bad = [str(c) for c, t in frame.dtypes.items() if not _numeric(t)]
        if bad:
            raise TypeError(
                f"{name} has non-numeric column(s) {bad}; encode them as numbers first "
                "(e.g. sklearn.preprocessing.OneHotEncoder or OrdinalEncoder)"
            )
        value = value.to_numpy(dtype=np.float64)
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be array-like, got {type(value).__name__}: {exc}") from exc
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    ):
        raise TypeError(f"{name} must be numeric, got dtype {array.dtype}")
    array = np.ascontiguousarray(array)
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def _numeric(dtype: Any) -> bool:
    try:
        return bool(np.issubdtype(np.dtype(dtype), np.number) or np.dtype(dtype) == np.bool_)
    except TypeError:
        return False


def _pair(batch: Any, converter: Any) -> Batch:
    if isinstance(batch, dict):
        raise TypeError(
            "batches must be (features, target) pairs, got a dict; "
            "wrap the loader so it yields (X, y)"
        )
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(f"batches must be (features, target) pairs, got {type(batch).__name__}")
    X, y = batch
    return converter(X, y) if converter is not None else (X, y)


def _expand(paths: Any) -> list[str]:
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out: list[str] = []
    for item in items:
        text = os.fspath(item)
        matches = sorted(glob.glob(text)) if any(ch in text for ch in "*?[") else [text]
        if not matches:
            raise FileNotFoundError(f"no file matches {text!r}")
        for match in matches:
            if not os.path.isfile(match):
                raise FileNotFoundError(f"{match!r} is not a file")
        out.extend(matches)
    if not out:
        raise ValueError("paths is empty; give at least one CSV or Parquet file")
    return out


def _format(paths: list[str]) -> str:
    kinds = set()
    for path in paths:
        lower = path.lower()
        if lower.endswith((".parquet", ".pq")):
            kinds.add("parquet")
        elif lower.endswith((".csv", ".csv.gz", ".tsv")):
            kinds.add("csv")
        else:
            raise ValueError(
                f"unknown file type {path!r}; valid: .parquet, .pq, .csv, .csv.gz, .tsv"
            )
    if len(kinds) > 1:
        raise ValueError("paths mix CSV and Parquet files; stream one kind at a time")
    return kinds.pop()


def _pyarrow(module: str) -> Any:
    """``module`` of pyarrow, or a one-line error naming the ``[data]`` extra."""
    return require(module, "data", feature="descend.train.stream")
