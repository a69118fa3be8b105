"""descend's quasi-Newton and Newton methods against SciPy's on the Moré-Garbow-Hillstrom set.

Each pair runs every problem of :mod:`descend.problems.mgh` from its standard start, in
float64, with the same derivatives (SciPy gets f, the gradient and Hessian-vector
products from torch autodiff of the same function), the same iteration budget and the
same stopping tests wherever the two libraries share one:

=============  ===========  ==========================================================
descend        SciPy        stopping tests (both sides)
=============  ===========  ==========================================================
lbfgs          L-BFGS-B     gradient <= 1e-8 (SciPy: projected, max-norm); relative f
                            change <= 2.2e-9 (the same test on both sides); m = 10
bfgs           BFGS         2-norm of the gradient <= 1e-8 (SciPy has no f test)
trust-region   trust-ncg    2-norm of the gradient <= 1e-8 (SciPy has no f test)
newton-cg      Newton-CG    descend: gradient <= 1e-8; SciPy's only test is the step,
                            sum |dx| <= n xtol, with xtol = 1e-12
=============  ===========  ==========================================================

A problem counts as solved when :math:`f \\le f^* + 10^{-6}(1 + |f^*|)`. descend must solve
at least as many problems as SciPy with each pair.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np
import pytest
import scipy.optimize
import torch

import descend
from descend.problems.mgh import MGH_PROBLEMS, LeastSquaresProblem

BUDGET = 100  # iterations, both sides
GTOL = 1e-8

PAIRS = {
    "lbfgs": ("L-BFGS-B", {"gtol": GTOL}, {"gtol": GTOL, "ftol": 2.2e-9, "maxcor": 10}),
    "bfgs": ("BFGS", {"gtol": GTOL, "ftol": 0.0}, {"gtol": GTOL, "norm": 2}),
    "trust-region": ("trust-ncg", {"gtol": GTOL, "ftol": 0.0}, {"gtol": GTOL}),
    "newton-cg": ("Newton-CG", {"gtol": GTOL, "ftol": 0.0}, {"xtol": 1e-12}),
}


def _single_threaded_blas():
    """SciPy's BLAS with one thread: on a shared machine OpenBLAS threads spin and make
    L-BFGS-B 100x slower, which only costs time here but would skew any timing."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return contextlib.nullcontext()
    return threadpool_limits(1)


def scipy_functions(problem: LeastSquaresProblem):
    """f with its gradient, and the Hessian-vector product, from torch autodiff."""
    fn = problem.fn

    def value_and_grad(x: np.ndarray):
        t = torch.from_numpy(x).requires_grad_(True)
        value = fn(t)
        (grad,) = torch.autograd.grad(value, t)
        return value.item(), grad.numpy()

    def hessp(x: np.ndarray, v: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(x).requires_grad_(True)
        (grad,) = torch.autograd.grad(fn(t), t, create_graph=True)
        (hv,) = torch.autograd.grad(grad, t, torch.from_numpy(np.ascontiguousarray(v)))
        return hv.numpy()

    return value_and_grad, hessp


def run_scipy(problem: LeastSquaresProblem, method: str, options: dict) -> float:
    value_and_grad, hessp = scipy_functions(problem)
    extra = {"hessp": hessp} if method in ("trust-ncg", "Newton-CG") else {}
    opts = {"maxiter": BUDGET, **options}
    if method == "L-BFGS-B":
        opts["maxfun"] = 20 * BUDGET
    with warnings.catch_warnings(), np.errstate(all="ignore"), _single_threaded_blas():
        warnings.simplefilter("ignore")
        res = scipy.optimize.minimize(
            value_and_grad, np.array(problem.start), jac=True, method=method, options=opts,
            **extra,
        )  # fmt: skip
    return float(res.fun)


def run_descend(problem: LeastSquaresProblem, method: str, options: dict) -> float:
    x0 = torch.tensor(problem.start, dtype=torch.float64)
    res = descend.minimize(problem.fn, x0, method, max_iter=BUDGET, **options)
    return float(res.fun)


@pytest.mark.parametrize("method", list(PAIRS))
def test_descend_solves_at_least_as_many_problems_as_scipy(method: str) -> None:
    scipy_method, ours, theirs = PAIRS[method]
    rows = []
    for problem in MGH_PROBLEMS.values():
        f_ours = run_descend(problem, method, ours)
        f_theirs = run_scipy(problem, scipy_method, theirs)
        rows.append((problem.name, problem.solved(f_ours), problem.solved(f_theirs),
                     f_ours, f_theirs, problem.f_min))  # fmt: skip
    solved_ours = sum(r[1] for r in rows)
    solved_theirs = sum(r[2] for r in rows)
    report = "\n".join(
        f"  {name:30s} descend {'solved' if a else 'FAILED'} f={fa:.6g}   "
        f"{scipy_method} {'solved' if b else 'FAILED'} f={fb:.6g}   (f* = {fs:.6g})"
        for name, a, b, fa, fb, fs in rows
        if a != b
    )
    assert solved_ours >= solved_theirs, (
        f"{method} solved {solved_ours}/35, {scipy_method} {solved_theirs}/35; "
        f"where they differ:\n{report}"
    )
    # a floor, so a regression that breaks both sides alike cannot pass unnoticed
    assert solved_ours >= 27, report
    assert all(math.isfinite(r[3]) for r in rows)


def test_scipy_sees_the_same_function_and_derivatives() -> None:
    """The SciPy side's f, gradient and HVP are those of the descend side (central
    differences of the gradient give the HVP)."""
    problem = MGH_PROBLEMS["mgh-osborne-2"]
    value_and_grad, hessp = scipy_functions(problem)
    x = np.array(problem.start)
    f, g = value_and_grad(x)
    assert f == problem.fn(torch.tensor(x)).item()
    np.testing.assert_array_equal(g, torch.func.grad(problem.fn)(torch.tensor(x)).numpy())
    v = np.linspace(-1.0, 1.0, problem.dim)
    h = 1e-6
    fd = (value_and_grad(x + h * v)[1] - value_and_grad(x - h * v)[1]) / (2 * h)
    np.testing.assert_allclose(hessp(x, v), fd, rtol=1e-5, atol=1e-7)
