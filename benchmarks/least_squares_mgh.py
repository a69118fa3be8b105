"""least_squares against SciPy's: the 35 Moré-Garbow-Hillstrom problems, and large sparse ones.

Part 1, the MGH set (``descend.problems.mgh``, 35 problems from their standard starts,
float64). For each of ``lm``, ``trf`` and ``dogbox``: descend's ``least_squares`` (Jacobian
by torch autodiff) against ``scipy.optimize.least_squares`` with the same method, SciPy's
default tolerances (ftol = xtol = gtol = 1e-8) and budget (100 n evaluations), given the
same residuals and the same exact Jacobian (the autodiff one, as ``jac=``), so the
comparison is of the algorithms and their overhead. "Solved": the sum of squares ends
within 1e-6 (1 + |f*|) of the known minimum f* (``LeastSquaresProblem.solved``). Reported:
problems solved, median residual evaluations over the problems both solve, and wall time
(the sum over problems of each run's minimum over ``--repeats`` interleaved runs).

Part 2, large and sparse: the Broyden tridiagonal problem (MGH 30) at n = 1,000 and
10,000 (and 100,000 without ``--quick``) by ``trf`` with ``tr_solver="lsmr"``: descend
matrix-free (Jacobian-vector products by ``torch.func.jvp``/``vjp``, CGLS inside) against
SciPy given the Jacobian's sparsity (``jac_sparsity``, finite differences by column
groups, LSMR inside), what a SciPy user does at that size. A dense Jacobian would take
8 n^2 bytes (800 MB at n = 10,000).

Everything runs single-threaded (torch and BLAS) so that other processes matter less.

Goals checked at the end: descend solves at least as many MGH problems as SciPy with
``lm`` and with ``trf``.

Run: ``python benchmarks/least_squares_mgh.py`` (a few minutes) or ``--quick``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import platform
import statistics
import time
import warnings

import numpy as np
import scipy
import scipy.sparse
import torch
from scipy.optimize import least_squares as scipy_least_squares

import descend
from descend.problems.mgh import MGH_PROBLEMS

METHODS = ("lm", "trf", "dogbox")


def _timed(call, repeats: int):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - start)
    return result, best


def _descend_mgh(problem, method: str):
    return descend.least_squares(problem.residuals, problem.x0(), method)


def _scipy_mgh(problem, method: str, jacobian):
    return scipy_least_squares(
        lambda x: problem.residuals(torch.from_numpy(x)).numpy(),
        np.array(problem.start),
        jac=lambda x: jacobian(torch.from_numpy(x)).numpy(),
        method=method,
    )


def mgh_table(repeats: int) -> dict[str, tuple[int, int]]:
    print("Part 1: the 35 MGH problems, standard starts, float64, SciPy's default tolerances")
    header = f"{'method':7} {'system':8} {'solved':>6} {'median nfev':>11} {'time (s)':>9}"
    print(header)
    print("-" * len(header))
    counts = {}
    for method in METHODS:
        rows: dict[str, list[tuple[bool, int, float]]] = {"descend": [], "scipy": []}
        for problem in MGH_PROBLEMS.values():
            jacobian = torch.func.jacfwd(problem.residuals)
            _descend_mgh(problem, method)  # warm up autodiff's first call
            calls = {
                "descend": functools.partial(_descend_mgh, problem, method),
                "scipy": functools.partial(_scipy_mgh, problem, method, jacobian),
            }
            for name, call in calls.items():
                res, seconds = _timed(call, repeats)
                rows[name].append((problem.solved(2 * res.cost), res.nfev, seconds))
        ours, theirs = rows["descend"], rows["scipy"]
        both = [i for i in range(len(ours)) if ours[i][0] and theirs[i][0]]
        times = {}
        for name, runs in rows.items():
            solved = sum(r[0] for r in runs)
            nfev = statistics.median(runs[i][1] for i in both)
            times[name] = sum(r[2] for r in runs)
            print(f"{method:7} {name:8} {solved:6d} {nfev:11.0f} {times[name]:9.3f}")
        print(f"{'':7} {'ratio':8} {'':6} {'':11} {times['descend'] / times['scipy']:8.2f}x")
        counts[method] = (sum(r[0] for r in ours), sum(r[0] for r in theirs))
    return counts


def _descend_large(residuals, x0):
    return descend.least_squares(residuals, x0, "trf", tr_solver="lsmr")


def _scipy_large(residuals, x0):
    n = x0.numel()
    sparsity = scipy.sparse.diags_array([1.0, 1.0, 1.0], offsets=[-1, 0, 1], shape=(n, n)).tocsr()
    return scipy_least_squares(
        lambda z: residuals(torch.from_numpy(z)).numpy(),
        x0.numpy(),
        method="trf",
        tr_solver="lsmr",
        jac_sparsity=sparsity,
    )


def large_table(sizes: list[int]) -> None:
    print("\nPart 2: Broyden tridiagonal, trf with tr_solver='lsmr'")
    header = f"{'n':>8} {'system':22} {'cost':>10} {'nfev':>5} {'time (s)':>9}"
    print(header)
    print("-" * len(header))
    residuals = MGH_PROBLEMS["mgh-broyden-tridiagonal"].residuals
    _descend_large(residuals, -torch.ones(10, dtype=torch.float64))  # autodiff's first call
    for n in sizes:
        # the residuals take any n; the start is MGH's (-1, ..., -1)
        x0 = -torch.ones(n, dtype=torch.float64)
        times = {}
        for name, run in (
            ("descend (matrix-free)", _descend_large),
            ("scipy (jac_sparsity)", _scipy_large),
        ):
            res, times[name] = _timed(functools.partial(run, residuals, x0), 1)
            print(f"{n:8d} {name:22} {res.cost:10.3g} {res.nfev:5d} {times[name]:9.3f}")
        ratio = times["descend (matrix-free)"] / times["scipy (jac_sparsity)"]
        print(f"{'':8} {'ratio':22} {'':10} {'':5} {ratio:8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat, smaller part 2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", DeprecationWarning)  # torch.func's own jit.script notice
    print(
        f"descend {descend.__version__}, torch {torch.__version__}, scipy {scipy.__version__}, "
        f"numpy {np.__version__}, Python {platform.python_version()}, {args.threads} thread(s)\n"
    )
    with contextlib.suppress(KeyboardInterrupt):
        counts = mgh_table(1 if args.quick else args.repeats)
        large_table([1_000, 10_000] if args.quick else [1_000, 10_000, 100_000])
        print("\nGoals:")
        for method in ("lm", "trf"):
            ours, theirs = counts[method]
            verdict = "met" if ours >= theirs else "NOT met"
            print(f"  {method}: descend solves {ours}, SciPy {theirs} of 35: {verdict}")


if __name__ == "__main__":
    main()
