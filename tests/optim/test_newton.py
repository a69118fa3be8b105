"""Newton's method, exact and Newton-CG: closed forms, SciPy's Newton-CG, the torch contract."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
import scipy.optimize
import torch
from torch import Tensor

import descend
from descend.objective import Objective
from descend.optim import Newton, StepFailed
from descend.optim.newton import modified_newton_direction, truncated_cg
from descend.problems import get_problem

ROSENBROCK = get_problem("rosenbrock")


def spd(n: int, seed: int, kappa: float = 100.0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return (q * torch.logspace(0, math.log10(kappa), n, dtype=torch.float64)) @ q.T


def closure_for(loss, *params: Tensor):
    """A plain torch.optim closure (no exact HVP: the optimizer uses finite differences)."""

    def closure() -> Tensor:
        for p in params:
            p.grad = None
        value = loss()
        value.backward()
        return value.detach()

    return closure


# -- truncated CG -------------------------------------------------------------------------


def test_truncated_cg_solves_positive_definite_systems() -> None:
    a = spd(20, seed=0)
    g = torch.linspace(-1, 1, 20, dtype=torch.float64)
    res = truncated_cg(lambda v: a @ v, g, tol=1e-12, max_iter=200)
    assert res.converged and not res.negative_curvature
    torch.testing.assert_close(res.step, -torch.linalg.solve(a, g), rtol=1e-9, atol=1e-12)
    assert res.iterations <= 25  # n = 20 in exact arithmetic; a few more in floating point


def test_truncated_cg_stops_at_the_tolerance_and_the_budget() -> None:
    a = spd(50, seed=1, kappa=1e4)
    g = torch.ones(50, dtype=torch.float64)
    loose = truncated_cg(lambda v: a @ v, g, tol=0.5 * g.norm().item(), max_iter=500)
    tight = truncated_cg(lambda v: a @ v, g, tol=1e-10 * g.norm().item(), max_iter=500)
    assert loose.converged and (a @ loose.step + g).norm() < 0.5 * g.norm()
    assert tight.converged and (a @ tight.step + g).norm() < 1e-9 * g.norm()
    assert loose.iterations < tight.iterations / 2
    capped = truncated_cg(lambda v: a @ v, g, tol=1e-14, max_iter=3)
    assert capped.iterations == 3 and not capped.converged
    assert torch.dot(g, capped.step) < 0


def test_truncated_cg_negative_curvature() -> None:
    g = torch.tensor([1.0, 1.0], dtype=torch.float64)
    # first direction -g has d'Bd < 0: steepest descent
    first = truncated_cg(lambda v: -v, g, tol=1e-12, max_iter=10)
    assert first.negative_curvature and first.iterations == 1
    torch.testing.assert_close(first.step, -g)
    # positive along -g, negative later: the last iterate, still a descent direction
    b = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]], dtype=torch.float64)
    g3 = torch.tensor([1.0, 0.0, 0.1], dtype=torch.float64)
    later = truncated_cg(lambda v: b @ v, g3, tol=1e-12, max_iter=10)
    assert later.negative_curvature and later.iterations == 2
    assert torch.dot(g3, later.step) < 0


# -- the modified Newton direction --------------------------------------------------------


def test_modified_direction_is_pure_newton_for_positive_definite_hessians() -> None:
    a = spd(8, seed=2)
    g = torch.arange(8, dtype=torch.float64) - 3.5
    d, tau = modified_newton_direction(a, g)
    assert tau == 0.0
    torch.testing.assert_close(d, -torch.linalg.solve(a, g), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_modified_direction_shifts_indefinite_hessians_just_enough(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    m = torch.randn(10, 10, generator=gen, dtype=torch.float64)
    h = 0.5 * (m + m.T)  # indefinite
    g = torch.randn(10, generator=gen, dtype=torch.float64)
    d, tau = modified_newton_direction(h, g)
    lam_min = torch.linalg.eigvalsh(h)[0].item()
    assert lam_min < 0 and tau > -lam_min  # H + tau I is positive definite
    # N&W Alg. 3.3: tau doubles from its first value, so tau/2 had failed, or tau is the first
    first = 1e-3 * h.abs().max().item() - min(h.diagonal().min().item(), 0.0)
    assert tau == pytest.approx(first) or lam_min + tau / 2 <= 1e-12
    torch.testing.assert_close(d, -torch.linalg.solve(h + tau * torch.eye(10, dtype=h.dtype), g))
    assert torch.dot(g, d) < 0


def test_modified_direction_handles_a_zero_hessian() -> None:
    g = torch.tensor([2.0, -4.0], dtype=torch.float64)
    d, tau = modified_newton_direction(torch.zeros(2, 2, dtype=torch.float64), g)
    assert tau == pytest.approx(1e-3)
    torch.testing.assert_close(d, -g / 1e-3)


# -- whole runs ---------------------------------------------------------------------------


def test_exact_newton_solves_a_quadratic_in_one_step() -> None:
    a = spd(30, seed=3, kappa=1e6)
    b = torch.linspace(-1, 1, 30, dtype=torch.float64)
    res = descend.minimize(lambda x: 0.5 * x @ (a @ x) - b @ x, np.zeros(30), "newton", gtol=1e-9)
    assert res.nit == 1 and res.converged
    np.testing.assert_allclose(res.x, torch.linalg.solve(a, b).numpy(), rtol=1e-8, atol=1e-10)
    assert res.nhev == 30  # one dense Hessian: n products


# From (-1.2, 1) to gradient norm 1e-8 (ftol off). SciPy's Newton-CG (xtol 1e-8, exact
# Hessian-vector products) takes 85 iterations, 107 evaluations to 3.2e-10; exact Newton
# needs a quarter of that, Newton-CG about as many: test_newton_cg_is_comparable_to_scipy
# holds both against SciPy in the same run. Here: the counts' relations by construction.
@pytest.mark.parametrize("method", ["newton", "newton-cg"])
def test_rosenbrock_to_gradient_1e_8(method: str) -> None:
    res = descend.minimize(ROSENBROCK.fn, list(ROSENBROCK.start), method, gtol=1e-8, ftol=0.0)
    assert res.status == descend.Status.GTOL and res.grad_norm <= 1e-8
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-8)
    assert res.nfev >= res.nit + 1  # the start, then at least one trial per iteration
    if method == "newton":
        assert res.nhev == 2 * res.nit  # one dense Hessian per iteration: n = 2 products
    else:
        # one CG solve per iteration: at least one product, at most n = 2 (the residual
        # after two is at rounding level, far below min(0.5, sqrt|g|) |g| >= 1e-4 |g|)
        assert res.nit <= res.nhev <= 2 * res.nit
    assert res.njev == res.nfev  # every evaluation gives f and the gradient together


def test_newton_cg_is_comparable_to_scipy() -> None:
    ref = scipy.optimize.minimize(
        scipy.optimize.rosen,
        [-1.2, 1.0],
        method="Newton-CG",
        jac=scipy.optimize.rosen_der,
        hessp=scipy.optimize.rosen_hess_prod,
        options={"xtol": 1e-8},
    )
    assert np.linalg.norm(scipy.optimize.rosen_der(ref.x)) < 1e-8
    ours = descend.minimize(ROSENBROCK.fn, [-1.2, 1.0], "newton-cg", gtol=1e-8, ftol=0.0)
    assert ours.nit <= ref.nit and ours.nfev <= ref.nfev and ours.nhev <= ref.nhev
    exact = descend.minimize(ROSENBROCK.fn, [-1.2, 1.0], "newton", gtol=1e-8, ftol=0.0)
    assert exact.nit <= ref.nit / 3


def test_hvp_count_matches_cg_iterations() -> None:
    x = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    objective = Objective.from_autograd([x], lambda: ROSENBROCK.fn(x))
    opt = Newton([x], mode="cg")
    for _ in range(5):
        opt.step(objective)
    assert objective.nhev == opt.state[x]["cg_iter"] > 0


@pytest.mark.parametrize("mode", ["exact", "cg"])
def test_plain_closure_over_several_tensors(mode: str) -> None:
    """A torch training-loop closure, parameters in two tensors: finite-difference HVPs."""
    x = torch.tensor([-1.2], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[1.0]], dtype=torch.float64, requires_grad=True)
    closure = closure_for(lambda: ROSENBROCK.fn(torch.cat([x, y.reshape(-1)])), x, y)
    opt = Newton([x, y], mode=mode)
    for _ in range(100):
        opt.step(closure)
        closure()
        if math.hypot(x.grad.item(), y.grad.item()) < 1e-8:
            break
    assert abs(x.item() - 1) < 1e-7 and abs(y.item() - 1) < 1e-7
    assert x.grad is not None and y.grad.shape == (1, 1)


@pytest.mark.parametrize("method", ["newton", "newton-cg"])
def test_float32(method: str) -> None:
    res = descend.minimize(
        ROSENBROCK.fn, torch.tensor([-1.2, 1.0]), method, gtol=1e-4, ftol=0.0, max_iter=200
    )
    assert res.x.dtype == torch.float32 and res.converged
    torch.testing.assert_close(res.x, torch.ones(2), atol=1e-3, rtol=0)


def test_exact_newton_modifies_an_indefinite_hessian() -> None:
    """f = x^4 - x^2 + y^2 from x = 0.1: H_xx = 12 x^2 - 2 < 0, pure Newton would climb
    towards the saddle at 0; the shifted step descends to a minimum at x = +-1/sqrt(2)."""
    xy = torch.tensor([0.1, 1.0], dtype=torch.float64, requires_grad=True)
    objective = Objective.from_autograd([xy], lambda: xy[0] ** 4 - xy[0] ** 2 + xy[1] ** 2)
    opt = Newton([xy])
    f = [objective().item()]
    for _ in range(30):
        opt.step(objective)
        f.append(objective().item())
        if xy.grad.norm() < 1e-10:
            break
    assert opt.state[xy]["hessian_shifts"] >= 1
    assert all(b <= a for a, b in itertools.pairwise(f)) and f[-1] < f[0]
    torch.testing.assert_close(
        xy.detach().abs(), torch.tensor([0.5**0.5, 0.0], dtype=torch.float64)
    )


def test_newton_cg_takes_steepest_descent_at_negative_curvature() -> None:
    """At (0.1, 1) on x^4 - x^2 + y^2 the gradient direction has negative curvature
    (g'Hg < 0): the first CG iteration stops and the search runs along -g."""
    xy = torch.tensor([0.1, 0.01], dtype=torch.float64, requires_grad=True)
    objective = Objective.from_autograd([xy], lambda: xy[0] ** 4 - xy[0] ** 2 + xy[1] ** 2)
    opt = Newton([xy], mode="cg")
    f0 = objective().item()
    opt.step(objective)
    assert opt.state[xy]["negative_curvature"] == 1
    assert objective().item() < f0
    for _ in range(30):
        opt.step(objective)
        if xy.grad.norm() < 1e-10:
            break
    torch.testing.assert_close(
        xy.detach().abs(), torch.tensor([0.5**0.5, 0.0], dtype=torch.float64)
    )


def test_last_evaluation_is_at_the_new_point() -> None:
    x = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    objective = Objective.from_autograd([x], lambda: ROSENBROCK.fn(x))
    opt = Newton([x], line_search_fn="backtracking")
    opt.step(objective)
    nfev = objective.nfev
    objective()
    assert objective.nfev == nfev  # cached: the loop's evaluation at the new point is free


def test_exact_mode_refuses_a_hessian_over_budget() -> None:
    with pytest.raises(ValueError, match="newton-cg") as info:
        descend.minimize(lambda x: (x**2).sum(), np.zeros(5000), "newton")
    assert "5000 x 5000" in str(info.value) and "hessian_memory_mb=256" in str(info.value)
    res = descend.minimize(lambda x: (x**2).sum(), np.ones(5000), "newton-cg")
    assert res.converged and res.nit == 1
    small = descend.minimize(
        lambda x: (x**2).sum(), np.ones(5000), "newton", hessian_memory_mb=512, max_iter=0
    )
    assert small.nit == 0


def test_state_dict_round_trip_continues_identically() -> None:
    def run(steps_before: int, steps_after: int, reload: bool) -> Tensor:
        x = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
        objective = Objective.from_autograd([x], lambda: ROSENBROCK.fn(x))
        opt = Newton([x], mode="cg")
        for _ in range(steps_before):
            opt.step(objective)
        if reload:
            saved = copy.deepcopy(opt.state_dict())
            opt = Newton([x], mode="cg")
            opt.load_state_dict(saved)
            assert opt.state[x]["n_iter"] == steps_before
        for _ in range(steps_after):
            opt.step(objective)
        return x.detach().clone()

    assert torch.equal(run(5, 5, True), run(5, 5, False))


def test_zero_gradient_is_a_no_op() -> None:
    x = torch.ones(3, dtype=torch.float64, requires_grad=True)
    objective = Objective.from_autograd([x], lambda: ((x - 1) ** 2).sum())
    for mode in ("exact", "cg"):
        Newton([x], mode=mode).step(objective)
        assert torch.equal(x.detach(), torch.ones(3, dtype=torch.float64))
    assert objective.nhev == 0


def test_nan_along_every_direction_fails_cleanly() -> None:
    x = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)

    def loss() -> Tensor:
        # finite only at the start
        return torch.where(x == 2.0, x**2, torch.full_like(x, float("nan"))).sum()

    objective = Objective.from_autograd([x], loss)
    with pytest.raises(StepFailed) as info:
        Newton([x], mode="cg").step(objective)
    assert info.value.status == "line_search_failed"
    assert x.item() == 2.0


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"lr": 0.0}, "lr must be in (0, inf), got 0.0"),
        ({"mode": "dense"}, "unknown mode 'dense'; valid choices: exact, cg"),
        ({"line_search_fn": "wolfe"}, "unknown line_search_fn 'wolfe'"),
        ({"c1": 0.5, "c2": 0.4}, "c2 must be in (c1, 1)"),
        ({"max_eval": 0}, "max_eval must be an integer >= 1, got 0"),
        ({"hessian_memory_mb": -1.0}, "hessian_memory_mb must be in (0, inf), got -1.0"),
        ({"max_cg_iter": 0}, "max_cg_iter must be an integer >= 1, got 0"),
        ({"cg_rtol": 1.0}, "cg_rtol must be in (0, 1), got 1.0"),
        ({"beta": 0.0}, "beta must be in (0, inf), got 0.0"),
    ],
)
def test_bad_arguments(kwargs: dict, fragment: str) -> None:
    x = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError) as info:
        Newton([x], **kwargs)
    assert fragment in str(info.value)


def test_one_parameter_group_and_a_closure_are_required() -> None:
    a = torch.zeros(2, requires_grad=True)
    b = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="parameter groups"):
        Newton([{"params": [a]}, {"params": [b]}])
    with pytest.raises(RuntimeError, match="closure"):
        Newton([a]).step()
