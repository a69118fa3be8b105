"""Data-parallel fit on 2 gloo processes started by torchrun ends at the parameters one
process reaches with the same global batch (float64, an MLP with dropout, a cosine
schedule, an uneven last batch); two launchers of one node each, meeting at one
rendezvous on loopback, end where one launcher of two processes does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

pytest.importorskip("torch.distributed")
HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import fit_worker  # noqa: E402

import descend  # noqa: E402
from descend.distributed.data_parallel import LAUNCHER_ENV  # noqa: E402
from descend.distributed.sharded_dropout import RowSlice, sharded_dropout  # noqa: E402

TIMEOUT = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(
    out: Path, *launcher: str, scenarios: tuple[str, ...], log: Path | None = None
) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_ENV}
    env["OMP_NUM_THREADS"] = "1"
    env["GLOO_SOCKET_IFNAME"] = "lo"  # loopback: the hostname may resolve elsewhere
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            *launcher,
            str(HERE / "fit_worker.py"),
            str(out),
            *scenarios,
        ],
        env=env,
        start_new_session=True,
        # two launchers at once write to files: a full pipe that nobody reads would stop
        # one node mid-run while the other waits for it in a collective
        stdout=subprocess.PIPE if log is None else log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )


def finished(*procs: subprocess.Popen) -> None:
    for proc in procs:
        try:
            output, _ = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:  # the launcher and its workers, all of them
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
        assert proc.returncode == 0, output[-3000:]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("two_processes")
    # --standalone: a rendezvous on a free local port torchrun picks itself
    launcher = ["--standalone", "--nproc-per-node", "2"]
    finished(torchrun(out, *launcher, scenarios=("momentum", "adam")))
    return out


def flat(params: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in params])


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_two_processes_end_where_one_process_does(two_processes: Path, name: str) -> None:
    one = fit_worker.train(name, False)
    two = torch.load(two_processes / f"{name}.pt")
    assert two["world"] == 2
    mine, theirs = flat(list(one.model.parameters())), flat(two["params"])
    assert torch.linalg.vector_norm(mine - theirs) <= 1e-10 * torch.linalg.vector_norm(mine)
    # the same losses, read from the all-reduced batches and validation shards
    assert two["loss"] == pytest.approx(list(one.epoch_history["loss"]), rel=1e-10)
    assert two["val_loss"] == pytest.approx(list(one.epoch_history["val_loss"]), rel=1e-10)


def two_nodes(out: Path) -> list[tuple[int, str]]:
    """Two launchers of one process each, meeting at a rendezvous on a free loopback port;
    each launcher's return code and output (both killed, whole, if one outlives TIMEOUT)."""
    port = str(free_port())
    nodes = [
        torchrun(
            out, "--nnodes", "2", "--node-rank", str(rank), "--nproc-per-node", "1",
            "--master-addr", "127.0.0.1", "--master-port", port, scenarios=("adam",),
            log=out / f"node{rank}.log",
        )
        for rank in (0, 1)
    ]  # fmt: skip
    deadline = time.monotonic() + TIMEOUT
    for proc in nodes:
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in nodes:
                if other.poll() is None:
                    os.killpg(other.pid, signal.SIGKILL)
            proc.wait()
    return [(p.returncode, (out / f"node{r}.log").read_text()) for r, p in enumerate(nodes)]


def test_two_nodes_on_loopback_equal_two_processes_of_one_launcher(
    two_processes: Path, tmp_path: Path
) -> None:
    # a port found free can be taken by another test's process before node 0's store binds
    # it (the nodes then wait on the wrong server): one more try on another port
    outcomes = two_nodes(tmp_path)
    if any(code != 0 for code, _ in outcomes):
        outcomes = two_nodes(tmp_path)
    for code, output in outcomes:
        assert code == 0, output[-3000:]
    two_nodes_run = torch.load(tmp_path / "adam.pt")
    one_node = torch.load(two_processes / "adam.pt")
    assert torch.equal(flat(two_nodes_run["params"]), flat(one_node["params"]))


def test_sharded_dropout_masks_are_the_rows_of_the_one_process_mask() -> None:
    """Each rank's slice, drawn from the same RNG state, is its rows of nn.Dropout's
    output on the whole batch; and every rank leaves the RNG where one process does."""
    layer = nn.Dropout(0.4).train()
    x = torch.randn(7, 5, dtype=torch.float64)
    torch.manual_seed(3)
    whole = layer(x)
    after = torch.get_rng_state()
    rows, pieces = RowSlice(), []
    for start, stop in [(0, 4), (4, 7), (7, 7)]:  # an empty share too
        torch.manual_seed(3)
        rows.set(start, stop, 7)
        with sharded_dropout(nn.Sequential(layer), rows):
            pieces.append(layer(x[start:stop]))
        assert torch.equal(torch.get_rng_state(), after)
    assert torch.equal(torch.cat(pieces), whole)
    assert "forward" not in vars(layer)  # restored


def test_distributed_true_without_a_process_group_says_how_to_start_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in LAUNCHER_ENV:
        monkeypatch.delenv(name, raising=False)
    X, y = fit_worker.data()
    with pytest.raises(ValueError, match="torchrun"):
        descend.fit(fit_worker.model(), "mse", (X, y), distributed=True, progress=False)


def test_sigkill_of_one_rank_stops_the_run_and_resume_ends_bit_identical(
    two_processes: Path, tmp_path: Path
) -> None:
    """Rank 1 dies mid-epoch 2 (step 17 of 11 per epoch; rank 0 saved at step 15): the
    launcher stops rank 0 and names the rank that failed, well within 60 s; resuming on 2
    processes ends bit-identical to the uninterrupted run."""

    checkpoint = str(tmp_path / "run.pt")
    launcher = ["--standalone", "--nproc-per-node", "2"]
    started = time.monotonic()
    killed = torchrun(
        tmp_path,
        *launcher,
        scenarios=("adam", "--checkpoint", checkpoint, "--kill-at", "17"),
    )
    try:
        output, _ = killed.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(killed.pid, signal.SIGKILL)
        raise
    assert time.monotonic() - started < 60
    assert killed.returncode != 0
    assert "SIGKILL" in output and "rank      : 1" in output
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["position"]["epoch"] == 1 and saved["position"]["batch_index"] > 0

    finished(
        torchrun(
            tmp_path,
            *launcher,
            scenarios=("adam", "--checkpoint", checkpoint, "--resume"),
        )
    )
    resumed = torch.load(tmp_path / "adam.pt")
    uninterrupted = torch.load(two_processes / "adam.pt")
    assert torch.equal(flat(resumed["params"]), flat(uninterrupted["params"]))
    assert resumed["loss"] == uninterrupted["loss"]
