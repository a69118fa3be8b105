"""Federated strategies on label-skewed clients: FedAvg, FedProx, FedAvgM, FedAdam and FedYogi on
the digits, rounds to 90% test accuracy and the final accuracy, same seed, same budget.

Data: scikit-learn's digits (1,797 images of 8x8 pixels, 10 classes), a stratified 75/25
train/test split, pixels / 16. The 1,347 training rows are dealt to ``--clients`` clients
(20) by a Dirichlet(``--alpha``) label split (0.1: most clients hold one or two labels)
and, as the reference, IID. Model: 64 -> 64 (ReLU) -> 10, cross-entropy, the same
starting weights for every strategy. Each round every client (``--fraction`` 1) trains
``--local-epochs`` epochs (2) of batches of 16 by ``descend.fit`` with Nesterov momentum
(lr 0.05); the server then applies the strategy:

* ``fedavg``: the row-weighted mean of the client models;
* ``fedprox``: the same server, each client's loss + mu/2 |w - w_global|^2 (mu 0.1);
* ``fedavgm``: server momentum 0.9 on the pseudo-gradient, server lr 1;
* ``fedadam``: Adam on the pseudo-gradient (server lr 0.01, betas 0.9/0.99, eps 1e-3);
* ``fedyogi``: Yogi on the pseudo-gradient (the same settings, v0 = 1e-6).

Goal (issue 12): the table for alpha = 0.1, and IID FedAvg >= 95%.

Run: ``python benchmarks/federated_strategies.py`` (a few minutes on 2 loaded cores),
``--quick`` (10 rounds), ``--rounds 30 --alpha 0.5``, ``--plots docs/images/federated``
(the partition and the accuracy per round).
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from descend.federated import (
    fedadam,
    fedavg,
    fedavgm,
    fedprox,
    fedyogi,
    label_counts,
    plot_partition,
    plot_rounds,
    simulate,
)

STRATEGIES = {
    "fedavg": lambda: fedavg(),
    "fedprox": lambda: fedprox(mu=0.1),
    "fedavgm": lambda: fedavgm(server_momentum=0.9, server_lr=1.0),
    "fedadam": lambda: fedadam(server_lr=1e-2),
    "fedyogi": lambda: fedyogi(server_lr=1e-2),
}


def mlp() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def rounds_to(accuracy: np.ndarray, level: float) -> float:
    hit = np.flatnonzero(accuracy >= level)
    return float(hit[0] + 1) if hit.size else math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--alpha", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--local-epochs", type=int, default=2)
    parser.add_argument("--fraction", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="10 rounds")
    parser.add_argument(
        "--plots", metavar="DIR", help="save partition.png and accuracy.png in this folder"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rounds = 10 if args.quick else args.rounds

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)
    common = {
        "clients": args.clients, "rounds": rounds, "fraction": args.fraction,
        "local_epochs": args.local_epochs, "local_batch_size": 16, "optimizer": "nesterov",
        "lr": 0.05, "test": (Xte, yte), "metric": "accuracy", "seed": args.seed,
    }  # fmt: skip
    runs = [("iid", "fedavg")] + [("dirichlet", name) for name in STRATEGIES]
    print(
        f"digits: {len(ytr)} training rows, {len(yte)} test rows; {args.clients} clients, "
        f"{rounds} rounds, {args.local_epochs} local epochs, fraction {args.fraction}, "
        f"seed {args.seed}"
    )
    rows, results = [], {}
    for partition, name in runs:
        start = time.perf_counter()
        res = simulate(
            mlp(), "cross_entropy", (Xtr, ytr), partition=partition, alpha=args.alpha,
            strategy=STRATEGIES[name](), **common,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        acc = res.history["test_metric"]
        if partition == "dirichlet" and name == "fedavg":
            counts = label_counts(ytr, res.parts)
            share = (counts.max(1).values / counts.sum(1)).double().mean().item()
            print(
                f"dirichlet alpha={args.alpha:g}: a client's top label is {share:.0%} of its rows"
            )
        label = "IID" if partition == "iid" else f"Dir({args.alpha:g})"
        results[f"{label} {name}"] = res
        if args.plots and partition == "dirichlet" and name == "fedavg":
            os.makedirs(args.plots, exist_ok=True)
            title = f"Dirichlet({args.alpha:g}) over {args.clients} clients"
            plot_partition(counts, os.path.join(args.plots, "partition.png"), title=title)
        rows.append((label, name, rounds_to(acc, 0.90), acc.max(), acc[-1], seconds))

    print(f"\n{'partition':<10} {'strategy':<9} {'rounds to 90%':>13} {'best acc':>9} "
          f"{'final acc':>9} {'time s':>7}")  # fmt: skip
    for label, name, r90, best, final, seconds in rows:
        r90_text = "-" if math.isnan(r90) else f"{r90:.0f}"
        print(f"{label:<10} {name:<9} {r90_text:>13} {best:>9.3f} {final:>9.3f} {seconds:>7.1f}")
    if args.plots:
        plot_rounds(results, os.path.join(args.plots, "accuracy.png"),
                    title=f"digits, {args.clients} clients: test accuracy per round")  # fmt: skip
    iid_final = rows[0][4]
    print(f"\ngoal: IID FedAvg final accuracy >= 0.95: {iid_final:.3f} "
          f"{'met' if iid_final >= 0.95 else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()
