"""A streamed CSV or Parquet file in a data-parallel fit on 2 gloo processes: each rank
reads only its own pieces of the file (every row read by exactly one rank per epoch, the
ranks' counts of pieces within one, no rank reading the whole file), the global batches
are the union of the ranks' local batches, and the run ends where one process ends when
it trains on those global batches (with dropout: each rank's mask is its rows of the
global batch's).

One launch of two workers (this file run as a script) serves every test: each worker logs
the pieces and bytes it read and the rows it trained on at each step, and the tests
rebuild the global batches from the file and train one process on them, in this run.
"""

from __future__ import annotations

import gzip
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

sys.path.insert(0, str(Path(__file__).parent))
from test_second_order import join_group, launch, leave_group  # noqa: E402

import descend  # noqa: E402
from descend.distributed.data_parallel import DataParallel  # noqa: E402
from descend.distributed.stream_shards import Share  # noqa: E402
from descend.train import data as train_data  # noqa: E402
from descend.train.data import Loader, Stream, csv_lines  # noqa: E402

ROWS, FEATURES, GROUP = 203, 3, 20  # 11 row groups / CSV pieces, the last of 3 rows
VAL = 70  # validation rows: about 4 CSV pieces of GROUP lines, shared by the ranks
SEED = 5
SCENARIOS = {
    # stored order, an MLP with dropout: the local batches are rebuilt from the file here
    "parquet": {"file": "table.parquet", "batch_size": 20, "shuffle": False,
                "optimizer": "momentum", "lr": 0.05, "momentum": 0.9, "dropout": True},
    # shuffled pieces and buffers, an odd global batch (local batches of 8 and 7 rows)
    "csv": {"file": "table.csv", "batch_size": 15, "shuffle": True, "buffer_rows": 40,
            "optimizer": "adam", "lr": 0.01, "dropout": True},
    # the full batch: every rank's pieces chunk by chunk, the gradient summed over ranks
    "full": {"file": "table.parquet", "batch_size": "full", "shuffle": False,
             "optimizer": "gd", "lr": 0.1, "dropout": False},
}  # fmt: skip
EPOCHS = 2


