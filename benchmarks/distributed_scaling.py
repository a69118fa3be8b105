"""Data-parallel `descend.fit` on 1 and 2 gloo processes of this machine: samples/s,
scaling efficiency and the bytes all-reduced per step.

The same run (an MLP 64-512-512-1 in float32, 32,768 rows, global batch 1,024, 2
epochs, Adam) is started by torchrun on N = 1 and N = 2 processes (`--standalone`); rank
0 times `fit` and reports rows/s. Per step DDP all-reduces every gradient once (4 bytes
per parameter), and fit adds the batch loss (8 bytes) and the callbacks' stop flag (8).

    python benchmarks/distributed_scaling.py          # the table
    python benchmarks/distributed_scaling.py --worker # one rank (torchrun runs this)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

ROWS, FEATURES, HIDDEN, BATCH, EPOCHS = 32_768, 64, 512, 1_024, 2


def worker() -> None:
    import torch
    from torch import nn

    import descend

    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(ROWS, FEATURES, generator=gen)
    y = X[:, :1].sin() + 0.1 * torch.randn(ROWS, 1, generator=gen)
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(FEATURES, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
        nn.Linear(HIDDEN, 1),
    )  # fmt: skip
    params = sum(p.numel() for p in net.parameters())
    start = time.perf_counter()
    res = descend.fit(
        net, "mse", (X, y), optimizer="adam", lr=1e-3, batch_size=BATCH, epochs=EPOCHS,
        seed=0, progress=False, monitors=None,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    if int(os.environ.get("RANK", 0)) == 0:
        print(json.dumps({
            "world": int(os.environ.get("WORLD_SIZE", 1)), "seconds": seconds,
            "rows_per_s": ROWS * EPOCHS / seconds, "steps": res.nit, "params": params,
            "loss": res.fun,
        }))  # fmt: skip


def launch(nproc: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         "--nproc-per-node", str(nproc), __file__, "--worker"],
        env=env, capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    runs = [launch(n) for n in (1, 2)]
    base = runs[0]["rows_per_s"]
    grad_bytes = 4 * runs[0]["params"]
    print(f"MLP {FEATURES}-{HIDDEN}-{HIDDEN}-1, {runs[0]['params']:,} parameters, "
          f"{ROWS:,} rows, global batch {BATCH}, {EPOCHS} epochs, Adam, float32")  # fmt: skip
    print(f"{'processes':>9} {'seconds':>8} {'rows/s':>9} {'speedup':>8} {'efficiency':>10}")
    for run in runs:
        speedup = run["rows_per_s"] / base
        print(
            f"{run['world']:>9} {run['seconds']:>8.2f} {run['rows_per_s']:>9,.0f} "
            f"{speedup:>8.2f} {speedup / run['world']:>10.0%}"
        )
    losses = f"{runs[0]['loss']:.6g} vs {runs[1]['loss']:.6g}"
    print(f"all-reduced per step: {grad_bytes:,} bytes of gradients + 16 bytes (loss, stop "
          f"flag); final loss, 1 vs 2 processes: {losses}")  # fmt: skip


if __name__ == "__main__":
    worker() if "--worker" in sys.argv else main()
