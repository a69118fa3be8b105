"""descend.tune against a dense grid: does a 30-trial Optuna study find the learning rate
the grid finds, and how many training epochs does the median pruner save?

Data: scikit-learn's digits (1,797 rows, 10 classes), pixels / 16; every run holds out the
same seeded 20% as validation and is scored by its best validation loss over its epochs.
Models: logistic regression (64 -> 10) and an MLP (64 -> 64 ReLU -> 10), cross-entropy,
Adam (betas 0.9/0.999) with batches of 64 for ``--epochs`` (10) epochs; only the learning
rate is searched, log-uniform on [1e-4, 1].

Systems, in the same run, each trial/grid point a ``descend.fit`` with the same seed:

* ``grid``: ``--grid`` (25) learning rates, log-spaced on [1e-4, 1] (a factor 1.47 apart),
  each run for every epoch: the reference best rate;
* ``tpe``: ``descend.tune.tune_fit``, 30 trials, TPE, no pruning;
* ``tpe + median``: the same study with the median pruner (a trial stops at an epoch
  where its value is worse than the median of earlier trials at that epoch);
* ``tpe + halving``: with the successive-halving pruner (Optuna's defaults).

Every trial and grid point runs with the same seed (``run_seed``: the same starting
weights and batches), so the runs differ only in their learning rate.

Goals (issue 12): the tuned rate within a factor 2 of the grid's best; the pruned study
trains >= 40% fewer epochs at an equal best score (its best validation loss within 2% of
the unpruned study's).

Run: ``python benchmarks/tune_lr.py`` (about two minutes on 2 loaded cores), ``--quick``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import optuna
import torch
from optuna.distributions import FloatDistribution
from sklearn.datasets import load_digits
from torch import nn

from descend.train import fit
from descend.tune import SearchSpace, tune_fit

LOW, HIGH = 1e-4, 1.0


def models() -> dict[str, Callable[[], nn.Module]]:
    return {
        "logistic": lambda: nn.Linear(64, 10),
        "mlp": lambda: nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--grid", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--studies", type=int, default=1,
        help="repeat each study with this many sampler seeds (seed, seed+1, ...); the data, "
        "the starting weights and the batches stay those of --seed",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="5 epochs, 15 trials, 13 points")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.trials, args.grid = 5, 15, 13
    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    X, y = load_digits(return_X_y=True)
    X, y = torch.tensor(X / 16.0, dtype=torch.float32), torch.tensor(y)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(args.seed))
    train, held = order[: len(y) * 4 // 5], order[len(y) * 4 // 5 :]
    data = (X[train], y[train])
    space = SearchSpace({"adam": {"lr": FloatDistribution(LOW, HIGH, log=True)}})
    run = {"validation": (X[held], y[held]), "epochs": args.epochs, "batch_size": 64}
    print(f"digits: {len(y)} rows (20% validation), adam, batches of 64, {args.epochs} epochs; "
          f"{args.trials} trials, grid of {args.grid}, seed {args.seed}")  # fmt: skip
    goals = []
    for name, build in models().items():
        start = time.perf_counter()
        grid = np.logspace(np.log10(LOW), np.log10(HIGH), args.grid)
        scores = []
        for lr in grid:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(args.seed)
                net = build()
            res = fit(net, "cross_entropy", data, optimizer="adam", lr=float(lr),
                      seed=args.seed, progress=False, monitors=None, **run)  # fmt: skip
            losses = res.epoch_history["val_loss"]
            scores.append(np.nanmin(losses) if np.isfinite(losses).any() else np.inf)
        best = int(np.argmin(scores))
        grid_lr, grid_loss = float(grid[best]), float(scores[best])
        grid_time = time.perf_counter() - start
        found, repeats = {}, {}
        for pruner in ("none", "median", "halving"):
            studies = []
            for study_seed in range(args.seed, args.seed + args.studies):
                start = time.perf_counter()
                studies.append((tune_fit(
                    build, "cross_entropy", data, space=space, trials=args.trials,
                    pruner=pruner, seed=study_seed, run_seed=args.seed, **run,
                ), time.perf_counter() - start))  # fmt: skip
            found[pruner], repeats[pruner] = studies[0], [r for r, _ in studies]
        print(f"\n{name}")
        print(f"{'system':<14} {'best lr':>9} {'x grid':>7} {'best val loss':>13} "
              f"{'epochs':>7} {'pruned':>6} {'time s':>7}")  # fmt: skip
        print(f"{'grid':<14} {grid_lr:>9.3g} {1.0:>7.2f} {grid_loss:>13.4f} "
              f"{args.grid * args.epochs:>7d} {0:>6d} {grid_time:>7.1f}")  # fmt: skip
        labels = (("none", "tpe"), ("median", "tpe + median"), ("halving", "tpe + halving"))
        for pruner, label in labels:
            res, seconds = found[pruner]
            lr = res.best_params["lr"]
            print(f"{label:<14} {lr:>9.3g} {lr / grid_lr:>7.2f} {res.best_value:>13.4f} "
                  f"{res.work:>7d} {res.pruned:>6d} {seconds:>7.1f}")  # fmt: skip
        plain = found["none"][0]
        ratio = max(plain.best_params["lr"] / grid_lr, grid_lr / plain.best_params["lr"])
        goals.append(f"goal {name}: tuned lr within 2x of the grid's best: x{ratio:.2f} "
                     f"{'met' if ratio <= 2 else 'NOT met'}")  # fmt: skip
        for pruner in ("median", "halving"):
            pruned = found[pruner][0]
            saved = 1 - pruned.work / plain.work
            equal = pruned.best_value <= plain.best_value * 1.02
            goals.append(
                f"goal {name}, {pruner}: >= 40% fewer epochs at an equal best score (within "
                f"2%): {saved:.0%} fewer, best {pruned.best_value:.4f} vs "
                f"{plain.best_value:.4f}: {'met' if saved >= 0.4 and equal else 'NOT met'}"
            )
        if args.studies > 1:
            print(f"over {args.studies} sampler seeds: best val loss mean (sd), epochs mean")
            for pruner, label in labels:
                best = np.array([r.best_value for r in repeats[pruner]])
                work = np.mean([r.work for r in repeats[pruner]])
                print(f"  {label:<14} {best.mean():.4f} ({best.std(ddof=1):.4f})  {work:7.0f}")
            plain_best = np.array([r.best_value for r in repeats["none"]])
            plain_work = np.mean([r.work for r in repeats["none"]])
            for pruner in ("median", "halving"):
                best = np.array([r.best_value for r in repeats[pruner]])
                saved = 1 - np.mean([r.work for r in repeats[pruner]]) / plain_work
                # equal: the mean best is within the unpruned studies' own spread
                gap = best.mean() - plain_best.mean()
                noise = plain_best.std(ddof=1) / np.sqrt(len(plain_best))
                goals.append(
                    f"goal {name}, {pruner}, {args.studies} studies: >= 40% fewer epochs at "
                    f"an equal best score (mean within 2 standard errors): {saved:.0%} fewer, "
                    f"mean best {best.mean():.4f} vs {plain_best.mean():.4f} (se {noise:.4f}): "
                    f"{'met' if saved >= 0.4 and gap <= 2 * noise else 'NOT met'}"
                )
    print()
    print("\n".join(goals))


if __name__ == "__main__":
    main()
