"""minimize(..., bounds=...): bounded lbfgs against SciPy's L-BFGS-B on SciPy's own bounded
problems and random boxes around MGH minima; projected first-order rules against torch.optim
with a projection after each step; the projected quasi-Newton direction against its dense
definition; and the errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bounded_problems import SCIPY_PROBLEMS, mgh_boxes, run_descend, run_scipy, solved
from scipy.optimize import minimize as scipy_minimize

import descend
from descend.constraints import Box, Simplex
from descend.optim.flat_params import FlatParams
from descend.optim.lbfgs_bounds import BoundedIteration


def test_bounded_lbfgs_solves_as_many_as_scipys_l_bfgs_b_and_ends_feasible() -> None:
    """SciPy's bounded problems and 24 random boxes around MGH minima, both libraries with
    SciPy's L-BFGS-B tolerances: "solved" is feasible with f within 1e-6 of the better
    final f. Where SciPy reaches a problem's known solution, descend does too (hs38, Wood's
    function times 1e-5, stops early in both at the gradient tolerance)."""
    table, ours_solved, theirs_solved = [], 0, 0
    for problem in [*SCIPY_PROBLEMS, *mgh_boxes()]:
        ours, theirs = run_descend(problem), run_scipy(problem)
        assert problem.feasible(ours.x), problem.name
        best = min(ours.fun, theirs.fun)
        ours_solved += solved(ours, best, problem)
        theirs_solved += solved(theirs, best, problem)
        table.append(f"{problem.name}: descend {ours.fun:.10g}, scipy {theirs.fun:.10g}")
        if problem.xopt is not None and np.allclose(theirs.x, problem.xopt, atol=1e-3):
            np.testing.assert_allclose(ours.x, problem.xopt, atol=2e-3, err_msg=problem.name)
    assert ours_solved >= theirs_solved, "\n".join(table)


@pytest.mark.parametrize("method", ["gd", "lion"])
def test_projected_first_order_methods_end_feasible_on_every_box(method) -> None:
    """The feed projects after every step, whatever the rule (one rule in the feed): gd
    (steps of any length on steep MGH slopes), lion (sign steps of the same size in every
    coordinate); benchmarks/bounds_lbfgsb.py checks adam and gd on 112 problems."""
    for problem in [*SCIPY_PROBLEMS, *mgh_boxes()]:
        res = run_descend(problem, method, max_iter=100, lr=1e-2)
        assert problem.feasible(res.x), (method, problem.name, res.x)


def test_projected_adam_follows_torch_adam_with_a_clamp_after_each_step() -> None:
    """Projected Adam is torch's Adam step, then x <- clamp(x, low, high): iterate for
    iterate, on a quadratic whose minimum (2, -3, 0.5) lies outside [0, 1]^2 x [0, 1]."""
    centre = torch.tensor([2.0, -3.0, 0.5], dtype=torch.float64)

    def f(x):
        return ((x - centre) ** 2 * torch.tensor([1.0, 3.0, 10.0], dtype=x.dtype)).sum()

    res = descend.minimize(f, [0.5, 0.5, 0.0], "adam", lr=0.05, bounds=[(0, 1)] * 3,
                           max_iter=40, gtol=0, ftol=0, record=True, monitors=None)  # fmt: skip
    x = torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([x], lr=0.05)
    expected = [x.detach().clone()]
    for _ in range(40):
        opt.zero_grad()
        f(x).backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
        expected.append(x.detach().clone())
    np.testing.assert_allclose(res.history["x"], torch.stack(expected).numpy(), rtol=1e-12)
    np.testing.assert_allclose(res.x, [1.0, 0.0, 0.5], atol=1e-2)


def test_gradient_test_reads_the_projected_gradient() -> None:
    """min (x - 3)^2 on x <= 1: the gradient is -4 at the solution, the projected gradient 0,
    so gd stops converged on the bound."""
    res = descend.minimize(lambda x: ((x - 3) ** 2).sum(), [0.0], "gd", lr=0.1,
                           bounds=[(None, 1.0)])  # fmt: skip
    assert res.converged and res.x[0] == 1.0 and res.jac[0] == pytest.approx(-4.0)
    assert res.grad_norm == 0.0
    assert "1 of 1 coordinates at a bound" in res.message


def test_x0_outside_is_projected_and_the_message_says_so() -> None:
    res = descend.minimize(lambda x: (x**2).sum(), [5.0, -1.0], bounds=[(1.0, 2.0), (-2, 2)])
    np.testing.assert_allclose(res.x, [1.0, 0.0], atol=1e-8)
    assert "x0 was outside the bounds and was projected onto them (moved 3)" in res.message


def test_a_feasible_x0_that_rounding_moves_is_not_said_to_be_outside() -> None:
    """1/25 summed 25 times is not exactly 1 in float64: the projection moves it by an ulp."""
    x0 = [1 / 25] * 25
    assert sum(x0) != 1.0
    res = descend.minimize(lambda x: (x**2).sum(), x0, "gd", bounds="simplex", max_iter=5)
    assert "outside the bounds" not in res.message


@pytest.mark.parametrize("method", ["lbfgs", "gd"])
def test_long_only_portfolio_on_the_simplex_matches_slsqp(method) -> None:
    """Minimum variance minus expected return over weights w >= 0, sum w = 1."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(8, 6))
    cov, mu = a.T @ a / 8, rng.normal(0.05, 0.02, 6)

    def objective(w):
        return w @ torch.from_numpy(cov) @ w - 2.0 * torch.from_numpy(mu) @ w

    res = descend.minimize(objective, np.full(6, 1 / 6), method, bounds="simplex", lr=0.1,
                           gtol=1e-9, max_iter=20_000)  # fmt: skip
    ref = scipy_minimize(
        lambda w: w @ cov @ w - 2 * mu @ w, np.full(6, 1 / 6), jac=lambda w: 2 * cov @ w - 2 * mu,
        method="SLSQP", bounds=[(0, 1)] * 6,
        constraints={"type": "eq", "fun": lambda w: w.sum() - 1}, options={"ftol": 1e-14},
    )  # fmt: skip
    assert res.x.min() >= 0 and res.x.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(res.x, ref.x, atol=1e-5)
    assert Simplex().active(torch.from_numpy(res.x)).ne(0).sum() >= 1  # a corner solution


