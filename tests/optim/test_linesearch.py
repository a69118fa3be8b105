"""Line searches: the Armijo and strong Wolfe conditions asserted on every accepted step,
the failure cases reported as results, and the closure-driven line function."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import line_search as scipy_line_search
from scipy.optimize import rosen, rosen_der, rosen_hess

from descend.objective import Objective
from descend.optim.flat_params import FlatParams
from descend.optim.line_search_optimizer import LineFunction, search
from descend.optim.linesearch import (
    backtracking_armijo,
    cubic_minimizer,
    fixed_step,
    quadratic_minimizer,
    strong_wolfe,
)

C1 = 1e-4


def armijo_holds(res, f0, dphi0, c1=C1):
    return res.f <= f0 + c1 * res.t * dphi0


def curvature_holds(res, dphi0, c2):
    return abs(res.dphi) <= c2 * abs(dphi0)


def counted(phi):
    """phi that records its calls, to check nfev and that (t, f, dphi) are consistent."""
    calls = []

    def wrapped(t):
        value = phi(t)
        calls.append((t, *value))
        return value

    wrapped.calls = calls
    return wrapped


def check_wolfe(phi, t0=1.0, c2=0.9, **kw):
    phi = counted(phi)
    f0, dphi0 = phi(0.0)
    phi.calls.clear()
    res = strong_wolfe(phi, f0, dphi0, t0, C1, c2, **kw)
    assert res.success, res.message
    assert res.t > 0
    assert armijo_holds(res, f0, dphi0), (res, f0, dphi0)
    assert curvature_holds(res, dphi0, c2), (res, dphi0)
    assert res.nfev == len(phi.calls)
    assert (res.t, res.f, res.dphi) in phi.calls  # an evaluated point, reported as evaluated
    return res


# -- a family of line functions -----------------------------------------------------------


def quadratic(a, b):
    """phi(t) = a (t - b)^2, slope -2ab < 0 at 0."""
    return lambda t: (a * (t - b) ** 2, 2 * a * (t - b))


def _exp(z):
    return math.inf if z > 709 else math.exp(z)  # overflow gives inf, as in torch


def exp_line(a, b):
    """phi(t) = exp(a t) - b t, minimum at log(b / a) / a; inf far out."""
    return lambda t: (_exp(a * t) - b * t, a * _exp(a * t) - b)


def nan_beyond(phi, edge):
    """phi, but NaN for t > edge (e.g. a log or sqrt of a negative number)."""

    def wrapped(t):
        return phi(t) if t <= edge else (math.nan, math.nan)

    return wrapped


def barrier(t):
    """phi(t) = -log(1 - t) - 3 t: finite on t < 1 only, minimum at t = 2/3."""
    if t >= 1:
        return math.nan, math.nan
    return -math.log(1 - t) - 3 * t, 1 / (1 - t) - 3


def rosen_line(x, d):
    x, d = np.asarray(x, float), np.asarray(d, float)
    return lambda t: (rosen(x + t * d), float(rosen_der(x + t * d) @ d))


FAMILY = {
    "quadratic-min-at-3": quadratic(1.0, 3.0),
    "quadratic-min-at-1e-4": quadratic(1e4, 1e-4),
    "quadratic-min-at-1e3": quadratic(1e-3, 1e3),
    "exp": exp_line(1.0, 2.0),
    "exp-steep": exp_line(20.0, 100.0),
    "quartic": lambda t: ((t - 1.5) ** 4 - 2 * t, 4 * (t - 1.5) ** 3 - 2),
    "sin": lambda t: (0.1 * t * t - math.sin(3 * t), 0.2 * t - 3 * math.cos(3 * t)),
    "barrier-nan-beyond-1": barrier,
    "quadratic-nan-beyond-0.5": nan_beyond(quadratic(1.0, 0.3), 0.5),
    "rosen-steepest": rosen_line([-1.2, 1.0], -rosen_der(np.array([-1.2, 1.0]))),
    "rosen-newton": rosen_line(
        [-1.2, 1.0], -np.linalg.solve(rosen_hess([-1.2, 1.0]), rosen_der(np.array([-1.2, 1.0])))
    ),
}


@pytest.mark.parametrize("name", sorted(FAMILY))
@pytest.mark.parametrize("t0", [1e-3, 1.0, 1e3])
@pytest.mark.parametrize("c2", [0.1, 0.9])
def test_strong_wolfe_conditions_hold_on_the_family(name, t0, c2):
    check_wolfe(FAMILY[name], t0=t0, c2=c2)


@pytest.mark.parametrize("name", sorted(FAMILY))
@pytest.mark.parametrize("t0", [1e-3, 1.0, 1e3])
def test_armijo_holds_and_the_step_is_the_first_acceptable_one(name, t0):
    phi = counted(FAMILY[name])
    f0, dphi0 = phi(0.0)
    phi.calls.clear()
    res = backtracking_armijo(phi, f0, dphi0, t0, C1, 0.5)
    assert res.success, res.message
    assert armijo_holds(res, f0, dphi0)
    assert res.t == t0 * 0.5 ** (res.nfev - 1)  # the geometric sequence from t0
    for t, f, _ in phi.calls[:-1]:  # every earlier trial was rejected
        assert not (f <= f0 + C1 * t * dphi0)


@settings(max_examples=150, deadline=None)
@given(
    a=st.floats(1e-3, 1e3),
    b=st.floats(1e-3, 1e3),
    t0=st.floats(1e-4, 1e4),
    c2=st.sampled_from([0.1, 0.5, 0.9]),
)
def test_strong_wolfe_on_random_quadratics_and_exponentials(a, b, t0, c2):
    check_wolfe(quadratic(a, b), t0=t0, c2=c2)
    check_wolfe(exp_line(min(a, 20.0), min(a, 20.0) + b), t0=t0, c2=c2)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.sampled_from([2, 5, 20]))
def test_strong_wolfe_on_rosenbrock_along_random_descent_directions(seed, n):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, n)
    g = rosen_der(x)
    d = rng.normal(size=n)
    if d @ g >= 0:
        d = -d
    check_wolfe(rosen_line(x, d), t0=1.0, c2=0.9)
    check_wolfe(rosen_line(x, d), t0=1.0, c2=0.1)


def test_cubic_interpolation_is_exact_on_a_quadratic():
    phi = quadratic(2.5, 1.7)
    assert cubic_minimizer(0.0, *phi(0.0), 4.0, *phi(4.0)) == pytest.approx(1.7, rel=1e-14)
    assert cubic_minimizer(3.0, *phi(3.0), 0.5, *phi(0.5)) == pytest.approx(1.7, rel=1e-14)
    assert quadratic_minimizer(0.0, *phi(0.0), 4.0, phi(4.0)[0]) == pytest.approx(1.7)
    # a concave quadratic has no minimizer
    assert quadratic_minimizer(0.0, 0.0, -1.0, 1.0, -2.0) is None
    # a quadratic line search needs two evaluations: t0, then the exact minimizer
    res = check_wolfe(quadratic(1.0, 3.0), t0=1.0, c2=0.01)
    assert res.t == pytest.approx(3.0) and res.nfev == 2


def test_shrinks_back_into_the_finite_region():
    for t0 in (1.0, 10.0, 1e6):
        res = check_wolfe(barrier, t0=t0)
        assert res.t < 1
        res = check_wolfe(nan_beyond(quadratic(1.0, 1e-3), 2e-3), t0=t0)
        assert 0 < res.t <= 2e-3


def test_minimum_beyond_the_finite_region_gives_the_best_point_near_its_edge():
    # f falls all the way to where it stops being finite: no Wolfe point, but progress
    res = strong_wolfe(nan_beyond(quadratic(1.0, 2.0), 0.5), 4.0, -4.0, t0=1.0, c2=0.1)
    assert not res.success
    assert 0.45 < res.t <= 0.5 and res.f == pytest.approx((res.t - 2) ** 2)
    inf_beyond = lambda t: (math.inf, math.inf) if t > 0.5 else quadratic(1.0, 2.0)(t)  # noqa: E731
    res = backtracking_armijo(inf_beyond, 4.0, -4.0, t0=1.0)
    assert res.success and res.t == 0.5


def test_agrees_with_scipy_line_search_on_rosenbrock():
    """SciPy's strong Wolfe search (MINPACK dcsrch, then N&W zoom) and ours accept different
    steps; both must satisfy the conditions, and ours must not need more evaluations."""
    rng = np.random.default_rng(0)
    ours = theirs = 0
    for _ in range(40):
        x = rng.uniform(-2, 2, 4)
        g = rosen_der(x)
        d = -g / np.linalg.norm(g) * rng.uniform(0.01, 1.0)
        phi = rosen_line(x, d)
        res = check_wolfe(phi, t0=1.0, c2=0.9)
        ours += res.nfev
        sc = scipy_line_search(rosen, rosen_der, x, d, g, rosen(x), c1=C1, c2=0.9, maxiter=30)
        assert sc[0] is not None
        f_t, dphi_t = phi(sc[0])
        assert f_t <= rosen(x) + C1 * sc[0] * (g @ d) and abs(dphi_t) <= 0.9 * abs(g @ d)
        theirs += sc[1]
    assert ours <= theirs, (ours, theirs)


# -- failures are results -------------------------------------------------------------------


@pytest.mark.parametrize("search_fn", [strong_wolfe, backtracking_armijo])
def test_not_a_descent_direction(search_fn):
    phi = counted(quadratic(1.0, -1.0))  # uphill: phi'(0) = 2 > 0
    res = search_fn(phi, 1.0, 2.0)
    assert not res.success and res.t == 0 and res.nfev == 0 and phi.calls == []
    assert "not a descent direction" in res.message
    res = search_fn(phi, 1.0, 0.0)
    assert not res.success and "not a descent direction" in res.message


@pytest.mark.parametrize("search_fn", [strong_wolfe, backtracking_armijo])
def test_flat_function_stops_early(search_fn):
    # the slope claims a decrease too small to show in f at double precision
    phi = counted(lambda t: (1.0 - 1e-20 * t, -1e-20))
    res = search_fn(phi, 1.0, -1e-20)
    assert not res.success and res.t == 0 and res.nfev <= 2
    assert "no decrease measurable" in res.message


def test_steps_below_the_resolution_of_x_stop_early():
    x = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    obj = Objective.from_autograd([x], lambda: ((x - 2) ** 2).sum())
    obj.closure()
    flat = FlatParams([x])
    d = torch.tensor([1e-30, 1e-30], dtype=torch.float64)
    phi = LineFunction(obj, flat, flat.gather(), d, obj.closure().item())
    dphi0 = float(flat.gather_grad() @ d)
    res = strong_wolfe(phi, phi.f, dphi0, 1.0, eps=0.0)
    assert not res.success and "resolution of x" in res.message and res.nfev <= 2


@pytest.mark.parametrize("search_fn", [strong_wolfe, backtracking_armijo])
def test_nan_everywhere_spends_the_budget_and_keeps_t_zero(search_fn):
    phi = counted(lambda t: (math.nan, math.nan))
    res = search_fn(phi, 1.0, -1.0, max_evals=12)
    assert not res.success and res.t == 0 and res.f == 1.0 and res.nfev == 12
    assert "max_evals = 12" in res.message


def test_budget_spent_returns_the_best_point():
    # unbounded below along the line: extrapolation never finds a curvature point
    phi = counted(lambda t: (-t, -1.0))
    res = strong_wolfe(phi, 0.0, -1.0, max_evals=5)
    assert not res.success and res.nfev == 5
    assert res.t == max(t for t, _, _ in phi.calls) and res.f == -res.t
    res = strong_wolfe(lambda t: (-t, -1.0), 0.0, -1.0, t_max=100.0)
    assert not res.success and res.t == 100.0 and "t_max" in res.message


def test_one_evaluation_budget():
    res = strong_wolfe(quadratic(1.0, 0.001), 1e-6, -2e-3, t0=1.0, max_evals=1)
    assert not res.success and res.nfev == 1 and res.t == 0


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"c1": 0.0}, "c1"),
        ({"c1": 1.0}, "c1"),
        ({"c2": 1.0}, "c2"),
        ({"c1": 0.5, "c2": 0.4}, "c1"),
        ({"t0": 0.0}, "t0"),
        ({"t0": -1.0}, "t0"),
        ({"max_evals": 0}, "max_evals"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        strong_wolfe(quadratic(1.0, 1.0), 1.0, -2.0, **kwargs)


def test_bad_shrink():
    for shrink in (0.0, 1.0, 2.0):
        with pytest.raises(ValueError, match="shrink"):
            backtracking_armijo(quadratic(1.0, 1.0), 1.0, -2.0, shrink=shrink)


def test_fixed_step():
    res = fixed_step(quadratic(1.0, 1.0), 1.0, -2.0, 5.0)  # f rises: accepted all the same
    assert res.success and res.t == 5.0 and res.f == 16.0
    res = fixed_step(lambda t: (math.nan, 0.0), 1.0, -2.0, 5.0)
    assert not res.success and res.t == 0


# -- the line function of a closure ---------------------------------------------------------


def two_tensor_objective(dtype=torch.float64):
    a = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=dtype, requires_grad=True)
    b = torch.tensor([4.0, -1.0, 2.0], dtype=dtype, requires_grad=True)

    def loss():
        return (a**2).sum() * 0.5 + ((b - 1) ** 4).sum() + (a.sum() * b[0])

    return [a, b], Objective.from_autograd([a, b], loss)


def test_flat_params_round_trip_and_multiple_tensors():
    params, obj = two_tensor_objective()
    obj.closure()
    flat = FlatParams(params)
    assert flat.numel == 7 and not flat.single
    x = flat.gather()
    torch.testing.assert_close(x, torch.cat([p.detach().reshape(-1) for p in params]))
    g = flat.gather_grad()
    torch.testing.assert_close(g, torch.cat([p.grad.reshape(-1) for p in params]))
    flat.assign_axpy(x, 2.0, torch.ones(7, dtype=torch.float64))
    torch.testing.assert_close(flat.gather(), x + 2.0)
    flat.assign(x)
    assert torch.equal(flat.gather(), x)


def test_flat_params_refuses_mixed_dtypes():
    a = torch.zeros(2, requires_grad=True)
    b = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError, match="dtype"):
        FlatParams([a, b])
    with pytest.raises(ValueError, match="empty"):
        FlatParams([])


def test_line_function_matches_a_direct_evaluation_and_tracks_the_best_point():
    params, obj = two_tensor_objective()
    f0 = obj.closure().item()
    flat = FlatParams(params)
    x0 = flat.gather()
    d = -flat.gather_grad()
    phi = LineFunction(obj, flat, x0.clone(), d, f0)
    for t in (0.3, 0.01, 1.0):
        f, dphi = phi(t)
        xt = (x0 + t * d).detach().requires_grad_(True)
        a, b = xt[:4].reshape(2, 2), xt[4:]
        ref = (a**2).sum() * 0.5 + ((b - 1) ** 4).sum() + a.sum() * b[0]
        ref.backward()
        assert f == pytest.approx(ref.item(), rel=1e-14)
        assert dphi == pytest.approx(float(xt.grad @ d), rel=1e-12)
    assert phi.nfev == 3 and obj.nfev == 4
    assert phi.best_f == min(phi(t)[0] for t in (0.3, 0.01, 1.0))
    phi.move_to(0.0)
    assert torch.equal(flat.gather(), x0)


def test_search_ends_at_the_accepted_point_with_its_evaluation_cached():
    params, obj = two_tensor_objective()
    f0 = obj.closure().item()
    flat = FlatParams(params)
    x0, g0 = flat.gather(), flat.gather_grad()
    phi = LineFunction(obj, flat, x0.clone(), -g0, f0)
    res = search(phi, f0, -float(g0 @ g0), t0=1.0 / g0.norm().item())
    assert res.success and res.f < f0
    torch.testing.assert_close(flat.gather(), x0 - res.t * g0)
    nfev = obj.nfev
    assert obj.closure().item() == res.f and obj.nfev == nfev  # cached: no new evaluation
    torch.testing.assert_close(flat.gather_grad(), phi.grad)


def test_search_failure_restores_the_start_exactly():
    params, obj = two_tensor_objective()
    f0 = obj.closure().item()
    flat = FlatParams(params)
    x0 = flat.gather()
    g0 = flat.gather_grad()
    phi = LineFunction(obj, flat, x0.clone(), g0, f0)  # uphill
    res = search(phi, f0, float(g0 @ g0), method="backtracking")
    assert not res.success and res.t == 0 and res.f == f0
    assert torch.equal(flat.gather(), x0)
    with pytest.raises(ValueError, match="line search method"):
        search(phi, f0, -1.0, method="exact")


def test_float32_parameters_use_float32_rounding():
    x = torch.tensor([3.0, -1.0], requires_grad=True)
    obj = Objective.from_autograd([x], lambda: ((x - 1) ** 2).sum() + 1e3)
    f0 = obj.closure().item()
    flat = FlatParams([x])
    assert flat.eps == torch.finfo(torch.float32).eps
    g0 = flat.gather_grad()
    d = -g0 * 1e-9  # a decrease of ~1e-8 on f = 1e3: below float32 rounding
    phi = LineFunction(obj, flat, flat.gather(), d, f0)
    res = search(phi, f0, float(g0 @ d), t0=1.0)
    assert not res.success and res.nfev <= 3
