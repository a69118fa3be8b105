"""least_squares on the 35 Moré-Garbow-Hillstrom problems, against SciPy in the same run.

"Solved" is the problem's own test (:meth:`LeastSquaresProblem.solved`): the sum of
squares :math:`2F` at the end is within :math:`10^{-6}(1 + |f^*|)` of the known minimum
:math:`f^*` (an accurate value, see :mod:`descend.problems.mgh`). The 1e-6 is a cost
tolerance: at ftol = xtol = gtol = 1e-8 (both libraries' defaults) a run that reached the
minimizer's basin ends far closer than that, while one stuck at another stationary point
(Freudenstein-Roth's 48.98, the trigonometric problem's 2.8e-5) is far above it. Both
libraries get the same start, tolerances and budget (SciPy's defaults, 100 n evaluations),
and the same exact Jacobian (autodiff, handed to SciPy as ``jac=``), so the comparison is
of the algorithms only. No evaluation count is pinned: both runs are path-dependent through
rounding, so the test compares counts of solved problems, on one machine, in one run.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import least_squares as scipy_least_squares

from descend import least_squares
from descend.problems.mgh import MGH_PROBLEMS

PROBLEMS = list(MGH_PROBLEMS.values())


def _scipy_run(problem, method: str):
    jacobian = torch.func.jacfwd(problem.residuals)

    def fun(x):
        return problem.residuals(torch.from_numpy(x)).numpy()

    def jac(x):
        return jacobian(torch.from_numpy(x)).numpy()

    return scipy_least_squares(fun, np.array(problem.start), jac=jac, method=method)


@pytest.mark.parametrize("method", ["lm", "trf"])
def test_solves_at_least_as_many_mgh_problems_as_scipy(method: str) -> None:
    ours, theirs, table = 0, 0, []
    for problem in PROBLEMS:
        res = least_squares(problem.residuals, problem.x0(), method)
        ref = _scipy_run(problem, method)
        solved = problem.solved(2 * res.cost), problem.solved(2 * ref.cost)
        ours += solved[0]
        theirs += solved[1]
        table.append(f"{problem.name}: descend {2 * res.cost:.6g} {solved[0]}, "
                     f"scipy {2 * ref.cost:.6g} {solved[1]}")  # fmt: skip
        assert res.success == (res.status > 0)
        assert 1 <= res.nfev <= 100 * problem.dim
    assert ours >= theirs, "\n".join(table)
    # the set has two problems whose standard start leads both methods to a non-global
    # stationary point (Freudenstein-Roth, trigonometric): at most those are missed
    assert ours >= len(PROBLEMS) - 2, "\n".join(table)


@pytest.mark.parametrize("method", ["lm", "trf", "dogbox"])
def test_the_end_is_stationary(method: str) -> None:
    """Whatever test stopped it, the result's gradient is J^T f and small where solved."""
    for name in ("mgh-rosenbrock", "mgh-helical-valley", "mgh-bard", "mgh-osborne-1"):
        problem = MGH_PROBLEMS[name]
        res = least_squares(problem.residuals, problem.x0(), method)
        jac = torch.func.jacfwd(problem.residuals)(res.x)
        torch.testing.assert_close(res.fun, problem.residuals(res.x))
        torch.testing.assert_close(res.jac, jac)
        torch.testing.assert_close(res.grad, jac.T @ res.fun)
        assert res.cost == pytest.approx(0.5 * float(res.fun @ res.fun), rel=1e-12, abs=1e-300)
        assert problem.solved(2 * res.cost)
        assert res.optimality == pytest.approx(float(res.grad.abs().max()), rel=1e-6, abs=1e-12)
