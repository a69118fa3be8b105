"""``descend fit --nproc 2``: the command run on 2 gloo ranks by torch's elastic launcher
saves the model ``--nproc 1`` saves with the same global batch (float64 throughout: the
CSV's columns, the network, the all-reduced gradients), which ``descend predict`` reads
alike, and ``descend runs rerun`` repeats bit for bit on 2 ranks; a failed rank is one
line; bad launch options and ``--resume`` without a checkpoint file are refused before
anything runs; ``--checkpoint``/``--resume`` ends where an uninterrupted run does.

The two-process run and the two one-process nodes are subprocesses (``python -m descend``)
in their own sessions, their output in files, killed whole past ``TIMEOUT``; the
one-process runs are in this process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from descend.cli import app
from descend.cli.common import UsageError
from descend.cli.launch import Launch, RankFailed
from descend.distributed.data_parallel import LAUNCHER_ENV
from descend.estimators.persist import load

sys.path.insert(0, str(Path(__file__).parent))  # rank_faults, which the ranks import

TIMEOUT = 120
#: 203 rows, 20% held out: 162 training rows in batches of 16, an uneven last batch
ROWS, BATCH, EPOCHS = 203, 16, 3
MODEL = ["--model", "mlp-classifier", "--batch-size", str(BATCH), "--seed", "3", "--no-record"]
TRAINING = ["--target", "label", *MODEL, "--epochs", str(EPOCHS)]
RECORDED = [option for option in TRAINING if option != "--no-record"]

runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def assert_one_line_error(code: int, stderr: str, *fragments: str) -> None:
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three text labels from four features, seeded."""
    folder = tmp_path_factory.mktemp("table")
    rng = np.random.default_rng(11)
    X = rng.normal(size=(ROWS, 4)) * [1.0, 3.0, 0.5, 2.0]
    score = X @ [1.0, -0.3, 2.0, 0.2] + 0.5 * rng.normal(size=ROWS)
    label = np.where(score > 0.8, "high", np.where(score < -0.8, "low", "mid"))
    lines = ["a,b,c,d,label"] + [
        ",".join([*(repr(float(v)) for v in row), name]) for row, name in zip(X, label)
    ]
    path = folder / "data.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def descend_subprocesses(folder: Path, *commands: tuple[object, ...]) -> list[tuple[int, str]]:
    """``python -m descend ARGS`` for each of ``commands`` at once, in ``folder``: each
    one's exit code and output (stdout, then stderr), read from files. Past TIMEOUT every
    one still running is killed whole, its launcher and its ranks."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_ENV and k != "COLUMNS"}
    env.update(OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo", DESCEND_HOME=str(folder))
    logs = [(folder / f"stdout{i}.txt", folder / f"stderr{i}.txt") for i in range(len(commands))]
    procs = []
    for args, (out, err) in zip(commands, logs):
        with out.open("w") as stdout, err.open("w") as stderr:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "descend", *map(str, args)],
                    cwd=folder,
                    env=env,
                    stdout=stdout,
                    stderr=stderr,
                    start_new_session=True,
                )
            )
    deadline = time.monotonic() + TIMEOUT
    try:
        for proc in procs:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return [(p.returncode, out.read_text() + err.read_text()) for p, (out, err) in zip(procs, logs)]


@pytest.fixture(scope="module")
def two_processes(table: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("two")
    command = ("fit", table, *RECORDED, "--nproc", "2", "--save", folder / "two.pt")
    [(code, output)] = descend_subprocesses(folder, command)
    assert code == 0, output[-3000:]
    return folder / "two.pt", output


def parameters(path: Path) -> torch.Tensor:
    estimator, _ = load(path)
    return torch.cat([p.detach().flatten() for p in estimator._module.parameters()])


def test_two_processes_save_the_model_one_process_saves(
    table: Path, two_processes: tuple[Path, str], tmp_path: Path
) -> None:
    two, stdout = two_processes
    assert "on 2 processes" in stdout and "saved the model to" in stdout
    one = tmp_path / "one.pt"
    result = invoke("fit", table, *TRAINING, "--save", one)
    assert result.exit_code == 0, result.output
    assert "on 2 processes" not in result.stdout

    mine, theirs = parameters(one), parameters(two)
    assert mine.dtype == torch.float64
    # float64 all-reduces reorder the sums of each step's gradient: rounding, no more
    assert torch.linalg.vector_norm(mine - theirs) <= 1e-10 * torch.linalg.vector_norm(mine)
    one_extra, two_extra = load(one)[1], load(two)[1]
    assert len(two_extra["loss_curve"]) == EPOCHS
    for curve in ("loss_curve", "validation_loss_curve"):
        assert two_extra[curve] == pytest.approx(one_extra[curve], rel=1e-10)

    predictions = [invoke("predict", model, table) for model in (one, two)]
    assert all(p.exit_code == 0 for p in predictions), predictions[0].output
    assert predictions[0].stdout == predictions[1].stdout
    assert predictions[0].stdout.count("\n") == ROWS + 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_nodes(folder: Path, table: Path) -> list[tuple[int, str]]:
    """Two machines' commands, one process each, meeting at node 0's port on loopback."""
    port = free_port()
    return descend_subprocesses(
        folder,
        *[
            ("fit", table, *TRAINING, "--nnodes", "2", "--node-rank", rank,
             "--master-port", port, "--save", folder / f"node{rank}.pt")
            for rank in (0, 1)
        ],
    )  # fmt: skip


def test_two_nodes_on_loopback_save_the_model_of_two_processes_of_one(
    table: Path, two_processes: tuple[Path, str], tmp_path: Path
) -> None:
    """The static rendezvous of --nnodes 2 --node-rank R --master-port P: the same ranks,
    shares and sums as --nproc 2, so the same bits; node 1 (not rank 0) saves nothing."""
    outcomes = two_nodes(tmp_path, table)
    if any(code != 0 for code, _ in outcomes):  # the free port was taken before node 0 bound it
        outcomes = two_nodes(tmp_path, table)
    for code, output in outcomes:
        assert code == 0, output[-3000:]
    assert torch.equal(parameters(tmp_path / "node0.pt"), parameters(two_processes[0]))
    assert not (tmp_path / "node1.pt").exists()


def test_runs_rerun_repeats_a_two_process_run_on_two_processes_bit_for_bit(
    two_processes: tuple[Path, str],
) -> None:
    """The record keeps --nproc 2, so the rerun runs on 2 ranks: the same sums in the same
    order, every number identical (one process would differ in the last bits)."""
    two, stdout = two_processes
    assert "recorded as run 1" in stdout
    rerun = invoke("runs", "rerun", "1", "--db", two.parent / "runs.sqlite")
    assert rerun.exit_code == 0, rerun.output
    assert "identical" in rerun.stdout


def test_a_user_error_on_the_ranks_is_the_command_s_own_line_exit_2(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every rank reads the table and meets the same mistake: said as one process says it
    (not as a failed rank), and a usage error's exit code."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    with pytest.raises(UsageError) as refused:
        Launch(nproc=2).run("rank_faults", "refuse_on_every_rank", {}, rank_zero_only={})
    assert not isinstance(refused.value, RankFailed)
    assert refused.value.format_message() == "'data.csv' has no column 'nosuch' (--target)"
    assert refused.value.exit_code == 2


def test_a_crashed_rank_is_named_in_one_line_with_exit_code_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    with pytest.raises(RankFailed) as failed:
        Launch(nproc=2).run("rank_faults", "crash_on_rank_one", {}, rank_zero_only={})
    assert failed.value.format_message() == "rank 1 of 2 failed: RuntimeError: the disk is full"
    assert failed.value.exit_code == 1


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (["--nproc", "0"], "--nproc must be an integer >= 1, got 0"),
        (["--nnodes", "2", "--node-rank", "2"], "--node-rank must be in [0, --nnodes) = [0, 2)"),
        (["--node-rank", "-1"], "--node-rank must be in [0, --nnodes) = [0, 1), got -1"),
        (["--nproc", "2", "--master-port", "70000"], "--master-port must be in [1, 65535]"),
        (["--nproc", "2", "--master-addr", " "], "--master-addr must name a host"),
        (["--resume"], "--resume continues from a checkpoint file: give --checkpoint"),
        (["--resume", "--checkpoint", "none.pt"], "no checkpoint file 'none.pt'"),
    ],
)
def test_bad_launch_and_resume_options_are_one_line(
    table: Path, options: list[str], fragment: str
) -> None:
    result = invoke("fit", table, *TRAINING, *options)
    assert_one_line_error(result.exit_code, result.stderr, fragment)


def test_checkpoint_and_resume_end_where_an_uninterrupted_run_does(
    table: Path, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "run.ckpt"
    common = ["--target", "label", *MODEL]
    saved = ["--checkpoint", checkpoint]
    stopped = invoke("fit", table, *common, *saved, "--epochs", "1")
    assert stopped.exit_code == 0 and checkpoint.is_file(), stopped.output
    resumed = invoke("fit", table, *common, *saved, "--resume", "--epochs", "4", "--save",
                     tmp_path / "r.pt")  # fmt: skip
    straight = invoke("fit", table, *common, "--epochs", "4", "--save", tmp_path / "s.pt")
    assert resumed.exit_code == 0 and straight.exit_code == 0, resumed.output + straight.output
    assert torch.equal(parameters(tmp_path / "r.pt"), parameters(tmp_path / "s.pt"))
    assert load(tmp_path / "r.pt")[1]["loss_curve"] == load(tmp_path / "s.pt")[1]["loss_curve"]
    # the run read the checkpoint: one of another seed is refused
    other = invoke("fit", table, *common[:-3], "--seed", "4", "--no-record", *saved, "--resume")
    assert_one_line_error(other.exit_code, other.stderr, "seed")
