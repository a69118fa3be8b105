"""Time of one ``step()`` of descend's update rules against torch.optim's, on the CPU.

For each rule (SGD, SGD with momentum, Adagrad, RMSprop, Adam, AdamW) and each layout of
10M float32 parameters (1 tensor, 100 tensors, 1,000 tensors) it times, in the same run:

* torch.optim's for-loop path (``foreach=False``, torch's default on the CPU),
  its ``foreach=True`` path, and its ``fused=True`` kernel where torch has one on the CPU
  (SGD, Adagrad, Adam, AdamW);
* descend's default path (blocked multi-tensor updates, no compiler) and
  descend's ``fused=True`` path (flat buffers and one compiled pass; the one-off compile
  is timed separately and excluded from the step times);
* the memory-bandwidth floor: the bytes the rule must move (read parameter, gradient and
  state, write parameter and state) over the bandwidth of a large tensor copy measured at
  the start of the run.

Every system steps its own copy of the same parameters and gradients (gradients stay in
place between steps, as after ``backward``). The systems are interleaved, one step each in
turn, so that load from other processes hits them alike; the tables give medians over the
repeats, the spread (25th-75th percentile), and ratios of medians.

Run: ``python benchmarks/optimizer_step.py`` (about 2-3 minutes on 2 cores), or
``--quick`` (1M parameters, fewer repeats), ``--no-fused`` (skip compiling), ``--only adam``.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import os
import platform
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import torch

import descend.optim

F32 = 4


@dataclass(frozen=True)
class Rule:
    """One update rule as a user would configure it in either library."""

    label: str
    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: elements of float32 read + written per parameter: parameter, gradient, state
    words: int = 0
    torch_fused: bool = True


RULES = [
    Rule("SGD", "SGD", {"lr": 1e-3}, words=3),  # read p, g; write p
    Rule("SGD momentum", "SGD", {"lr": 1e-3, "momentum": 0.9}, words=5),  # + buf read/write
    Rule("Adagrad", "Adagrad", {"lr": 1e-2}, words=5),  # p, g, sum; write p, sum
    Rule("RMSprop", "RMSprop", {"lr": 1e-3}, words=5, torch_fused=False),  # p, g, sq
    Rule("Adam", "Adam", {"lr": 1e-3}, words=7),  # p, g, m, v; write p, m, v
    Rule("AdamW", "AdamW", {"lr": 1e-3}, words=7),
]

SYSTEMS = ["torch loop", "torch foreach", "torch fused", "descend", "descend fused"]


#: the clock steps are timed with: wall time, or (--clock cpu) this process's CPU time, which
#: other processes' load does not inflate; with more than one thread it also counts the
#: worker threads' spinning, so use it with --threads 1
CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}


def copy_bandwidth(numel: int, clock: Any, repeats: int = 30) -> float:
    """Bytes per second of ``dst.copy_(src)`` for float32 tensors of ``numel`` elements
    (counting the read and the write), median over repeats."""
    src, dst = torch.randn(numel), torch.empty(numel)
    dst.copy_(src)
    times = []
    for _ in range(repeats):
        start = clock()
        dst.copy_(src)
        times.append(clock() - start)
    return 2 * numel * F32 / statistics.median(times)


def make_layout(
    numel: int, tensors: int, seed: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``tensors`` parameters of ``numel // tensors`` elements each, with gradients."""
    gen = torch.Generator().manual_seed(seed)
    size = numel // tensors
    params = [torch.randn(size, generator=gen) for _ in range(tensors)]
    grads = [torch.randn(size, generator=gen) for _ in range(tensors)]
    return params, grads


def build(system: str, rule: Rule, params: list[torch.Tensor], grads: list[torch.Tensor]) -> Any:
    """The optimizer of ``system`` on fresh copies of ``params`` (gradients attached)."""
    copies = [p.clone().requires_grad_() for p in params]
    for p, g in zip(copies, grads):
        p.grad = g.clone()
    if system.startswith("torch"):
        cls = getattr(torch.optim, rule.name)
        mode = {
            "torch loop": {"foreach": False},
            "torch foreach": {"foreach": True},
            "torch fused": {"fused": True},
        }[system]
        return cls(copies, **rule.kwargs, **mode)
    cls = getattr(descend.optim, rule.name)
    return cls(copies, **rule.kwargs, fused=system == "descend fused")


def time_step(opt: Any, clock: Any = time.perf_counter) -> float:
    start = clock()
    opt.step()
    return clock() - start


def measure(rule: Rule, tensors: int, args: argparse.Namespace) -> dict[str, Any]:
    """Step times (seconds) per system for one rule and layout, interleaved."""
    params, grads = make_layout(args.numel, tensors, seed=tensors)
    systems = [s for s in SYSTEMS if _wanted(s, rule, args)]
    opts = {s: build(s, rule, params, grads) for s in systems}
    del params, grads
    first = {s: time_step(opts[s]) for s in systems}  # state allocation; descend fused compiles
    for _ in range(args.warmup):
        for s in systems:
            time_step(opts[s])
    clock = CLOCK[args.clock]
    times: dict[str, list[float]] = {s: [] for s in systems}
    for r in range(args.repeats):
        order = systems[r % len(systems) :] + systems[: r % len(systems)]
        for s in order:
            times[s].append(time_step(opts[s], clock))
    del opts
    gc.collect()
    return {"times": times, "first": first}


