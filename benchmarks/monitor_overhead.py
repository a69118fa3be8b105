"""What the default health monitors cost: time per step with them on and off.

Two workloads, each run with ``monitors="default"`` and ``monitors=None``:

* ``minimize``: 2-D Rosenbrock from (-1.2, 1), float64, ``max_iter`` iterations with
  ``gtol=0, ftol=0`` (so every run takes all of them), for a few methods. This is the
  worst case for relative overhead: a step costs microseconds, so any Python work per
  step shows.
* ``fit``: an MLP 64-32-10 on scikit-learn's digits (1,797 rows), cross-entropy, Adam,
  batch size 64, 10 epochs (290 steps); the network monitors (layer gradients, dead
  ReLUs) and the gradient noise monitor join the standard set. Skipped with a message
  when ``descend.fit`` does not take ``monitors=``.

The on and off runs are interleaved (off, on, on, off, ...) after a garbage collection, so
that load from other processes hits both alike; each run's time is the process CPU time
(``time.process_time``: waiting for a shared core does not count) including its setup and
the monitors' end-of-run work (a saddle check when the gradient is small), divided by the
steps taken. The table
gives the median microseconds per step over the repeats, the spread (min-max) and the
overhead ``on / off - 1``. Goal: at most 5 %.

Run: ``python benchmarks/monitor_overhead.py`` (about a minute) or ``--quick``.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import platform
import statistics
import time
from collections.abc import Callable

import torch

import descend

X0 = (-1.2, 1.0)
METHODS = {"gd": 1e-3, "momentum": 1e-4, "adam": 1e-2, "lbfgs": None}


def rosen(x: torch.Tensor) -> torch.Tensor:
    """2-D Rosenbrock, f* = 0 at (1, 1)."""
    head, tail = x[:-1], x[1:]
    return (100.0 * (tail - head**2) ** 2 + (1.0 - head) ** 2).sum()


def time_minimize(method: str, iters: int, monitors: object) -> float:
    """Seconds per step of one ``minimize`` run."""
    lr = METHODS[method]
    options = {} if lr is None else {"lr": lr}
    start = time.process_time()
    res = descend.minimize(
        rosen, X0, method, max_iter=iters, gtol=0.0, ftol=0.0, monitors=monitors, **options
    )
    return (time.process_time() - start) / max(res.nit, 1)


def digits_workload() -> Callable[[object], float] | None:
    """A function ``monitors -> seconds per step`` of ``fit`` on digits, or None."""
    if "monitors" not in inspect.signature(descend.fit).parameters:
        return None
    from sklearn.datasets import load_digits

    data = load_digits()
    X = torch.tensor(data.data / 16.0, dtype=torch.float32)
    y = torch.tensor(data.target, dtype=torch.long)

    def run(monitors: object) -> float:
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)
        )
        start = time.process_time()
        res = descend.fit(
            model,
            "cross_entropy",
            (X, y),
            optimizer="adam",
            lr=1e-3,
            batch_size=64,
            epochs=10,
            seed=0,
            progress=False,
            monitors=monitors,
        )
        return (time.process_time() - start) / max(res.nit, 1)

    return run


def measure(run: Callable[[object], float], repeats: int) -> tuple[list[float], list[float]]:
    """``repeats`` timings each, interleaved, the order flipped every repeat, after a
    garbage collection, so that neither setting inherits the other's garbage or load."""
    times: dict[object, list[float]] = {None: [], "default": []}
    run(None)  # warm up caches and lazy imports (LAPACK for the monitors, too)
    run("default")
    for k in range(repeats):
        for setting in (None, "default") if k % 2 == 0 else ("default", None):
            gc.collect()
            times[setting].append(run(setting))
    return times[None], times["default"]


def row(name: str, off: list[float], on: list[float]) -> str:
    m_off, m_on = statistics.median(off), statistics.median(on)
    spread = f"{min(off) * 1e6:.0f}-{max(off) * 1e6:.0f} / {min(on) * 1e6:.0f}-{max(on) * 1e6:.0f}"
    return (
        f"{name:<24} {m_off * 1e6:>9.1f} {m_on * 1e6:>9.1f} {spread:>26} "
        f"{(m_on / m_off - 1) * 100:>+8.1f} %"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    parser.add_argument("--iters", type=int, default=None, help="iterations per minimize run")
    parser.add_argument("--repeats", type=int, default=None, help="runs per setting")
    args = parser.parse_args()
    iters = args.iters or (500 if args.quick else 3000)
    repeats = args.repeats or (3 if args.quick else 7)
    torch.set_num_threads(1)

    print(f"descend {descend.__version__}, torch {torch.__version__}, {platform.processor()}")
    print(f"median us/step over {repeats} interleaved runs; minimize: {iters} iterations\n")
    print(f"{'workload':<24} {'off':>9} {'on':>9} {'spread off / on (us)':>26} {'overhead':>10}")
    for method in METHODS:
        off, on = measure(lambda m, method=method: time_minimize(method, iters, m), repeats)
        print(row(f"minimize rosenbrock {method}", off, on))
    workload = digits_workload()
    if workload is None:
        print("fit digits MLP: skipped (descend.fit does not take monitors= yet)")
    else:
        off, on = measure(workload, repeats)
        print(row("fit digits MLP adam", off, on))


if __name__ == "__main__":
    main()
