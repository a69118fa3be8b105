"""Shared by the kill-and-resume tests: run resume_script.py, kill it, resume it, compare."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from descend.train import load_checkpoint

SCRIPT = Path(__file__).with_name("resume_script.py")


def launch(out, *extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(out), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish(proc, timeout=120):
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode()[-3000:]


def parquet(tmp_path):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(230, 5, generator=g)
    y = torch.sin(X @ torch.randn(5, generator=g)) + 0.1 * torch.randn(230, generator=g)
    frame = pd.DataFrame(X[:200].numpy(), columns=[f"x{i}" for i in range(5)])
    frame["y"] = y[:200].numpy()
    path = tmp_path / "train.parquet"
    frame.to_parquet(path, row_group_size=50)
    return str(path)


def sigkill_then_resume(tmp_path, extra):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    reference.mkdir()
    killed.mkdir()
    ref = launch(reference, *extra)
    # 10 batches per epoch; checkpoints at steps 7, 14, 21; blocked (and killed) at step 24,
    # mid-epoch 3, so steps 22-24 are lost and must be redone identically
    victim = launch(killed, "--block-at", "24", *extra)
    marker = killed / "blocked"
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert victim.poll() is None, victim.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the run never reached step 24"
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    state = load_checkpoint(killed / "run.ckpt")
    assert state["position"] == {"epoch": 2, "batch_index": 1, "data_ran_out": False}
    assert state["engine"]["nit"] == 21
    assert not [p for p in os.listdir(killed) if p.endswith(".tmp")]

    finish(launch(killed, "--resume", *extra))
    finish(ref)
    a = torch.load(reference / "final.pt")
    b = torch.load(killed / "final.pt")
    assert a["nit"] == b["nit"] == 40 and a["status"] == b["status"]
    for x, y in zip(a["params"], b["params"]):
        assert torch.equal(x, y)  # bitwise
    for key in ("loss", "grad_norm", "lr", "epoch_loss", "val_loss"):
        assert torch.equal(a[key], b[key]), key
    assert a["nfev"] == b["nfev"]
    # the step log was cut back to the checkpoint and continued: no lost or repeated rows
    assert without_time(reference / "steps.csv") == without_time(killed / "steps.csv")


def without_time(path):
    """The CSV log's rows without its wall-clock column."""
    rows = [line.split(",") for line in path.read_text().splitlines()]
    drop = rows[0].index("time")
    return [row[:drop] + row[drop + 1 :] for row in rows]
