"""An MLP on the digits: descend's MLPClassifier against scikit-learn's, time per epoch and
test accuracy, with the cost of each layer underneath.

Data: scikit-learn's digits (1,797 images of 8x8 pixels, 10 classes), a stratified 80/20
train/test split (1,437 training rows), features standardized on the training rows.
Model everywhere: 64 -> 100 (ReLU) -> 10, softmax cross-entropy, Adam (lr 1e-3, betas
0.9/0.999, eps 1e-8), mini-batches of 200 drawn in a new order every epoch, L2 penalty
equal to scikit-learn's ``alpha=1e-4`` (descend's ``alpha = 1e-4 / 200``: scikit-learn
divides by the batch size), Glorot-uniform weights, no early stopping (every system runs
exactly the epochs asked).

Systems, all in the same process, interleaved, on the same data and dtype:

* ``sklearn``: ``sklearn.neural_network.MLPClassifier`` (NumPy);
* ``descend estimator``: ``descend.estimators.MLPClassifier``;
* ``descend.fit``: ``descend.fit`` on the same ``nn.Sequential`` with the optimizer the
  estimator builds (``descend.optim.Adam``, the L2 gradient as weight decay on the
  weights): the estimator's work without its input checks and bookkeeping;
* ``torch loop, descend Adam + decay``: a plain loop (``index_select`` batches) with that
  optimizer;
* ``torch loop, torch Adam, no L2``: the same loop with ``torch.optim.Adam`` and no
  penalty, the floor of a torch training step at this size.

Time per epoch is the slope between runs of ``--short`` and ``--long`` epochs (setup such
as validation, conversions and the first-call warm-up cancels), median over ``--repeats``
interleaved rounds; the end-to-end time of the long run is shown too. Test accuracy after
the long run, mean over the seeds of the rounds.

Goal: descend's estimator time per epoch <= 1.0x scikit-learn's, at equal accuracy.

Run: ``python benchmarks/mlp_digits.py`` (about a minute), ``--dtype float32``,
``--threads 1 --clock cpu`` on a loaded machine, ``--quick``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits
from torch import nn

import descend
from descend.estimators import MLPClassifier
from descend.init import initialize

HIDDEN, BATCH, LR, ALPHA_SKLEARN = 100, 200, 1e-3, 1e-4
ALPHA = ALPHA_SKLEARN / BATCH


def data(dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, random_state=0, stratify=y
    )
    scaler = StandardScaler().fit(X_train)
    return (
        scaler.transform(X_train).astype(dtype),
        scaler.transform(X_test).astype(dtype),
        y_train,
        y_test,
    )


def network(dtype: torch.dtype, seed: int) -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        net = nn.Sequential(nn.Linear(64, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 10)).to(dtype)
    return initialize(net, "xavier", seed=seed)


def accuracy(net: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((net(torch.from_numpy(X)).argmax(1).numpy() == y).mean())


# -- the systems: run(epochs, seed) -> (seconds, test accuracy) ---------------------------


def sklearn_system(d, clock):
    from sklearn.neural_network import MLPClassifier as SkMLP

    X, X_test, y, y_test = d

    def run(epochs: int, seed: int) -> tuple[float, float]:
        model = SkMLP(
            (HIDDEN,), alpha=ALPHA_SKLEARN, batch_size=BATCH, learning_rate_init=LR,
            max_iter=epochs, tol=0.0, n_iter_no_change=10**9, random_state=seed,
        )  # fmt: skip
        start = clock()
        model.fit(X, y)
        return clock() - start, model.score(X_test, y_test)

    return run


def estimator_system(d, clock):
    X, X_test, y, y_test = d

    def run(epochs: int, seed: int) -> tuple[float, float]:
        model = MLPClassifier(
            (HIDDEN,), alpha=ALPHA, batch_size=BATCH, lr=LR, max_epochs=epochs, tol=0.0,
            n_iter_no_change=10**9, random_state=seed,
        )  # fmt: skip
        start = clock()
        model.fit(X, y)
        return clock() - start, model.score(X_test, y_test)

    return run


def decayed_adam(net: nn.Module) -> torch.optim.Optimizer:
    """descend's Adam with the L2 gradient as weight decay on the weights (not biases):
    what the estimator builds for a mini-batch Adam run."""
    named = list(net.named_parameters())
    weights = [p for name, p in named if not name.endswith("bias")]
    biases = [p for name, p in named if name.endswith("bias")]
    return descend.optim.Adam(
        [{"params": weights, "weight_decay": ALPHA}, {"params": biases}], lr=LR
    )


def fit_system(d, clock):
    X, X_test, y, y_test = d
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def run(epochs: int, seed: int) -> tuple[float, float]:
        net = network(Xt.dtype, seed)
        start = clock()
        descend.fit(
            net, "cross_entropy", (Xt, yt), optimizer=decayed_adam(net), batch_size=BATCH,
            epochs=epochs, seed=seed, monitors=None, progress=False,
        )  # fmt: skip
        return clock() - start, accuracy(net, X_test, y_test)

    return run


def loop_system(d, clock, *, decay: bool):
    X, X_test, y, y_test = d
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def run(epochs: int, seed: int) -> tuple[float, float]:
        net = network(Xt.dtype, seed)
        opt = decayed_adam(net) if decay else torch.optim.Adam(net.parameters(), lr=LR)
        generator = torch.Generator().manual_seed(seed)
        start = clock()
        for _ in range(epochs):
            order = torch.randperm(len(Xt), generator=generator)
            for i in range(0, len(Xt), BATCH):
                index = order[i : i + BATCH]
                opt.zero_grad()
                loss = F.cross_entropy(net(Xt.index_select(0, index)), yt.index_select(0, index))
                loss.backward()
                opt.step()
        return clock() - start, accuracy(net, X_test, y_test)

    return run


def profile_fit(d, epochs: int) -> dict[str, float]:
    """Seconds per step inside descend.fit's step, by piece: wrappers with a clock around
    the Trainer's methods (about 1 us each), on one run."""
    import importlib

    from descend.train.regularization import GradientClipper

    # the modules (descend.train's names are the functions)
    fit_module = importlib.import_module("descend.train.fit")
    data_module = importlib.import_module("descend.train.data")

    spent: dict[str, float] = {}
    originals = []

    def timed(owner, name: str, label: str) -> None:
        original = getattr(owner, name)
        originals.append((owner, name, original))

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - start

        setattr(owner, name, wrapper)

    X, _, y, _ = d
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    net = network(Xt.dtype, 0)
    optimizer = decayed_adam(net)
    engine_module = importlib.import_module("descend.engine.loop")
    timed(engine_module.Engine, "run", "loop (all)")
    timed(fit_module.Trainer, "_evaluate", "forward, backward, gradient norm")
    timed(GradientClipper, "__call__", "gradient norm")
    timed(type(optimizer), "step", "optimizer step")
    timed(fit_module.Trainer, "epoch_end", "epoch ends")
    timed(fit_module.Trainer, "result", "results for callbacks")
    original_batches = data_module.InMemory.batches

    def batches(self, *args, **kwargs):
        iterator = original_batches(self, *args, **kwargs)
        while True:
            start = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                return
            finally:
                spent["drawing batches"] = spent.get("drawing batches", 0.0) + (
                    time.perf_counter() - start
                )
            yield item

    data_module.InMemory.batches = batches
    try:
        start = time.perf_counter()
        descend.fit(
            net, "cross_entropy", (Xt, yt), optimizer=optimizer, batch_size=BATCH,
            epochs=epochs, seed=0, monitors=None, progress=False,
        )  # fmt: skip
        spent["fit (all)"] = time.perf_counter() - start
    finally:
        data_module.InMemory.batches = original_batches
        for owner, name, original in originals:
            setattr(owner, name, original)
    steps = epochs * -(-len(X) // BATCH)
    return {label: seconds / steps for label, seconds in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--short", type=int, default=10, help="epochs of the short run")
    parser.add_argument("--long", type=int, default=60, help="epochs of the long run")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--threads", type=int, default=None, help="torch and BLAS threads")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--quick", action="store_true", help="5 and 25 epochs, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.short, args.long, args.repeats = 5, 25, 1
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    limits = threadpool_limits(args.threads) if args.threads else contextlib.nullcontext()
    warnings.simplefilter("ignore", ConvergenceWarning)

    d = data(np.dtype(args.dtype))
    systems = {
        "sklearn": sklearn_system(d, clock),
        "descend estimator": estimator_system(d, clock),
        "descend.fit": fit_system(d, clock),
        "torch loop, descend Adam + decay": loop_system(d, clock, decay=True),
        "torch loop, torch Adam, no L2": loop_system(d, clock, decay=False),
    }
    steps = -(-len(d[0]) // BATCH)
    with limits:
        print(
            f"digits MLP 64-{HIDDEN}-10, {len(d[0])} training rows, batch {BATCH} "
            f"({steps} steps/epoch), {args.dtype}; torch {torch.__version__}, "
            f"{platform.processor() or platform.machine()}, threads {torch.get_num_threads()}, "
            f"clock {args.clock}, load average {os.getloadavg()[0]:.1f}"
        )
        for run in systems.values():  # warm-up: first calls, lazy imports, allocator
            run(1, 0)
        short: dict[str, list[float]] = {name: [] for name in systems}
        long: dict[str, list[float]] = {name: [] for name in systems}
        accuracies: dict[str, list[float]] = {name: [] for name in systems}
        for round_ in range(args.repeats):
            names = list(systems) if round_ % 2 == 0 else list(reversed(systems))
            for name in names:
                short[name].append(systems[name](args.short, round_)[0])
                seconds, acc = systems[name](args.long, round_)
                long[name].append(seconds)
                accuracies[name].append(acc)

    span = args.long - args.short
    per_epoch = {
        name: statistics.median([(b - a) / span for a, b in zip(short[name], long[name])])
        for name in systems
    }
    base = per_epoch["sklearn"]
    print()
    print(
        f"{'system':32s} {'ms/epoch':>9s} {'ms/step':>8s} {'x sklearn':>9s} "
        f"{'fit ' + str(args.long) + ' ep (s)':>14s} {'test acc':>9s}"
    )
    for name in systems:
        print(
            f"{name:32s} {per_epoch[name] * 1e3:9.2f} {per_epoch[name] / steps * 1e3:8.3f} "
            f"{per_epoch[name] / base:9.2f} {statistics.median(long[name]):14.3f} "
            f"{np.mean(accuracies[name]):9.4f}"
        )
    ours = per_epoch["descend estimator"] / base
    gap = np.mean(accuracies["descend estimator"]) - np.mean(accuracies["sklearn"])
    print(
        f"\ndescend estimator / sklearn time per epoch = {ours:.2f}x "
        f"(goal <= 1.0x: {'met' if ours <= 1.0 else 'NOT met'}); test accuracy "
        f"{gap * 100:+.2f} points"
    )
    layers = [
        ("torch loop, torch Adam, no L2", "torch's forward and backward, torch's Adam"),
        ("torch loop, descend Adam + decay", "descend's Adam with the L2 weight decay instead"),
        ("descend.fit", "fit's loop: batches, closure, gradient norm, history, callbacks"),
        ("descend estimator", "the estimator: input checks, conversions, early-stop callback"),
    ]
    print("where a step's time goes (per step; change from the line above):")
    below = None
    for name, what in layers:
        cost = per_epoch[name] / steps
        change = "" if below is None else f"{(cost - below) * 1e6:+8.1f} us"
        print(f"  {cost * 1e6:8.1f} us {change:>11s}  {what}")
        below = cost
    with limits:
        pieces = profile_fit(d, args.long)
    # the engine's loop less the epoch ends and the batches it draws: the steps themselves
    inside = (
        pieces["loop (all)"] - pieces.get("epoch ends", 0.0) - pieces.get("drawing batches", 0.0)
    )
    evaluate = pieces["forward, backward, gradient norm"]
    rest = inside - evaluate - pieces["optimizer step"]
    print(f"inside descend.fit, per step (one instrumented run, wall clock, {args.long} epochs):")
    rows = [
        ("drawing batches", pieces.get("drawing batches", 0.0)),
        ("forward and backward", evaluate - pieces["gradient norm"]),
        ("gradient norm (history, divergence test)", pieces["gradient norm"]),
        ("optimizer step", pieces["optimizer step"]),
        ("step bookkeeping (closure cache, history, logs, tests)", rest),
        ("results for callbacks", pieces.get("results for callbacks", 0.0)),
        ("epoch ends (mean loss, best weights, callbacks)", pieces.get("epoch ends", 0.0)),
        ("setup and the rest", pieces["fit (all)"] - inside - pieces.get("epoch ends", 0.0)
         - pieces.get("drawing batches", 0.0)),
    ]  # fmt: skip
    for label, seconds in rows:
        print(f"  {seconds * 1e6:8.1f} us  {label}")
    print(f"  {pieces['fit (all)'] * 1e6:8.1f} us  total")


if __name__ == "__main__":
    main()
