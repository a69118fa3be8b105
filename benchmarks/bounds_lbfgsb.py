"""Bounded lbfgs against SciPy's L-BFGS-B: SciPy's bounded problems, random boxes around
the minimizers of the 35 Moré-Garbow-Hillstrom problems, and a large box-constrained
Rosenbrock chain.

Part 1, small problems. SciPy's bounded test problems (the Hock-Schittkowski problems of
``scipy/optimize/tests/test_tnc.py``) and seeded random boxes around each MGH minimizer
(three per problem; ``--quick``: the 8 small problems of the tests, one box each), from
the standard start projected into the box. descend's ``minimize(..., "L-BFGS-B",
bounds=...)`` (SciPy's tolerances: ftol 2.2e-9, projected gtol 1e-5, maxiter 15000)
against ``scipy.optimize.minimize(..., method="L-BFGS-B")`` given the same function and
the same exact gradient (torch autodiff, as ``jac=True``). "Solved": feasible and f within
1e-6 (relative) + 1e-9 of the better of the two finals. Also: projected ``adam`` and
``gd`` (300 iterations) end feasible on every problem. Wall time: the sum over problems of
each run's minimum over ``--repeats`` interleaved runs.

Part 2, large: the chained Rosenbrock function :math:`\\sum_i 100 (x_{i+1} - x_i^2)^2 +
(1 - x_i)^2` on the box :math:`[-2, 0.5]^n` (the upper bound cuts the minimizer off)
from :math:`x_0 = (-1.2, 1, -1.2, \\dots)` projected, at n = 1,000 and 100,000
(10,000 with ``--quick``): time, f and evaluations of each.

Goal checked at the end: descend solves at least as many small problems as SciPy, and
every projected first-order end is feasible.

Run: ``python benchmarks/bounds_lbfgsb.py`` (a few minutes) or ``--quick``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy
import torch

import descend
from descend.problems.mgh import MGH_PROBLEMS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "constraints"))
from bounded_problems import (
    MGH_NAMES,
    SCIPY_PROBLEMS,
    Bounded,
    mgh_boxes,
    run_descend,
    run_scipy,
    solved,
)


def _best_of(call, repeats: int):
    outcome = min((call() for _ in range(repeats)), key=lambda o: o.time)
    return outcome


def small(quick: bool, repeats: int) -> bool:
    run_descend(SCIPY_PROBLEMS[0])  # warm-up: first-call imports and allocations
    run_scipy(SCIPY_PROBLEMS[0])
    names = MGH_NAMES if quick else tuple(MGH_PROBLEMS)
    problems = [*SCIPY_PROBLEMS, *mgh_boxes(names, count=1 if quick else 3)]
    rows, counts, times, infeasible = [], [0, 0], [0.0, 0.0], []
    for problem in problems:
        ours = _best_of(lambda p=problem: run_descend(p), repeats)
        theirs = _best_of(lambda p=problem: run_scipy(p), repeats)
        best = min(ours.fun, theirs.fun)
        marks = [solved(ours, best, problem), solved(theirs, best, problem)]
        counts = [c + m for c, m in zip(counts, marks)]
        times = [times[0] + ours.time, times[1] + theirs.time]
        for method, lr in (("adam", 1e-2), ("gd", 1e-3)):
            end = run_descend(problem, method, max_iter=300, lr=lr)
            if not problem.feasible(end.x):
                infeasible.append(f"{method} on {problem.name}")
        if not all(marks):
            rows.append(f"  {problem.name:32s} descend f {ours.fun:<14.8g} ({ours.nfev:4d} evals)"
                        f"  scipy f {theirs.fun:<14.8g} ({theirs.nfev:4d} evals)")  # fmt: skip
    print(f"\nPart 1: {len(problems)} bounded problems ({len(SCIPY_PROBLEMS)} from SciPy's "
          f"tests, {len(problems) - len(SCIPY_PROBLEMS)} MGH boxes)")  # fmt: skip
    print(f"  {'':12s} {'solved':>8s} {'time (s)':>10s}")
    print(f"  {'descend':12s} {counts[0]:>8d} {times[0]:>10.3f}")
    print(f"  {'scipy':12s} {counts[1]:>8d} {times[1]:>10.3f}")
    print(f"  time ratio descend / scipy: {times[0] / times[1]:.2f}")
    if rows:
        print("  problems not solved by both:")
        print("\n".join(rows))
    print(f"  projected adam and gd ends outside the box: {len(infeasible)} {infeasible or ''}")
    return counts[0] >= counts[1] and not infeasible


def chained_rosenbrock(x: torch.Tensor) -> torch.Tensor:
    return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()


def large(sizes: list[int]) -> None:
    print("\nPart 2: chained Rosenbrock on [-2, 0.5]^n")
    print(f"  {'n':>8s} {'descend s':>10s} {'scipy s':>10s} {'ratio':>7s} "
          f"{'descend f':>14s} {'scipy f':>14s} {'evals':>11s}")  # fmt: skip
    for n in sizes:
        x0 = np.tile([-1.2, 1.0], n // 2)
        problem = Bounded(f"chain-{n}", chained_rosenbrock, x0.tolist(), [(-2.0, 0.5)] * n)
        ours = run_descend(problem)
        theirs = run_scipy(problem)
        ratio = ours.time / theirs.time
        evals = f"{ours.nfev}/{theirs.nfev}"
        print(f"  {n:>8d} {ours.time:>10.3f} {theirs.time:>10.3f} {ratio:>7.2f} "
              f"{ours.fun:>14.8g} {theirs.fun:>14.8g} {evals:>11s}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 MGH problems, one box each")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per problem")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"descend {descend.__version__}, torch {torch.__version__}, scipy {scipy.__version__}, "
          f"Python {platform.python_version()}, 1 thread")  # fmt: skip
    started = time.perf_counter()
    ok = small(args.quick, 1 if args.quick else args.repeats)
    large([1_000, 10_000] if args.quick else [1_000, 100_000])
    print(f"\ngoal (solves >= scipy, every projected end feasible): {'met' if ok else 'NOT met'}"
          f"  [{time.perf_counter() - started:.0f} s]")  # fmt: skip


if __name__ == "__main__":
    main()
