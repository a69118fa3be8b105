"""The caller's types at the edge, SciPy's result, and the matrix-free path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descend
from descend import least_squares
from descend.least_squares import JacobianOperator, solve
from descend.least_squares.status import MESSAGES
from descend.problems.mgh import MGH_PROBLEMS


def rosenbrock(x):
    return torch.stack([10.0 * (x[1] - x[0] ** 2), 1.0 - x[0]])


def test_lists_give_numpy_and_tensors_give_tensors() -> None:
    res = least_squares(rosenbrock, [-1.2, 1.0], "lm")
    for key in ("x", "fun", "jac", "grad", "active_mask"):
        assert isinstance(res[key], np.ndarray), key
    assert res.x.dtype == np.float64
    assert res.active_mask.dtype.kind == "i"
    np.testing.assert_allclose(res.x, [1.0, 1.0], rtol=1e-10)
    res = least_squares(rosenbrock, torch.tensor([-1.2, 1.0], dtype=torch.float32), "trf")
    assert isinstance(res.x, torch.Tensor) and res.x.dtype == torch.float32
    torch.testing.assert_close(res.x, torch.ones(2), rtol=1e-4, atol=1e-4)


def test_the_result_is_scipys_mapping() -> None:
    res = least_squares(rosenbrock, [-1.2, 1.0])
    keys = ["x", "cost", "fun", "jac", "grad", "optimality", "active_mask", "nfev", "njev",
            "status", "message", "success"]  # fmt: skip
    assert list(res)[: len(keys)] == keys
    assert dict(res)["cost"] == res.cost and len(res) == len(dict(res))
    assert "success" in res and "nit" not in res
    assert res.message == MESSAGES[res.status] and res.success == (res.status > 0)
    assert res.method == "trf" and res.time > 0
    assert "LeastSquaresResult(" in repr(res)
    assert descend.least_squares is least_squares


def test_numpy_residuals_with_their_jacobian() -> None:
    def residuals(x, a, *, b):
        return np.array([a * (x[1] - x[0] ** 2), b - x[0]])

    def jac(x, a, *, b):
        return np.array([[-2.0 * a * x[0], a], [-1.0, 0.0]])

    res = least_squares(residuals, [-1.2, 1.0], "lm", jac=jac, args=(10.0,), kwargs={"b": 1.0})
    np.testing.assert_allclose(res.x, [1.0, 1.0], rtol=1e-10)
    assert res.njev >= 1


def test_a_single_extra_argument_need_not_be_a_tuple() -> None:
    res = least_squares(lambda x, c: x - c, [0.0, 0.0], args=torch.tensor([2.0, 3.0]))
    np.testing.assert_allclose(res.x, [2.0, 3.0])


def test_max_nfev_is_a_budget() -> None:
    problem = MGH_PROBLEMS["mgh-meyer"]
    for method in ("lm", "trf", "dogbox"):
        res = least_squares(problem.residuals, problem.x0(), method, max_nfev=5)
        assert res.status == 0 and not res.success, method
        assert res.nfev <= 5
        assert res.message == MESSAGES[0]


def test_cost_never_rises() -> None:
    """Every accepted step lowers the cost: the end is below the start on every method."""
    problem = MGH_PROBLEMS["mgh-osborne-2"]
    start = 0.5 * float(problem.residuals(problem.x0()).square().sum())
    for method in ("lm", "trf", "dogbox"):
        for budget in (2, 5, 10, 20):
            res = least_squares(problem.residuals, problem.x0(), method, max_nfev=budget)
            assert res.cost <= start


@pytest.mark.parametrize("method", ["trf", "dogbox"])
def test_matrix_free_reaches_the_exact_solvers_answer(method: str) -> None:
    """tr_solver="lsmr" without jac= never forms J (products by jvp/vjp, CGLS inside)."""
    problem = MGH_PROBLEMS["mgh-broyden-tridiagonal"]
    exact = least_squares(problem.residuals, problem.x0(), method, tr_solver="exact")
    free = least_squares(problem.residuals, problem.x0(), method, tr_solver="lsmr")
    assert isinstance(free.jac, JacobianOperator)
    assert problem.solved(2 * free.cost) and problem.solved(2 * exact.cost)
    torch.testing.assert_close(free.x, exact.x, rtol=1e-6, atol=1e-8)


def test_large_problems_go_matrix_free_by_default(monkeypatch) -> None:
    problem = MGH_PROBLEMS["mgh-extended-rosenbrock"]
    monkeypatch.setattr(solve, "DENSE_LIMIT", 10)
    res = least_squares(problem.residuals, problem.x0())
    assert isinstance(res.jac, JacobianOperator)
    assert problem.solved(2 * res.cost)


def test_lsmr_with_a_dense_user_jacobian() -> None:
    problem = MGH_PROBLEMS["mgh-helical-valley"]
    jac = torch.func.jacfwd(problem.residuals)
    res = least_squares(problem.residuals, problem.x0(), "trf", jac=jac, tr_solver="lsmr")
    assert isinstance(res.jac, torch.Tensor)
    assert problem.solved(2 * res.cost)


def test_jacobian_operator_is_the_jacobian() -> None:
    problem = MGH_PROBLEMS["mgh-osborne-2"]
    x = problem.x0()
    dense = torch.func.jacfwd(problem.residuals)(x)
    op = JacobianOperator(problem.residuals, x)
    assert op.shape == tuple(dense.shape)
    torch.testing.assert_close(op.dense(), dense)
    generator = torch.Generator().manual_seed(0)
    v = torch.randn(op.shape[1], dtype=x.dtype, generator=generator)
    u = torch.randn(op.shape[0], dtype=x.dtype, generator=generator)
    rows = torch.rand(op.shape[0], dtype=x.dtype, generator=generator)
    cols = torch.rand(op.shape[1], dtype=x.dtype, generator=generator)
    scaled = op.scaled(rows=rows, cols=cols)
    torch.testing.assert_close(scaled.matvec(v), rows * (dense @ (cols * v)))
    torch.testing.assert_close(scaled.rmatvec(u), cols * (dense.T @ (rows * u)))


def test_x_scale_numbers_and_jac() -> None:
    problem = MGH_PROBLEMS["mgh-brown-badly-scaled"]
    for method in ("lm", "trf", "dogbox"):
        for x_scale in ("jac", 1.0, [1e6, 1e-6]):
            res = least_squares(problem.residuals, problem.x0(), method, x_scale=x_scale)
            assert problem.solved(2 * res.cost), (method, x_scale)


@pytest.mark.parametrize("method", ["lm", "trf", "dogbox"])
def test_a_trial_point_with_non_finite_residuals_is_refused_and_the_run_goes_on(method):
    """log(x) is NaN for x < 0. From x = 10 the Gauss-Newton step for log(x) - log(2) is
    -x log 5 = -16.1, which lands at x <= 0 (cut to the first radius, 10, by trf and dogbox),
    where the residual is not finite: that trial is rejected, the region shrinks, and the
    run ends at x = 2."""
    evaluated = []

    def residuals(x):
        evaluated.append(float(x[0]))
        return (x / 2.0).log()

    res = least_squares(residuals, [10.0], method)
    assert min(evaluated) <= 0  # a trial where log(x) is NaN or -inf
    assert res.success
    np.testing.assert_allclose(res.x, [2.0], rtol=1e-6)