def table() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    X = rng.normal(size=(ROWS, FEATURES))
    y = np.sin(X @ [1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=ROWS)
    return X, y


def write_files(folder: Path) -> None:
    """The table as Parquet (row groups of GROUP rows) and as CSV (floats written exactly),
    and a validation CSV of its first rows, scaled."""
    X, y = table()
    columns = {f"x{j}": X[:, j] for j in range(FEATURES)} | {"y": y}
    pq.write_table(pa.table(columns), folder / "table.parquet", row_group_size=GROUP)
    for name, rows, targets in (("table.csv", X, y), ("validation.csv", X[:VAL] / 2, y[:VAL])):
        lines = [",".join(repr(float(v)) for v in (*row, t)) for row, t in zip(rows, targets)]
        (folder / name).write_text("\n".join([",".join(columns), *lines]) + "\n")


def network(dropout: bool) -> nn.Module:
    torch.manual_seed(3)
    layers = [nn.Linear(FEATURES, 8), nn.Tanh(), nn.Dropout(0.25), nn.Linear(8, 1)]
    return nn.Sequential(*(layer for layer in layers if dropout or type(layer) is not nn.Dropout))


def options(name: str) -> dict:
    """fit's arguments for the scenario (its file, model and buffer are set elsewhere)."""
    spec = {k: v for k, v in SCENARIOS[name].items() if k not in ("file", "dropout", "buffer_rows")}
    return {**spec, "epochs": EPOCHS, "seed": SEED, "progress": False, "monitors": None}


def validation(folder: Path) -> Stream:
    return descend.train.stream(folder / "validation.csv", "y", chunk_rows=GROUP)


def train(name: str, data: object, distributed: bool, **extra: object) -> descend.train.FitResult:
    net = network(SCENARIOS[name]["dropout"]).double()
    return descend.fit(net, "mse", data, distributed=distributed, **(options(name) | extra))


# -- the workers ------------------------------------------------------------------------


def logged(log: dict) -> None:
    """Record each pass over the stream this rank makes (an epoch of mini-batches, or a
    full pass): the pieces it reads, the CSV bytes it reads and the share of each global
    batch it trains on, by wrapping the stream's readers in this process."""
    pieces, held = Stream._piece_arrays, Share.held
    batches, chunks = train_data.ShardedStream.batches, train_data.ShardedStream.chunks

    def new_pass(sharded) -> None:
        name = Path(sharded.stream.paths[0]).name
        log["passes"].append({"file": name, "pieces": [], "bytes": 0, "shares": []})

    def epoch(self, batch_size, **kwargs):
        if batch_size is not None:  # the full batch's passes are its chunks()
            new_pass(self)
        return batches(self, batch_size, **kwargs)

    def full_pass(self):  # the full batch's, or the validation's
        new_pass(self)
        return chunks(self)

    def piece_arrays(self, piece):
        for X, y in pieces(self, piece):
            log["passes"][-1]["pieces"].append((piece.part, len(X)))
            yield X, y

    def lines(path, start, stop):
        data = csv_lines(path, start, stop)
        log["passes"][-1]["bytes"] += len(data)
        return data

    def share_held(self, rows):
        log["passes"][-1]["shares"].append((self.X.clone(), self.y.clone(), self.start, self.total))
        return held(self, rows)

    train_data.ShardedStream.batches = epoch
    train_data.ShardedStream.chunks = full_pass
    Stream._piece_arrays = piece_arrays
    Share.held = share_held
    train_data.csv_lines = lines


def worker(rank: int, world: int, folder: Path) -> None:
    join_group(rank, world, folder)
    log: dict = {"passes": []}
    logged(log)
    out: dict = {}
    for name, spec in SCENARIOS.items():
        log["passes"] = []
        source = descend.train.stream(
            folder / spec["file"], "y", chunk_rows=GROUP, buffer_rows=spec.get("buffer_rows", 64)
        )
        result = train(name, source, distributed=True, validation=validation(folder))
        out[name] = {
            "params": [p.detach() for p in result.model.parameters()],
            "loss": list(result.epoch_history["loss"]),
            "val_loss": list(result.epoch_history["val_loss"]),
            "passes": log["passes"],
        }
    log["passes"] = []
    out["replay"] = replayed(folder)
    try:
        small = descend.train.stream(folder / "table.csv", "y")
        train("parquet", small, distributed=True, batch_size=1)
    except ValueError as error:
        out["error"] = str(error)
    out["drawn_seed"] = drawn_seed()
    torch.save(out, folder / f"rank{rank}.pt")
    leave_group()


def drawn_seed() -> int:
    """The seed a distributed fit given no seed runs with on this rank."""
    X = torch.arange(24.0, dtype=torch.float64).reshape(8, 3)
    return descend.fit(
        torch.nn.Linear(3, 1).double(), "mse", (X, X.sum(1, keepdim=True)), batch_size=4,
        epochs=1, progress=False, distributed=True,
    ).seed  # fmt: skip


def replayed(folder: Path) -> dict:
    """A shuffled epoch's shares from its start, and with its first 4 steps skipped (as a
    run resumed mid-epoch asks for them), from generators in the same state."""
    source = descend.train.stream(folder / "table.csv", "y", chunk_rows=GROUP, buffer_rows=40)
    sharded = source.for_ranks(DataParallel(torch.device("cpu")))
    out = {}
    for skip in (0, 4):
        generator = torch.Generator().manual_seed(SEED)
        shares = sharded.batches(15, shuffle=True, generator=generator, skip=skip)
        out[skip] = [tuple(share) for share in shares]
    return out


# -- the tests --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    folder = tmp_path_factory.mktemp("stream_shards")
    write_files(folder)
    launch(__file__, folder)
    return [torch.load(folder / f"rank{r}.pt", weights_only=False) for r in range(2)]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("stream_files")
    write_files(folder)
    return folder


def pieces(folder: Path, name: str) -> list:
    return Stream(folder / SCENARIOS[name]["file"], "y", chunk_rows=GROUP).pieces()


def passes(ranks: list[dict], name: str) -> list[tuple[dict, dict]]:
    """The ranks' passes over the scenario's file (not its validation file), side by side;
    a pass begun and never iterated (an iterator made and dropped) read nothing."""
    file = SCENARIOS[name]["file"]
    first, second = (
        [p for p in rank[name]["passes"] if p["shares"] and p["file"] == file] for rank in ranks
    )
    assert len(first) == len(second) >= EPOCHS
    return list(zip(first, second))


def global_batches(ranks: list[dict], name: str) -> list[list[tuple[torch.Tensor, ...]]]:
    """Each epoch's global batches: at each step the ranks' shares in rank order, which
    must tile one batch (rank 0's rows first, rank 1's where they end)."""
    epochs = []
    for first, second in passes(ranks, name):
        assert len(first["shares"]) == len(second["shares"])  # the ranks stepped together
        batches = []
        for (X0, y0, start0, total0), (X1, y1, start1, total1) in zip(
            first["shares"], second["shares"]
        ):
            assert (start0, start1) == (0, len(X0))
            assert total0 == total1 == len(X0) + len(X1)
            batches.append((torch.cat([X0, X1]), torch.cat([y0, y1])))
        epochs.append(batches)
    return epochs


class Epochs:
    """Epoch e's global batches on the e-th pass: one process's loader."""

    def __init__(self, epochs: list[list[tuple[torch.Tensor, ...]]]) -> None:
        self.epochs, self.passes = epochs, 0

    def __iter__(self):
        self.passes += 1
        return iter(self.epochs[self.passes - 1])


def flat(params: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in params])


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_row_is_read_by_exactly_one_rank_per_pass(
    ranks: list[dict], files: Path, name: str
) -> None:
    """Each piece once per pass, by one rank; the ranks' counts of pieces within one;
    neither rank reads all rows."""
    count = len(pieces(files, name))
    assert count >= 10  # enough pieces that the shares mean something
    for reads in passes(ranks, name):
        parts = [part for read in reads for part, _ in read["pieces"]]
        assert sorted(parts) == list(range(count))
        rows = [sum(n for _, n in read["pieces"]) for read in reads]
        assert sum(rows) == ROWS and max(rows) < ROWS
        assert abs(len(reads[0]["pieces"]) - len(reads[1]["pieces"])) <= 1