def _wanted(system: str, rule: Rule, args: argparse.Namespace) -> bool:
    if system == "torch fused":
        return rule.torch_fused
    if system == "descend fused":
        return not args.no_fused
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numel", type=int, default=10_000_000, help="parameters in total")
    parser.add_argument("--layouts", default="1,100,1000", help="tensor counts, comma-separated")
    parser.add_argument("--only", default="", help="rules to run, e.g. 'adam,sgd momentum'")
    parser.add_argument("--repeats", type=int, default=15, help="timed steps per system")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per system")
    parser.add_argument("--no-fused", action="store_true", help="skip descend's fused=True")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCK),
        default="wall",
        help="wall time (default) or process CPU time (robust to load; "
        "meaningful with --threads 1)",
    )
    parser.add_argument("--quick", action="store_true", help="1M parameters, 7 repeats")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="compile into an empty Inductor cache, to time a first compile",
    )
    args = parser.parse_args()
    if args.cold:
        cache = tempfile.mkdtemp(prefix="descend-bench-")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        atexit.register(shutil.rmtree, cache, ignore_errors=True)
    if args.quick:
        args.numel, args.repeats, args.warmup = 1_000_000, 7, 2
    if args.threads:
        torch.set_num_threads(args.threads)
    layouts = [int(x) for x in args.layouts.split(",")]
    wanted = {x.strip().lower() for x in args.only.split(",") if x.strip()}
    rules = [r for r in RULES if not wanted or r.label.lower() in wanted]

    bandwidth = copy_bandwidth(args.numel, CLOCK[args.clock])
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    print(
        f"{args.numel:,} float32 parameters; {args.repeats} interleaved steps per system "
        f"after {args.warmup} warm-up steps; copy bandwidth {bandwidth / 1e9:.1f} GB/s"
    )
    print(f"step time in ms ({args.clock} clock): median [25th-75th percentile]\n")

    results = []
    for rule in rules:
        for tensors in layouts:
            out = measure(rule, tensors, args)
            floor = rule.words * F32 * args.numel / bandwidth
            results.append((rule, tensors, out, floor))
            _print_row(rule, tensors, out, floor, header=not results[:-1])
    _print_ratios(results)
    _print_compile(results)


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1e3


def _cell(values: list[float] | None) -> str:
    if not values:
        return "-"
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return f"{_median_ms(values):.1f} [{q[0] * 1e3:.1f}-{q[2] * 1e3:.1f}]"


def _print_row(rule: Rule, tensors: int, out: dict[str, Any], floor: float, header: bool) -> None:
    if header:
        line = (
            f"{'rule':<13}{'tensors':>8}" + "".join(f"{s:>21}" for s in SYSTEMS) + f"{'floor':>8}"
        )
        print(line)
        print("-" * len(line))
    cells = "".join(f"{_cell(out['times'].get(s)):>21}" for s in SYSTEMS)
    print(f"{rule.label:<13}{tensors:>8}{cells}{floor * 1e3:>8.1f}", flush=True)


def _ratio(a: list[float] | None, b: list[float] | float | None) -> str:
    if not a or b is None or (isinstance(b, list) and not b):
        return "-"
    den = b if isinstance(b, float) else statistics.median(b)
    return f"{statistics.median(a) / den:.2f}"


def _print_ratios(results: list[tuple[Rule, int, dict[str, Any], float]]) -> None:
    """Ratios of medians; goals: < 1 against torch's default, <= 1.25 against its fused."""
    print("\nratios of medians (lower is better for descend)")
    cols = [
        ("plain/default", "descend", "torch loop"),
        ("plain/foreach", "descend", "torch foreach"),
        ("fused/default", "descend fused", "torch loop"),
        ("fused/t.fused", "descend fused", "torch fused"),
        ("plain/floor", "descend", None),
        ("fused/floor", "descend fused", None),
        ("t.fused/floor", "torch fused", None),
    ]
    line = f"{'rule':<13}{'tensors':>8}" + "".join(f"{c[0]:>15}" for c in cols) + f"{'goals':>9}"
    print(line)
    print("-" * len(line))
    for rule, tensors, out, floor in results:
        t = out["times"]
        cells = "".join(
            f"{_ratio(t.get(ours), t.get(theirs) if theirs else floor):>15}"
            for _, ours, theirs in cols
        )
        print(f"{rule.label:<13}{tensors:>8}{cells}{_goals(t):>9}")
    print(
        "goals: descend faster than torch's default (for-loop) path, plain and fused; "
        "fused within 1.25x of torch's fused kernel where torch has one"
    )


def _goals(t: dict[str, list[float]]) -> str:
    med = {k: statistics.median(v) for k, v in t.items() if v}
    ok = med["descend"] < med["torch loop"]
    if "descend fused" in med:
        ok = ok and med["descend fused"] < med["torch loop"]
        if "torch fused" in med:
            ok = ok and med["descend fused"] <= 1.25 * med["torch fused"]
    return "met" if ok else "MISSED"


def _print_compile(results: list[tuple[Rule, int, dict[str, Any], float]]) -> None:
    firsts = [(r, n, o["first"]) for r, n, o, _ in results if "descend fused" in o["first"]]
    if not firsts:
        return
    print(
        "\nfirst step of descend fused=True (compiles the kernel unless cached; excluded above), "
        "s; torch fused first step for scale"
    )
    for rule, tensors, first in firsts:
        torch_first = first.get("torch fused")
        extra = f", torch fused {torch_first:.3f}" if torch_first is not None else ""
        print(f"  {rule.label:<13}{tensors:>6} tensors: {first['descend fused']:.2f}{extra}")


if __name__ == "__main__":
    main()
