r"""Trust-region Newton-CG (Steihaug-Toint): the subproblem, the radius, SciPy's trust-ncg,
and the iteration counts theory predicts on an ill-conditioned quadratic.

The quadratic: :math:`f(x) = \tfrac12 \sum_i \lambda_i x_i^2`, n = 1000, eigenvalues
log-spaced in :math:`[1, 10^6]` (condition number :math:`\kappa = 10^6`), from
:math:`x_0 = (1, \dots, 1)`. With exact Hessian-vector products the model *is* f, so every
step has :math:`\rho = 1` and is accepted, and the radius doubles after each step that ends
on the boundary. What theory predicts:

* Exact inner solves, radius containing :math:`x^*`: one outer iteration (Newton's method
  on a quadratic), with :math:`\|g_1\| \le` ``cg_rtol`` :math:`\|g_0\|`.
* Exact inner solves from :math:`\Delta_0 = 1`: boundary steps while :math:`\Delta_k <
  \|x_k - x^*\|`, so :math:`\lceil \log_2(\|x_0 - x^*\| / \Delta_0) \rceil` of them (f, and
  here the distance to :math:`x^*`, decreases), then one interior Newton step. A bound that
  needs no assumption on the distance: :math:`\|x_k - x^*\| \le \|x_0 - x^*\|_A /
  \sqrt{\lambda_\min} = D`, so at most :math:`\lceil \log_2(D/\Delta_0) \rceil + 1`.
* Truncated inner solves (the default forcing :math:`\eta_k = \min(0.5, \sqrt{\|g_k\|})`):
  on a quadratic the new gradient is exactly the CG residual, so each interior step gives
  :math:`\|g_{k+1}\| \le \eta_k \|g_k\|` (linear with rate 1/2 while :math:`\|g\| \ge 1/4`,
  then :math:`\|g_{k+1}\| \le \|g_k\|^{3/2}`). With :math:`\|g_k\| \le \sqrt{2\lambda_\max
  (f_0 - f^*)} = G` the outer count is at most the boundary bound plus the length of the
  recursion :math:`G \to \min(0.5, \sqrt G)\,G` down to gtol.
* Each inner solve: CG reduces the A-norm error by :math:`2((\sqrt\kappa-1)/(\sqrt\kappa+1))^j`,
  and :math:`\|r\| / \|r_0\| \le \sqrt\kappa\, \|e\|_A / \|e_0\|_A`, so a relative residual
  :math:`\epsilon` takes at most :math:`\lceil \tfrac12 \sqrt\kappa \ln(2\sqrt\kappa/\epsilon)
  \rceil` iterations (n = 1000 in exact arithmetic; floating point loses that finite
  termination, not the Chebyshev bound).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import scipy.optimize
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

import descend
from descend.objective import Objective
from descend.optim import StepFailed, TrustRegion
from descend.optim.trust_region import steihaug_cg
from descend.problems import get_problem

ROSENBROCK = get_problem("rosenbrock")


def model(b: Tensor, g: Tensor, p: Tensor) -> float:
    return float(g @ p + 0.5 * p @ (b @ p))


def cauchy_point(b: Tensor, g: Tensor, radius: float) -> Tensor:
    """N&W eq. (4.11-4.12)."""
    gbg = float(g @ (b @ g))
    g_norm = float(g.norm())
    tau = 1.0 if gbg <= 0 else min(g_norm**3 / (radius * gbg), 1.0)
    return -tau * radius / g_norm * g


# -- the subproblem -----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 12),
    shift=st.floats(-2.0, 2.0),
    log_radius=st.floats(-3.0, 2.0),
)
def test_steihaug_step_is_in_the_region_and_beats_the_cauchy_point(
    seed: int, n: int, shift: float, log_radius: float
) -> None:
    gen = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=gen, dtype=torch.float64)
    b = 0.5 * (m + m.T) / math.sqrt(n) + shift * torch.eye(n, dtype=torch.float64)
    g = torch.randn(n, generator=gen, dtype=torch.float64)
    radius = 10.0**log_radius
    res = steihaug_cg(lambda v: b @ v, g, radius, 1e-10 * float(g.norm()), 10 * n)
    p_norm = float(res.step.norm())
    assert p_norm <= radius * (1 + 1e-10)
    assert res.on_boundary == (abs(p_norm - radius) <= 1e-9 * radius)
    m_p = model(b, g, res.step)
    assert res.predicted == pytest.approx(-m_p, rel=1e-9, abs=1e-12)
    # global convergence rests on this: at least the Cauchy decrease (N&W Thm. 7.3)
    assert m_p <= model(b, g, cauchy_point(b, g, radius)) + 1e-10 * (1 + abs(m_p))
    if res.negative_curvature:
        assert res.on_boundary


def test_steihaug_interior_step_is_the_newton_step() -> None:
    b = torch.diag(torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64))
    g = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)
    res = steihaug_cg(lambda v: b @ v, g, 10.0, 1e-14, 50)
    assert not res.on_boundary and not res.negative_curvature
    torch.testing.assert_close(res.step, -torch.linalg.solve(b, g), rtol=1e-12, atol=1e-14)
    assert res.iterations in (3, 4)  # 3 = n in exact arithmetic
    assert res.predicted == pytest.approx(0.5 * float(g @ torch.linalg.solve(b, g)), rel=1e-12)


def test_steihaug_negative_curvature_goes_to_the_boundary_downhill() -> None:
    b = torch.diag(torch.tensor([-1.0, 2.0], dtype=torch.float64))
    g = torch.tensor([0.5, 1.0], dtype=torch.float64)
    res = steihaug_cg(lambda v: b @ v, g, 3.0, 1e-12, 10)
    assert res.negative_curvature and res.on_boundary
    assert float(res.step.norm()) == pytest.approx(3.0, rel=1e-12)
    assert model(b, g, res.step) < model(b, g, -res.step)


# -- the radius and the acceptance test ---------------------------------------------------


def quadratic_objective(x: Tensor, scale: Tensor) -> Objective:
    return Objective.from_autograd([x], lambda: 0.5 * (scale * x * x).sum())


def test_exact_model_doubles_the_radius_on_the_boundary_and_keeps_it_inside() -> None:
    x = torch.full((4,), 10.0, dtype=torch.float64, requires_grad=True)
    objective = quadratic_objective(x, torch.ones(4, dtype=torch.float64))
    opt = TrustRegion([x], initial_radius=1.0)
    radii = []
    for _ in range(6):
        opt.step(objective)
        radii.append(opt.radius)
        assert opt.state[x]["last_rho"] == pytest.approx(1.0, abs=1e-12)
    # ||x0|| = 20: steps of 1, 2, 4, 8 on the boundary (sum 15), then the Newton step
    assert radii[:5] == [2.0, 4.0, 8.0, 16.0, 16.0]
    assert x.detach().abs().max() == 0.0
    assert opt.state[x]["rejected"] == 0


def test_rejected_steps_restore_the_point_and_the_last_evaluation_is_accepted() -> None:
    """On Rosenbrock the radius now and then grows too far; rejected trials are undone."""
    x = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    objective = Objective.from_autograd([x], lambda: ROSENBROCK.fn(x))
    opt = TrustRegion([x])
    f = objective().item()
    for _ in range(27):
        opt.step(objective)
        nfev = objective.nfev
        f_new = objective().item()
        assert objective.nfev == nfev  # the step's last evaluation was at the new point
        assert f_new < f
        f = f_new
    rejected = opt.state[x]["rejected"]
    assert rejected >= 1  # the run went through the restore path
    assert objective.nfev == 1 + 27 + rejected  # one evaluation per trial, accepted or not


def test_a_step_that_cannot_be_accepted_restores_parameters_and_gradients() -> None:
    x = torch.tensor([2.0, -1.0], dtype=torch.float64, requires_grad=True)
    start = x.detach().clone()

    def loss() -> Tensor:  # finite at the start only
        value = (x**2).sum()
        return value if torch.equal(x.detach(), start) else value * float("nan")

    objective = Objective.from_autograd([x], loss)
    opt = TrustRegion([x], max_rejections=5)
    with pytest.raises(StepFailed) as info:
        opt.step(objective)
    assert info.value.status == "line_search_failed" and "radius" in info.value.message
    assert torch.equal(x.detach(), start)
    torch.testing.assert_close(x.grad, 2 * start)
    assert opt.state[x]["rejected"] == 5 and opt.radius == pytest.approx(0.25**5, rel=1e-12)


def test_rounding_level_changes_of_f_do_not_reject_good_steps() -> None:
    """f = (1e8 + x'Ax/2) - 1e8 + 1 near 0: f is computed with cancellation, so its
    changes (1e-9) drown in its rounding (1.5e-8), but the gradients show the model is
    right, and the Newton step to 0 is accepted at once."""
    x = torch.tensor([3e-5, -2e-5], dtype=torch.float64, requires_grad=True)
    a = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    objective = Objective.from_autograd([x], lambda: (1e8 + 0.5 * x @ (a @ x)) - 1e8 + 1.0)
    opt = TrustRegion([x])
    opt.step(objective)
    assert opt.state[x]["rejected"] == 0
    assert opt.state[x]["last_rho"] == pytest.approx(1.0, abs=1e-9)
    assert x.detach().abs().max() < 1e-18


# -- whole runs ---------------------------------------------------------------------------


def test_rosenbrock_follows_scipy_trust_ncg() -> None:
    """The same algorithm as SciPy's trust-ncg (radius rules, eta = 0.15, forcing
    min(0.5, sqrt|g|)), so the same accepted iterates. Rounding (1e-16 here, 1e-14 at the
    end) cannot change a decision: every rho stays 0.017 or more from the 0.25 and 0.75
    thresholds, and the gradient norm jumps from 3e-7 to 4e-11 across gtol."""
    trials = []  # SciPy calls back after every trial, accepted or rejected
    ref = scipy.optimize.minimize(
        scipy.optimize.rosen,
        [-1.2, 1.0],
        method="trust-ncg",
        jac=scipy.optimize.rosen_der,
        hessp=scipy.optimize.rosen_hess_prod,
        options={"gtol": 1e-8},
        callback=lambda xk: trials.append(np.array(xk)),
    )
    accepted = [np.array([-1.2, 1.0])]
    for x in trials:
        if not np.array_equal(x, accepted[-1]):
            accepted.append(x)
    res = descend.minimize(
        ROSENBROCK.fn, [-1.2, 1.0], "trust-region", gtol=1e-8, ftol=0.0, record=True
    )
    assert res.status == descend.Status.GTOL and res.grad_norm <= 1e-8
    path = np.asarray(res.history["x"])
    assert path.shape == (len(accepted), 2) and res.nit == len(accepted) - 1
    np.testing.assert_allclose(path, np.array(accepted), rtol=0, atol=1e-10)
    # both evaluate once at the start and once per trial (SciPy counts trials as iterations)
    assert res.nfev == ref.nfev == ref.nit + 1
    # one CG solve per trial: at least one product, at most n = 2 (after two CG steps the
    # residual is at rounding level, far below the forcing term eta |g| >= 1e-4 |g|)
    assert res.nfev - 1 <= res.nhev <= 2 * (res.nfev - 1)


def test_float32_and_several_tensors() -> None:
    x = torch.tensor([-1.2], requires_grad=True)
    y = torch.tensor([1.0], requires_grad=True)
    objective = Objective.from_autograd([x, y], lambda: ROSENBROCK.fn(torch.cat([x, y])))
    opt = TrustRegion([x, y])
    for _ in range(60):
        opt.step(objective)
        objective()
        if math.hypot(x.grad.item(), y.grad.item()) < 1e-3:
            break
    assert x.dtype == torch.float32 and objective().item() < 1e-6
    assert abs(x.item() - 1) < 5e-3 and abs(y.item() - 1) < 5e-3


def test_plain_closure_uses_finite_differences() -> None:
    x = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)

    def closure() -> Tensor:
        x.grad = None
        value = ROSENBROCK.fn(x)
        value.backward()
        return value.detach()

    opt = TrustRegion([x])
    for _ in range(60):
        opt.step(closure)
        closure()
        if x.grad.norm() < 1e-8:
            break
    torch.testing.assert_close(x.detach(), torch.ones(2, dtype=torch.float64), rtol=0, atol=1e-8)


# -- the ill-conditioned quadratic (see the module docstring) -----------------------------

N, KAPPA = 1000, 1e6
EIGENVALUES = torch.logspace(0, math.log10(KAPPA), N, dtype=torch.float64)


def ill_conditioned(**options):
    x = torch.ones(N, dtype=torch.float64, requires_grad=True)
    objective = Objective.from_autograd([x], lambda: 0.5 * (EIGENVALUES * x * x).sum())
    return x, objective, TrustRegion([x], **options)


def cg_bound(rtol: float) -> int:
    return math.ceil(0.5 * math.sqrt(KAPPA) * math.log(2 * math.sqrt(KAPPA) / rtol))


def test_quadratic_exact_inner_solve_takes_one_newton_step() -> None:
    g0 = float((EIGENVALUES * torch.ones(N, dtype=torch.float64)).norm())
    distance = math.sqrt(N)
    res = descend.minimize(
        lambda x: 0.5 * (EIGENVALUES * x * x).sum(),
        np.ones(N),
        "trust-region",
        initial_radius=math.ceil(distance),
        cg_rtol=1e-12,
        gtol=1e-11 * g0,
        ftol=0.0,
    )
    assert res.converged and res.nit == 1
    assert res.nhev <= cg_bound(1e-12)
    assert np.abs(res.x).max() <= 1e-11 * g0  # |x_i| = |g_i| / lambda_i, lambda_min = 1


def test_quadratic_exact_inner_solves_double_the_radius_then_step_inside() -> None:
    x, objective, opt = ill_conditioned(initial_radius=1.0, cg_rtol=1e-12)
    objective()
    g0 = float(x.grad.norm())
    distance = math.sqrt(N)  # ||x0 - x*||
    d_bound = math.sqrt(float(EIGENVALUES.sum()))  # ||x0 - x*||_A / sqrt(lambda_min)
    # CG's 2-norm error falls monotonically, so ||x_k - x*|| <= distance: the step is
    # interior once the radius 2^k reaches the distance
    predicted = math.ceil(math.log2(distance)) + 1
    # a step is at most the radius: k boundary steps cover at most 2^k - 1, and the
    # Newton step fits only when 2^k >= distance - (2^k - 1)
    fewest = math.ceil(math.log2(distance + 1))
    nit = 0
    while float(x.grad.norm()) > 1e-11 * g0:
        opt.step(objective)
        objective()
        nit += 1
        assert nit <= math.ceil(math.log2(d_bound)) + 1
    assert fewest <= nit <= predicted  # 6 <= nit <= 6
    assert opt.state[x]["rejected"] == 0 and opt.radius == 32.0


def test_quadratic_truncated_inner_solves_meet_the_forcing_bound() -> None:
    x, objective, opt = ill_conditioned()
    gtol = 1e-8
    objective()
    f0 = objective().item()
    lam_max, lam_min = EIGENVALUES.max().item(), EIGENVALUES.min().item()
    g_max = math.sqrt(2 * lam_max * f0)
    boundary_bound = math.ceil(math.log2(math.sqrt(2 * f0 / lam_min))) + 1
    interior_bound, g = 0, g_max
    while g > gtol:
        g, interior_bound = min(0.5, math.sqrt(g)) * g, interior_bound + 1
    nit = 0
    while (g_norm := float(x.grad.norm())) > gtol:
        radius = opt.radius
        cg_before = opt.state[x].get("cg_iter", 0)
        x_prev = x.detach().clone()
        opt.step(objective)
        objective()
        nit += 1
        step = float((x.detach() - x_prev).norm())
        eta = min(0.5, math.sqrt(g_norm))
        if step < radius * (1 - 1e-9):  # interior: the CG residual is the new gradient
            assert float(x.grad.norm()) <= eta * g_norm * (1 + 1e-6) + 1e-11
            assert opt.state[x]["cg_iter"] - cg_before <= cg_bound(eta)
        assert opt.state[x]["last_rho"] == pytest.approx(1.0, abs=1e-6)
    # a step is at most the radius, which at most doubles per step: the steps cover
    # ||x0 - x*|| = sqrt(n) only after ceil(log2(sqrt(n) + 1)) of them
    assert math.ceil(math.log2(math.sqrt(N) + 1)) <= nit <= boundary_bound + interior_bound
    assert opt.state[x]["rejected"] == 0


# -- the torch contract and errors --------------------------------------------------------


def test_state_dict_round_trip_continues_identically() -> None:
    def run(reload: bool) -> Tensor:
        x = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
        objective = Objective.from_autograd([x], lambda: ROSENBROCK.fn(x))
        opt = TrustRegion([x])
        for _ in range(8):
            opt.step(objective)
        if reload:
            saved = copy.deepcopy(opt.state_dict())
            opt = TrustRegion([x])
            opt.load_state_dict(saved)
        for _ in range(8):
            opt.step(objective)
        return x.detach().clone()

    assert torch.equal(run(True), run(False))


def test_zero_gradient_is_a_no_op() -> None:
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    objective = Objective.from_autograd([x], lambda: (x**2).sum())
    TrustRegion([x]).step(objective)
    assert torch.equal(x.detach(), torch.zeros(3, dtype=torch.float64))
    assert objective.nhev == 0 and objective.nfev == 1


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"initial_radius": 0.0}, "initial_radius must be in (0, inf), got 0.0"),
        ({"initial_radius": 10.0, "max_radius": 5.0}, "max_radius must be in [10, inf), got 5.0"),
        ({"eta": 0.25}, "eta must be in [0, 0.25), got 0.25"),
        ({"max_cg_iter": 0}, "max_cg_iter must be an integer >= 1, got 0"),
        ({"cg_rtol": 0.0}, "cg_rtol must be in (0, 1), got 0.0"),
        ({"max_rejections": 0}, "max_rejections must be an integer >= 1, got 0"),
    ],
)
def test_bad_arguments(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        TrustRegion([torch.zeros(2, requires_grad=True)], **kwargs)
    assert fragment in str(info.value)


def test_one_parameter_group_and_a_closure_are_required() -> None:
    a = torch.zeros(2, requires_grad=True)
    b = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="one parameter group"):
        TrustRegion([{"params": [a]}, {"params": [b]}])
    with pytest.raises(ValueError, match="closure"):
        TrustRegion([a]).step(None)  # type: ignore[arg-type]