def test_csv_ranks_read_disjoint_byte_ranges(ranks: list[dict], files: Path) -> None:
    """The bytes the ranks read of the CSV add up to the file after its header: no byte
    read twice, none by both, and each rank well short of the whole file."""
    path = files / "table.csv"
    data = path.stat().st_size - len(path.read_bytes().split(b"\n", 1)[0]) - 1
    for reads in passes(ranks, "csv"):
        read = [r["bytes"] for r in reads]
        assert sum(read) == data and max(read) < 0.6 * data


def test_global_batches_are_the_ranks_local_batches_side_by_side(
    ranks: list[dict], files: Path
) -> None:
    """In stored order, rank r reads row groups r, r + 2, ... and cuts its rows into
    local batches of 10 (half of 20); step k is rank 0's k-th local batch then rank 1's,
    and a rank whose rows ran out joins with none (rank 0 has 103 rows, rank 1 100: the
    eleventh batch is rank 0's 3 rows)."""
    X, y = table()
    groups = pieces(files, "parquet")
    expected = []
    mine = [np.concatenate([np.arange(g.start, g.stop) for g in groups[r::2]]) for r in range(2)]
    for k in range(max(-(-len(rows) // 10) for rows in mine)):
        index = np.concatenate([rows[10 * k : 10 * k + 10] for rows in mine])
        expected.append((torch.from_numpy(X[index]), torch.from_numpy(y[index])))
    for epoch in global_batches(ranks, "parquet"):
        assert len(epoch) == len(expected) == 11
        for (got_X, got_y), (want_X, want_y) in zip(epoch, expected):
            assert torch.equal(got_X, want_X) and torch.equal(got_y, want_y)


def test_shuffled_epochs_hold_every_row_once_in_new_orders(ranks: list[dict]) -> None:
    X, _ = table()
    orders = []
    for epoch in global_batches(ranks, "csv"):
        rows = torch.cat([batch[0] for batch in epoch])
        assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, X.tolist()))
        orders.append(rows)
    assert not torch.equal(orders[0], orders[1])
    assert not torch.equal(orders[0], torch.from_numpy(X))


@pytest.mark.parametrize("name", ["parquet", "csv"])
def same_run(ranks: list[dict], name: str, one: descend.train.FitResult) -> None:
    """Both ranks hold one's parameters, and its losses, to 1e-10 relative."""
    mine = flat(list(one.model.parameters()))
    for rank in ranks:
        theirs = flat(rank[name]["params"])
        assert torch.linalg.vector_norm(mine - theirs) <= 1e-10 * torch.linalg.vector_norm(mine)
        for key in ("loss", "val_loss"):
            assert rank[name][key] == pytest.approx(list(one.epoch_history[key]), rel=1e-10)


@pytest.mark.parametrize("name", ["parquet", "csv"])
def test_two_ranks_end_where_one_process_ends_on_their_global_batches(
    ranks: list[dict], files: Path, name: str
) -> None:
    """One process trained on the global batches the ranks formed (same model, dropout,
    seed and optimizer), validated on the whole validation file, reaches the ranks'
    parameters and losses."""
    batches = Loader(Epochs(global_batches(ranks, name)))
    same_run(ranks, name, train(name, batches, distributed=False, validation=validation(files)))


def test_a_full_batch_over_shards_is_the_full_batch_of_all_rows(
    ranks: list[dict], files: Path
) -> None:
    X, y = (torch.from_numpy(a) for a in table())
    same_run(ranks, "full", train("full", (X, y), distributed=False, validation=validation(files)))


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_validation_stream_is_sharded_too(ranks: list[dict], files: Path, name: str) -> None:
    count = len(Stream(files / "validation.csv", "y", chunk_rows=GROUP).pieces())
    validated = [
        [p for p in rank[name]["passes"] if p["file"] == "validation.csv"] for rank in ranks
    ]
    assert len(validated[0]) == len(validated[1]) == EPOCHS
    for reads in zip(*validated):
        assert sorted(part for read in reads for part, _ in read["pieces"]) == list(range(count))
        rows = [sum(n for _, n in read["pieces"]) for read in reads]
        assert sum(rows) == VAL and max(rows) < VAL


def test_an_epoch_resumed_mid_way_replays_the_shares_it_skipped(ranks: list[dict]) -> None:
    for rank in ranks:
        whole, rest = rank["replay"][0], rank["replay"][4]
        assert len(whole) > 8 and len(rest) == len(whole) - 4
        for got, want in zip(rest, whole[4:]):
            assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
            assert got[2:] == want[2:]


def test_a_seed_drawn_for_a_distributed_fit_is_rank_0s_on_every_rank(
    ranks: list[dict],
) -> None:
    # each rank drawing its own would keep its share of a different shuffled batch
    assert ranks[0]["drawn_seed"] == ranks[1]["drawn_seed"]


def test_a_global_batch_smaller_than_the_ranks_is_refused(ranks: list[dict]) -> None:
    assert "batch_size=1" in ranks[0]["error"] and "batch_size >= 2" in ranks[0]["error"]


# -- the pieces, in this process -----------------------------------------------------------


@pytest.mark.parametrize("span", [1, 7, 40, 10_000])
def test_line_ranges_that_tile_a_file_give_each_line_once(tmp_path: Path, span: int) -> None:
    """Quoted commas, CRLF ends, a line longer than the range, no final newline: the
    ranges' lines, joined, are the file's lines after the header."""
    text = b'a,b\r\n1,"x,y"\r\n' + b"2," + b"9" * 90 + b"\n3,4\n\n5,6"
    path = tmp_path / "t.csv"
    path.write_bytes(text)
    start = text.index(b"\n") + 1
    cuts = [*range(start, len(text), span), len(text)]
    joined = b"".join(csv_lines(str(path), a, b) for a, b in itertools.pairwise(cuts))
    assert joined == text[start:]


def test_pieces_hold_every_row_in_stored_order(files: Path, tmp_path: Path) -> None:
    X, y = table()
    gz = tmp_path / "table.csv.gz"
    gz.write_bytes(gzip.compress((files / "table.csv").read_bytes()))
    for path in (files / "table.csv", files / "table.parquet", gz):
        source = Stream(path, "y", chunk_rows=GROUP)
        chunks = list(source.read(source.pieces()))
        assert torch.equal(torch.cat([c[0] for c in chunks]), torch.from_numpy(X))
        assert torch.equal(torch.cat([c[1] for c in chunks]), torch.from_numpy(y))
    assert len(Stream(gz, "y").pieces()) == 1  # a compressed file is entered at its start


if __name__ == "__main__":
    worker(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
