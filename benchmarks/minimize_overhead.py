"""Per-iteration cost of ``descend.minimize`` against a hand-written torch loop.

Both run the same number of Adam iterations on 2-D Rosenbrock from (-1.2, 1) in float64:

* hand loop: ``opt.zero_grad(); f = rosen(x); f.backward(); opt.step()`` with
  ``torch.optim.Adam`` (torch's default CPU path);
* ``descend.minimize(rosen, x0, method=..., max_iter=N, gtol=0, ftol=0)``, which on top of
  the same evaluation and update records f, the gradient norm, the step norm, the learning
  rate, the time and the evaluation counts every iteration, applies every stopping test
  and keeps the best iterate.

The two are interleaved (hand, descend, hand, descend, ...) so that load from other
processes hits both alike; each run's time includes its setup (building the optimizer,
converting x0, the result), divided by N. The table gives the median microseconds per
iteration, the spread (min-max over repeats) and the ratio descend / hand.

Run: ``python benchmarks/minimize_overhead.py`` (about 30 s) or ``--quick`` (a few s).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

import descend

#: descend method name -> the torch.optim constructor a user would write by hand
TORCH_EQUIVALENT = {
    "gd": lambda params, lr: torch.optim.SGD(params, lr=lr),
    "momentum": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9),
    "nesterov": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True),
    "adagrad": lambda params, lr: torch.optim.Adagrad(params, lr=lr),
    "rmsprop": lambda params, lr: torch.optim.RMSprop(params, lr=lr),
    "adam": lambda params, lr: torch.optim.Adam(params, lr=lr),
}
X0 = (-1.2, 1.0)


def rosen(x: torch.Tensor) -> torch.Tensor:
    """2-D Rosenbrock, f* = 0 at (1, 1)."""
    head, tail = x[:-1], x[1:]
    return (100.0 * (tail - head**2) ** 2 + (1.0 - head) ** 2).sum()


#: wall time, or (--clock cpu) this process's CPU time, which other processes' load does
#: not inflate (both systems run on one thread here: the tensors have two elements)
CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCK["wall"]


def hand_loop(method: str, iters: int, lr: float) -> float:
    """Seconds for ``iters`` iterations of the loop a torch user writes by hand."""
    start = clock()
    x = torch.tensor(X0, dtype=torch.float64, requires_grad=True)
    opt = TORCH_EQUIVALENT[method]([x], lr)
    for _ in range(iters):
        opt.zero_grad()
        f = rosen(x)
        f.backward()
        opt.step()
    return clock() - start


def descend_run(method: str, iters: int, lr: float) -> float:
    """Seconds for ``descend.minimize`` to take exactly ``iters`` iterations."""
    start = clock()
    res = descend.minimize(
        rosen, list(X0), method=method, lr=lr, max_iter=iters, gtol=0.0, ftol=0.0
    )
    elapsed = clock() - start
    if res.nit != iters:
        raise RuntimeError(f"minimize stopped after {res.nit} of {iters} iterations: {res.message}")
    return elapsed


def measure(method: str, iters: int, repeats: int, lr: float) -> dict[str, list[float]]:
    """Microseconds per iteration of each system, one list entry per repeat, interleaved."""
    hand_loop(method, max(iters // 10, 10), lr)  # warm up both (allocator, dispatch caches)
    descend_run(method, max(iters // 10, 10), lr)
    out: dict[str, list[float]] = {"hand": [], "descend": []}
    for _ in range(repeats):
        out["hand"].append(hand_loop(method, iters, lr) / iters * 1e6)
        out["descend"].append(descend_run(method, iters, lr) / iters * 1e6)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--methods",
        default="adam",
        help=f"comma-separated, from {', '.join(TORCH_EQUIVALENT)} (default adam)",
    )
    parser.add_argument("--iters", type=int, default=2000, help="iterations per run")
    parser.add_argument("--repeats", type=int, default=15, help="interleaved runs per system")
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate for both")
    parser.add_argument("--quick", action="store_true", help="500 iterations, 5 repeats")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCK),
        default="wall",
        help="wall time (default) or process CPU time (robust to load)",
    )
    args = parser.parse_args()
    global clock
    clock = CLOCK[args.clock]
    if args.quick:
        args.iters, args.repeats = 500, 5
    if args.threads:
        torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        if m not in TORCH_EQUIVALENT:
            parser.error(f"unknown method {m!r}; choose from {', '.join(TORCH_EQUIVALENT)}")

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    print(
        f"2-D Rosenbrock, float64, {args.iters} iterations x {args.repeats} interleaved "
        f"repeats, lr {args.lr:g}; us per iteration, {args.clock} clock (median, min-max)\n"
    )
    header = f"{'method':<10}{'hand loop':>22}{'descend.minimize':>24}{'ratio':>8}{'goal':>7}"
    print(header)
    print("-" * len(header))
    for method in methods:
        times = measure(method, args.iters, args.repeats, args.lr)
        hand, ours = statistics.median(times["hand"]), statistics.median(times["descend"])
        ratios = [d / h for d, h in zip(times["descend"], times["hand"])]
        ratio = ours / hand
        print(
            f"{method:<10}{_cell(times['hand']):>22}{_cell(times['descend']):>24}"
            f"{ratio:>8.2f}{'met' if ratio <= 1.3 else 'MISSED':>7}"
        )
        print(
            f"{'':<10}paired ratios per repeat: median {statistics.median(ratios):.2f}, "
            f"min {min(ratios):.2f}, max {max(ratios):.2f}"
        )
    print("\ngoal: descend / hand <= 1.3")


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.0f}-{max(values):.0f})"


if __name__ == "__main__":
    main()
