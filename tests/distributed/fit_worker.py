"""One rank of a data-parallel fit, started by torchrun from the tests: it trains the
scenarios named on the command line and rank 0 saves each one's final parameters and
epoch losses to ``OUT/<scenario>.pt``. The parent process runs the same scenarios on one
process (:func:`train` with ``distributed=False``) and compares."""

from __future__ import annotations

import argparse
import os
import signal

import torch
from torch import nn

import descend
from descend.distributed.teardown import exit_when_done

#: global batch, rows (101 = 10 batches of 10 and one of 1: one rank holds no row of it)
BATCH, ROWS = 10, 101

SCENARIOS = {
    "momentum": {"optimizer": "momentum", "lr": 0.05, "momentum": 0.9, "schedule": "cosine"},
    "adam": {"optimizer": "adam", "lr": 0.01, "schedule": "cosine"},
}


def data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(ROWS, 5, generator=gen, dtype=torch.float64)
    y = torch.sin(X.sum(1, keepdim=True)) + 0.1 * torch.randn(
        ROWS, 1, generator=gen, dtype=torch.float64
    )
    return X, y


def model() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Dropout(0.3), nn.Linear(16, 1)).double()


def train(name: str, distributed: bool | None, **extra: object) -> descend.train.FitResult:
    """One scenario: an MLP with dropout and a cosine schedule, 3 epochs of batches of
    10, a validation set; the same seed everywhere."""
    X, y = data()
    return descend.fit(
        model(),
        "mse",
        (X[:81], y[:81]) if extra.pop("short", False) else (X, y),
        batch_size=BATCH,
        epochs=3,
        seed=7,
        validation=(X[:20] * 0.5, y[:20]),
        progress=False,
        distributed=distributed,
        **SCENARIOS[name],
        **extra,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("scenarios", nargs="+")
    parser.add_argument("--checkpoint", help="save every 3 steps here")
    parser.add_argument("--resume", action="store_true", help="resume from --checkpoint")
    parser.add_argument("--kill-at", type=int, help="rank 1 SIGKILLs itself after this step")
    args = parser.parse_args()
    extra: dict[str, object] = {}
    if args.checkpoint:
        extra["checkpoint"] = descend.callbacks.Checkpoint(args.checkpoint, every_steps=3)
        extra["resume"] = args.resume
    if args.kill_at and int(os.environ["RANK"]) == 1:
        extra["callbacks"] = [
            lambda result: result.nit == args.kill_at and os.kill(os.getpid(), signal.SIGKILL)
        ]
    for name in args.scenarios:
        result = train(name, None, **extra)
        if int(os.environ["RANK"]) == 0:
            torch.save(
                {
                    "params": [p.detach() for p in result.model.parameters()],
                    "loss": [float(v) for v in result.epoch_history["loss"]],
                    "val_loss": [float(v) for v in result.epoch_history["val_loss"]],
                    "world": int(os.environ["WORLD_SIZE"]),
                },
                os.path.join(args.out, f"{name}.pt"),
            )


if __name__ == "__main__":
    main()
    # every rank is done and rank 0 has saved: leave without the interpreter's teardown,
    # where torch's gloo threads can still abort a finished rank under load
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
    exit_when_done()