def test_free_direction_is_the_reduced_quasi_newton_step() -> None:
    """d_F = -(Z'BZ)^{-1} g_F with B built by dense BFGS updates from theta I over the same
    pairs (Nocedal & Wright eq. 6.19), and d_A = -g_A / theta."""
    torch.manual_seed(0)
    n, m = 7, 4
    q = torch.randn(n, n, dtype=torch.float64)
    hessian = q @ q.T + n * torch.eye(n, dtype=torch.float64)
    x = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    iteration = BoundedIteration(Box(-10.0, 10.0), FlatParams([x]), history_size=m)
    state = {"skipped": 0}
    iteration.init_buffers(state)
    pairs = []
    for _ in range(m + 2):  # the oldest two pairs leave the memory
        s = torch.randn(n, dtype=torch.float64)
        y = hessian @ s
        iteration.store(state, s, y, -y)
        pairs.append((s, y))
    theta = state["bound_theta"]
    b = theta * torch.eye(n, dtype=torch.float64)
    for s, y in pairs[-m:]:
        bs = b @ s
        b = b - torch.outer(bs, bs) / (s @ bs) + torch.outer(y, y) / (y @ s)
    g = torch.randn(n, dtype=torch.float64)
    free = torch.tensor([True, False, True, True, False, True, True])
    d = torch.empty(n, dtype=torch.float64)
    assert iteration._direction(state, g, free, d)
    reduced = b[free][:, free]
    torch.testing.assert_close(d[free], -torch.linalg.solve(reduced, g[free]))
    torch.testing.assert_close(d[~free], -g[~free] / theta)


@pytest.mark.parametrize(
    ("method", "bounds", "match"),
    [
        ("bfgs", [(0, 1)], r"method 'bfgs' cannot keep x within bounds.*gd, .*lbfgs"),
        ("newton", [(0, 1)], r"method 'newton' cannot keep x within bounds"),
        ("lbfgs", [(0, 1)] * 2, r"bounds has 2 \(low, high\) pairs but x0 has 1 coordinates"),
        ("lbfgs", "simplx", r"did you mean 'simplex'"),
        ("CG", [(0, 1)], r"method 'CG' cannot handle bounds \(SciPy's would ignore them\)"),
    ],
)
def test_bounds_a_method_cannot_keep_are_refused_naming_those_that_can(method, bounds, match):
    with pytest.raises(ValueError, match=match):
        descend.minimize(lambda x: (x**2).sum(), [0.5], method, bounds=bounds)


def test_lbfgs_optimizer_with_bounds_in_a_torch_loop_keeps_two_tensors_in_one_box() -> None:
    """descend.optim.LBFGS(bounds=...) on its own: the box spans the flattened parameters
    (two tensors), the start is projected at construction, every evaluation is feasible,
    and the end is SciPy's L-BFGS-B answer."""
    a = torch.tensor([3.0], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([-3.0, 0.0], dtype=torch.float64, requires_grad=True)
    low, high = np.array([-1.0, -1.0, -1.0]), np.array([1.0, 1.0, 0.2])
    seen = []

    def f_np(v):
        return (v[0] - 2) ** 2 + (v[1] + v[0]) ** 2 + 4 * (v[2] - 0.5) ** 2 + v[0] * v[2]

    def closure():
        a.grad = b.grad = None
        seen.append(torch.cat([a, b]).detach().numpy().copy())
        loss = f_np(torch.cat([a, b]))
        loss.backward()
        return loss

    opt = descend.optim.LBFGS([a, b], bounds=list(zip(low, high)))
    assert a.item() == 1.0 and b[0].item() == -1.0
    for _ in range(30):
        opt.step(closure)
    ref = scipy_minimize(f_np, [1.0, -1.0, 0.0], method="L-BFGS-B", bounds=list(zip(low, high)))
    assert all(((v >= low) & (v <= high)).all() for v in seen)
    np.testing.assert_allclose(torch.cat([a, b]).detach().numpy(), ref.x, atol=1e-5)


def test_bounds_with_maximize_are_refused() -> None:
    with pytest.raises(ValueError, match="maximize=True is not supported; minimize -f"):
        descend.minimize(lambda x: -(x**2).sum(), [0.5], "adam", maximize=True, bounds=[(0, 1)])


def test_messages_name_the_projected_gradient_they_test() -> None:
    converged = descend.minimize(lambda x: ((x - 3) ** 2).sum(), [0.0, 0.0], "gd",
                                 bounds=[(0, 1), (0, 1)])  # fmt: skip
    assert converged.status == "gtol" and "projected gradient norm" in converged.message
    budget = descend.minimize(lambda x: ((x - 3) ** 2).sum(), [0.0, 0.0], "gd", lr=1e-4,
                              bounds=[(0, 1), (0, 1)], max_iter=3)  # fmt: skip
    assert "(projected gradient norm" in budget.message
    free = descend.minimize(lambda x: ((x - 3) ** 2).sum(), [0.0, 0.0], "gd", max_iter=3)
    assert "projected" not in free.message and "(gradient norm" in free.message
