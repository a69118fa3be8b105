"""A training run for the kill-and-resume test (run as a separate process).

    python resume_script.py OUT_DIR [--block-at STEP] [--stream PARQUET] [--resume]

Trains a small network with dropout, shuffling, validation, a warmup + cosine schedule,
clipping, L1, early stopping, a step-level history log and a checkpoint every 7 steps.
With --block-at, a callback writes OUT_DIR/blocked and sleeps at that step, waiting to be
killed. At the end it saves the parameters and histories to OUT_DIR/final.pt.
"""

import argparse
import os
import sys
import time

import torch
from torch import nn

from descend import fit
from descend.callbacks import Callback, Checkpoint, HistoryLogger
from descend.train import stream


class BlockAt(Callback):
    def __init__(self, step, marker):
        self.step, self.marker = step, marker

    def on_step(self, result):
        if result.nit == self.step:
            with open(self.marker, "w") as handle:
                handle.write(str(result.nit))
            time.sleep(600)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--block-at", type=int, default=-1)
    parser.add_argument("--stream", default=None)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)

    g = torch.Generator().manual_seed(0)
    X = torch.randn(230, 5, generator=g)
    y = torch.sin(X @ torch.randn(5, generator=g)) + 0.1 * torch.randn(230, generator=g)
    data = (
        (X[:200], y[:200])
        if args.stream is None
        else stream(args.stream, target="y", chunk_rows=32, buffer_rows=64)
    )
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Dropout(0.1), nn.Linear(16, 1))

    ckpt = os.path.join(args.out, "run.ckpt")
    res = fit(
        model,
        "mse",
        data,
        optimizer="adam",
        lr=0.02,
        batch_size=20,
        epochs=4,
        seed=11,
        init="xavier",
        schedule={"name": "cosine", "warmup_steps": 5},
        clip_grad_norm=1.0,
        l1=1e-4,
        validation=(X[200:], y[200:]),
        early_stopping={"patience": 10},
        callbacks=[
            BlockAt(args.block_at, os.path.join(args.out, "blocked")),
            HistoryLogger(os.path.join(args.out, "steps.csv"), every="step"),
        ],
        checkpoint=Checkpoint(ckpt, every_steps=7, every_epochs=None, save_last=False),
        resume=True if args.resume else None,
        progress=False,
    )
    torch.save(
        {
            "params": [p.detach().clone() for p in model.parameters()],
            "loss": torch.as_tensor(res.history["loss"]),
            "grad_norm": torch.as_tensor(res.history["grad_norm"]),
            "lr": torch.as_tensor(res.history["lr"]),
            "epoch_loss": torch.as_tensor(res.epoch_history["loss"]),
            "val_loss": torch.as_tensor(res.epoch_history["val_loss"]),
            "nit": res.nit,
            "nfev": res.nfev,
            "status": res.status.value,
        },
        os.path.join(args.out, "final.pt"),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
