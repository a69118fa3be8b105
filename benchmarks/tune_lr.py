"""descend.tune against a dense grid: does a 30-trial Optuna study find the learning rate
the grid finds, and how many training epochs do the pruners save at an equal best score?

Data: scikit-learn's digits (1,797 rows, 10 classes), pixels / 16; every run holds out the
same seeded 20% as validation and is scored by its best validation loss over its epochs.
Models: logistic regression (64 -> 10) and an MLP (64 -> 64 ReLU -> 10), cross-entropy,
Adam (betas 0.9/0.999) with batches of 64 for ``--epochs`` (10) epochs; only the learning
rate is searched, log-uniform on [1e-4, 1].

Systems, in the same run, each trial/grid point a ``descend.fit`` with the same seed:

* ``grid``: ``--grid`` (49) learning rates, log-spaced on [1e-4, 1] (a factor 1.21 apart),
  each run for every epoch: the reference best rate;
* ``tpe``: ``descend.tune.tune_fit``, 30 trials, TPE, no pruning;
* ``tpe + median``, ``tpe + halving``, ``tpe + hyperband``: the same study with
  descend's named pruners (``descend.tune.named_pruner``: the median pruner and successive
  halving decide from half the epochs on, Hyperband hedges over brackets), each fed the
  best validation loss so far at each epoch by ``PruningCallback``.

Before the studies, the grid's runs measure why early pruning can mislead: among the
rates whose best loss is within 2x of the grid's best, Spearman's rank correlation of
the validation loss at epoch k, and of the best so far at epoch k, with the best over
all the epochs, and where the grid's best rate ranks at epoch k.

Every trial and grid point runs with the same seed (``run_seed``: the same starting
weights and batches), so the runs differ only in their learning rate.

Goals (issue 12): the tuned rate within a factor 2 of the grid's best; the pruned study
trains >= 40% fewer epochs at an equal best score: for one study, its best validation loss
within 2% of the unpruned study's; over ``--studies`` sampler seeds, the two mean bests
within one standard error of their difference (one study's best is a draw: see the rank
table).

Run: ``python benchmarks/tune_lr.py`` (a few minutes on 2 loaded cores), ``--quick``;
``--studies 5`` repeats each study over 5 sampler seeds (``--first-study``: the first).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import optuna
import torch
from optuna.distributions import FloatDistribution
from scipy.stats import spearmanr
from sklearn.datasets import load_digits
from torch import nn

from descend.train import fit
from descend.tune import SearchSpace, tune_fit

LOW, HIGH = 1e-4, 1.0
PRUNERS = (("none", "tpe"), ("median", "tpe + median"), ("halving", "tpe + halving"),
           ("hyperband", "tpe + hyperband"))  # fmt: skip


def models() -> dict[str, Callable[[], nn.Module]]:
    return {
        "logistic": lambda: nn.Linear(64, 10),
        "mlp": lambda: nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--grid", type=int, default=49)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--studies", type=int, default=1,
        help="repeat each study with this many sampler seeds (first-study, first-study+1, "
        "...); the data, the starting weights and the batches stay those of --seed",
    )  # fmt: skip
    parser.add_argument("--first-study", type=int, default=None, help="default: --seed")
    parser.add_argument("--models", default="logistic,mlp")
    parser.add_argument("--quick", action="store_true", help="5 epochs, 15 trials, 13 points")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.trials, args.grid = 5, 15, 13
    first = args.seed if args.first_study is None else args.first_study
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
    for name in args.models.split(","):
        build = models()[name]
        start = time.perf_counter()
        grid = np.logspace(np.log10(LOW), np.log10(HIGH), args.grid)
        scores, histories = [], []
        for lr in grid:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(args.seed)
                net = build()
            res = fit(net, "cross_entropy", data, optimizer="adam", lr=float(lr),
                      seed=args.seed, progress=False, monitors=None, **run)  # fmt: skip
            losses = np.array(res.epoch_history["val_loss"], dtype=float)
            scores.append(np.nanmin(losses) if np.isfinite(losses).any() else np.inf)
            # a run stopped early (diverged) holds its last loss for the epochs it lacks
            losses = np.where(np.isfinite(losses), losses, np.inf)
            histories.append(np.pad(losses, (0, args.epochs - len(losses)), mode="edge"))
        best = int(np.argmin(scores))
        grid_lr, grid_loss = float(grid[best]), float(scores[best])
        grid_time = time.perf_counter() - start
        print_ranks(name, np.array(histories), np.array(scores))
        found, repeats = {}, {}
        for pruner, _ in PRUNERS:
            studies = []
            for study_seed in range(first, first + args.studies):
                start = time.perf_counter()
                studies.append((tune_fit(
                    build, "cross_entropy", data, space=space, trials=args.trials,
                    pruner=pruner, seed=study_seed, run_seed=args.seed, **run,
                ), time.perf_counter() - start))  # fmt: skip
            found[pruner], repeats[pruner] = studies[0], [r for r, _ in studies]
        print(f"\n{name}")
        print(f"{'system':<16} {'best lr':>9} {'x grid':>7} {'best val loss':>13} "
              f"{'epochs':>7} {'pruned':>6} {'time s':>7}")  # fmt: skip
        print(f"{'grid':<16} {grid_lr:>9.3g} {1.0:>7.2f} {grid_loss:>13.4f} "
              f"{args.grid * args.epochs:>7d} {0:>6d} {grid_time:>7.1f}")  # fmt: skip
        for pruner, label in PRUNERS:
            res, seconds = found[pruner]
            lr = res.best_params["lr"]
            print(f"{label:<16} {lr:>9.3g} {lr / grid_lr:>7.2f} {res.best_value:>13.4f} "
                  f"{res.work:>7d} {res.pruned:>6d} {seconds:>7.1f}")  # fmt: skip
        plain = found["none"][0]
        ratio = max(plain.best_params["lr"] / grid_lr, grid_lr / plain.best_params["lr"])
        goals.append(f"goal {name}: tuned lr within 2x of the grid's best: x{ratio:.2f} "
                     f"{'met' if ratio <= 2 else 'NOT met'}")  # fmt: skip
        for pruner, _ in PRUNERS[1:]:
            pruned = found[pruner][0]
            saved = 1 - pruned.work / plain.work
            equal = pruned.best_value <= plain.best_value * 1.02
            goals.append(
                f"goal {name}, {pruner}: >= 40% fewer epochs at an equal best score (within "
                f"2%): {saved:.0%} fewer, best {pruned.best_value:.4f} vs "
                f"{plain.best_value:.4f}: {'met' if saved >= 0.4 and equal else 'NOT met'}"
            )
        if args.studies > 1:
            print(f"over {args.studies} sampler seeds ({first}..{first + args.studies - 1}): "
                  "best val loss mean (sd), epochs mean")  # fmt: skip
            for pruner, label in PRUNERS:
                best = np.array([r.best_value for r in repeats[pruner]])
                work = np.mean([r.work for r in repeats[pruner]])
                each = " ".join(f"{b:.4f}" for b in best)
                print(f"  {label:<16} {best.mean():.4f} ({best.std(ddof=1):.4f})  {work:7.0f}"
                      f"   each: {each}")  # fmt: skip
            plain_best = np.array([r.best_value for r in repeats["none"]])
            plain_work = np.mean([r.work for r in repeats["none"]])
            for pruner, _ in PRUNERS[1:]:
                best = np.array([r.best_value for r in repeats[pruner]])
                saved = 1 - np.mean([r.work for r in repeats[pruner]]) / plain_work
                # equal: the means differ by less than the standard error of their difference
                gap = best.mean() - plain_best.mean()
                noise = np.sqrt((best.var(ddof=1) + plain_best.var(ddof=1)) / args.studies)
                goals.append(
                    f"goal {name}, {pruner}, {args.studies} studies: >= 40% fewer epochs at "
                    f"an equal best score (means within 1 standard error of their difference): "
                    f"{saved:.0%} fewer, mean best {best.mean():.4f} vs {plain_best.mean():.4f} "
                    f"({gap / noise:+.1f} se): "
                    f"{'met' if saved >= 0.4 and gap < noise else 'NOT met'}"
                )
    print()
    print("\n".join(goals))


def print_ranks(name: str, histories: np.ndarray, best: np.ndarray) -> None:
    """How early epochs rank the contenders (grid rates whose best loss is within 2x of
    the grid's best) against their best over all epochs: Spearman's rho of the loss at
    epoch k and of the best so far at epoch k, and the rank of the grid's best rate."""
    near = best <= 2 * best.min()
    runs, overall = histories[near], best[near]
    winner = int(np.argmin(overall))
    print(f"\n{name}: {near.sum()} contenders (best val loss within 2x of the grid's best)")
    print(f"{'epoch':>5} {'rho(loss_k)':>11} {'rho(best_k)':>11} {'best rate ranks':>15}")
    for k in range(1, runs.shape[1] + 1):
        so_far = runs[:, :k].min(axis=1)
        rank = int((so_far < so_far[winner]).sum()) + 1
        now = spearmanr(runs[:, k - 1], overall).statistic
        kept = spearmanr(so_far, overall).statistic
        print(f"{k:>5} {now:>11.2f} {kept:>11.2f} {rank:>10d} of {near.sum()}")


if __name__ == "__main__":
    main()
