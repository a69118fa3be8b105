"""The Moré-Garbow-Hillstrom test set against published values.

Sources of the reference numbers:

* MGH: J. J. Moré, B. S. Garbow, K. E. Hillstrom, ACM TOMS 7(1), 1981 (f*, minimizers).
* MW: J. J. Moré and S. M. Wild, "Benchmarking derivative-free optimization algorithms",
  SIAM J. Optim. 20(1), 172-191, 2009: f(x0) of 53 problems built from the MGH set,
  printed to seven figures (their starts x0 and 10 x0, and some other dimensions).
* NIST StRD nonlinear regression, certified values for MGH09 (Kowalik-Osborne),
  MGH10 (Meyer) and MGH17 (Osborne 1), eleven figures.
* Closed forms worked out by hand from the definitions (noted at each).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from descend.problems import PROBLEMS, get_problem, mgh
from descend.problems.mgh import MGH_PROBLEMS, LeastSquaresProblem

DTYPE = torch.float64
ALL = list(MGH_PROBLEMS.values())
IDS = [p.name for p in ALL]


def f_at(problem: LeastSquaresProblem, point) -> float:
    return problem.fn(torch.as_tensor(point, dtype=DTYPE)).item()


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


# ---------------------------------------------------------------------------------------
# the set itself


def test_all_35_problems_registered_in_paper_order() -> None:
    numbers = [p.number for p in ALL]
    assert numbers == list(range(1, 36))
    for p in ALL:
        assert p.name.startswith("mgh-")
        assert PROBLEMS[p.name] is p
        assert len(p.start) == p.dim == len(p.bounds)
        assert p.residuals(p.x0()).shape == (p.m,)
        assert p.m >= p.dim or p.number in (22, 21)  # square or overdetermined
        for low, high in p.bounds:
            assert low < high
        for x, (low, high) in zip(p.start, p.bounds):
            assert low <= x <= high


@pytest.mark.parametrize("problem", ALL, ids=IDS)
def test_objective_is_the_sum_of_squared_residuals(problem: LeastSquaresProblem) -> None:
    gen = torch.Generator().manual_seed(problem.number)
    x = problem.x0() + 0.1 * torch.randn(problem.dim, generator=gen, dtype=DTYPE)
    r = problem.residuals(x)
    assert problem.fn(x).item() == pytest.approx((r**2).sum().item(), rel=1e-14)


# ---------------------------------------------------------------------------------------
# f(x0): published values (MW, seven figures) and closed forms


# (problem, point, MW's f, relative precision of MW's printed figure)
MW_VALUES = [
    ("mgh-rosenbrock", None, 24.2, 1e-12),
    ("mgh-rosenbrock", ("x10",), 1.795769e6, 5e-7),
    ("mgh-freudenstein-roth", None, 400.5, 1e-12),
    ("mgh-freudenstein-roth", ("x10",), 1.545754e8, 5e-7),
    ("mgh-jennrich-sampson", None, 4171.306, 5e-7),
    ("mgh-helical-valley", None, 2500.0, 1e-12),
    ("mgh-helical-valley", (-10.0, 0.0, 0.0), 10600.0, 1e-12),
    ("mgh-bard", None, 41.68170, 5e-7),
    ("mgh-bard", ("x10",), 1306.234, 5e-7),
    ("mgh-meyer", None, 1.693608e9, 5e-7),
    ("mgh-box3d", None, 1031.154, 5e-7),
    ("mgh-powell-singular", None, 215.0, 1e-12),
    ("mgh-powell-singular", ("x10",), 1.615400e6, 5e-7),
    ("mgh-kowalik-osborne", None, 5.313172e-3, 5e-7),
    ("mgh-brown-dennis", None, 7.926693e6, 5e-7),
    ("mgh-brown-dennis", ("x10",), 3.081064e11, 5e-7),
    ("mgh-osborne-1", (0.5, 1.5, 1.0, 0.01, 0.02), 16.17411, 5e-7),
    ("mgh-osborne-2", None, 2.093420, 5e-7),
    ("mgh-osborne-2", ("x10",), 199.6847, 5e-7),
    ("mgh-watson", (0.5,) * 6, 16.43083, 5e-7),
    ("mgh-watson", (5.0,) * 6, 2.323367e6, 5e-7),
    ("mgh-watson-9d", (0.5,) * 9, 26.90417, 5e-7),
    ("mgh-watson-9d", (5.0,) * 9, 8.158877e6, 5e-7),
    ("mgh-watson-12d", (0.5,) * 12, 73.67821, 5e-7),
    ("mgh-watson-12d", (5.0,) * 12, 2.059384e7, 5e-7),
    ("mgh-brown-almost-linear", None, 273.2480, 5e-7),
    ("mgh-brown-almost-linear-100d", None, 2.524757e5, 5e-7),
    ("mgh-linear-full-rank", None, 72.0, 1e-12),
    ("mgh-linear-full-rank", ("x10",), 1125.0, 1e-12),
    ("mgh-linear-rank-1", None, 1.165420e7, 5e-7),
    ("mgh-linear-rank-1", ("x10",), 1.168591e9, 5e-7),
    ("mgh-linear-rank-1-zero", None, 4.989195e6, 5e-7),
    ("mgh-linear-rank-1-zero", ("x10",), 5.009356e8, 5e-7),
    ("mgh-chebyquad", None, 3.861770e-2, 5e-7),
    ("mgh-chebyquad-6d", None, 4.642817e-2, 5e-7),
    ("mgh-chebyquad-7d", None, 3.377064e-2, 5e-7),
    ("mgh-chebyquad-9d", None, 2.888298e-2, 5e-7),
]


@pytest.mark.parametrize(
    ("name", "point", "published", "precision"),
    MW_VALUES,
    ids=[
        f"{n}-{'x0' if p is None else '10x0' if p == ('x10',) else 'other'}"
        for n, p, _, _ in MW_VALUES
    ],
)
def test_f_matches_more_wild_2009(name: str, point, published: float, precision: float) -> None:
    problem = get_problem(name)
    if point is None:
        point = problem.start
    elif point == ("x10",):
        point = tuple(10.0 * v for v in problem.start)
    assert rel(f_at(problem, point), published) <= precision


def test_f_at_start_closed_forms() -> None:
    e = math.exp
    closed = {
        # (1 - 1e6)^2 + (1 - 2e-6)^2 + (1 - 2)^2
        "mgh-brown-badly-scaled": (1 - 1e6) ** 2 + (1 - 2e-6) ** 2 + 1.0,
        # f1 = -1; f2 = 1 + e^-1 - 1.0001
        "mgh-powell-badly-scaled": 1.0 + (e(-1.0) - 1e-4) ** 2,
        # y_i - x1 (1 - 1) = y_i
        "mgh-beale": 1.5**2 + 2.25**2 + 2.625**2,
        # 100*4 + 16 + 90*4 + 16 + 10*4 + 0
        "mgh-wood": 19192.0,
        # x = 0: the 29 fits give -1, f30 = 0, f31 = -1
        "mgh-watson": 30.0,
        # 5 blocks of Rosenbrock at (-1.2, 1): 24.2 each
        "mgh-extended-rosenbrock": 5 * 24.2,
        # 3 blocks of Powell singular at (3, -1, 0, 1): 215 each
        "mgh-extended-powell": 3 * 215.0,
        # a sum (j - 1)^2 + (sum j^2 - 1/4)^2 with j = 1..10
        "mgh-penalty-1": 1e-5 * sum((j - 1) ** 2 for j in range(1, 11))
        + (sum(j * j for j in range(1, 11)) - 0.25) ** 2,
        # x_j - 1 = -j/n; s = sum j (-j/n) = -385/10
        "mgh-variably-dimensioned": sum((j / 10) ** 2 for j in range(1, 11)) + 38.5**2 + 38.5**4,
        # x = -1: f_i = -5 - x_{i-1} - 2 x_{i+1} + 1: -2 (i = 1), -1 (inside), -3 (i = n)
        "mgh-broyden-tridiagonal": 4.0 + 8 * 1.0 + 9.0,
        # x = -1: x(2 + 5x^2) + 1 = -6 and x(1 + x) = 0
        "mgh-broyden-banded": 10 * 36.0,
    }
    c = 0.1  # trigonometric, n = 10, x = 1/n: f_i = n - n cos c + i (1 - cos c) - sin c
    closed["mgh-trigonometric"] = sum(
        (10 - 10 * math.cos(c) + i * (1 - math.cos(c)) - math.sin(c)) ** 2 for i in range(1, 11)
    )
    for name, value in closed.items():
        problem = MGH_PROBLEMS[name]
        assert rel(f_at(problem, problem.start), value) < 1e-12, name


# ---------------------------------------------------------------------------------------
# minima


@pytest.mark.parametrize("problem", ALL, ids=IDS)
def test_f_min_agrees_with_the_published_figure(problem: LeastSquaresProblem) -> None:
    """MGH prints f* truncated to six figures ("8.21487...E-3"): the accurate value lies
    at or above the printed one, within one unit of its last figure."""
    published, value = problem.f_min_published, problem.f_min
    if problem.f_min_rtol == 0:
        assert value == pytest.approx(published, rel=1e-14, abs=0.0)
    else:
        assert published <= value <= published * (1 + problem.f_min_rtol)


@pytest.mark.parametrize("problem", ALL, ids=IDS)
def test_f_at_each_minimizer_is_f_min_and_nothing_nearby_is_lower(
    problem: LeastSquaresProblem,
) -> None:
    gen = torch.Generator().manual_seed(problem.number)
    for point in problem.minima:
        x = torch.tensor(point, dtype=DTYPE)
        f = problem.fn(x).item()
        assert f == pytest.approx(problem.f_min, rel=1e-9, abs=1e-20), (point, f)
        # a local minimum: random nearby points are not lower (beyond rounding)
        scale = 1e-4 * x.abs().clamp(min=1e-3)
        nearby = x + scale * torch.randn(64, problem.dim, generator=gen, dtype=DTYPE)
        assert (problem.fn(nearby) >= f - 1e-12 * (1 + abs(f))).all()


@pytest.mark.parametrize("problem", ALL, ids=IDS)
def test_each_minimizer_is_stationary_within_a_newton_step(problem: LeastSquaresProblem) -> None:
    r"""At a stationary point the Newton correction :math:`H^+ g` vanishes; measuring that
    instead of :math:`\|g\|` makes the test blind to scaling (Meyer's gradient is 1e-4 at
    a point correct to 15 figures, because f changes by 1e6 per unit of x1)."""
    for point in problem.minima + problem.local_minima:
        x = torch.tensor(point, dtype=DTYPE)
        g = torch.func.grad(problem.fn)(x)
        h = torch.func.hessian(problem.fn)(x)
        step = torch.linalg.pinv(h, rtol=1e-12) @ g
        assert torch.linalg.vector_norm(step) <= 1e-8 * (1 + torch.linalg.vector_norm(x))
        assert torch.linalg.eigvalsh(h).min() >= -1e-8 * torch.linalg.eigvalsh(h).abs().max()


NIST = {
    # name: (certified parameters, certified residual sum of squares)
    "mgh-kowalik-osborne": (
        (1.9280693458e-01, 1.9128232873e-01, 1.2305650693e-01, 1.3606233068e-01),
        3.0750560385e-04,
    ),
    "mgh-meyer": ((5.6096364710e-03, 6.1813463463e03, 3.4522363462e02), 8.7945855171e01),
    "mgh-osborne-1": (
        (3.7541005211e-01, 1.9358469127e00, -1.4646871366e00, 1.2867534640e-02, 2.2122699662e-02),
        5.4648946975e-05,
    ),
}


@pytest.mark.parametrize("name", list(NIST))
def test_nist_certified_values(name: str) -> None:
    problem = MGH_PROBLEMS[name]
    params, ssr = NIST[name]
    assert rel(f_at(problem, params), ssr) < 1e-9
    assert rel(problem.f_min, ssr) < 1e-10
    np.testing.assert_allclose(problem.minima[0], params, rtol=1e-9)


def test_minimizers_known_in_closed_form() -> None:
    zero = [
        ("mgh-rosenbrock", (1.0, 1.0)),
        ("mgh-freudenstein-roth", (5.0, 4.0)),
        ("mgh-brown-badly-scaled", (1e6, 2e-6)),
        ("mgh-beale", (3.0, 0.5)),
        ("mgh-helical-valley", (1.0, 0.0, 0.0)),
        ("mgh-gulf", (50.0, 25.0, 1.5)),
        ("mgh-box3d", (1.0, 10.0, 1.0)),
        ("mgh-box3d", (10.0, 1.0, -1.0)),
        ("mgh-box3d", (2.7, 2.7, 0.0)),  # any x1 = x2 with x3 = 0
        ("mgh-powell-singular", (0.0,) * 4),
        ("mgh-wood", (1.0,) * 4),
        ("mgh-biggs-exp6", (1.0, 10.0, 1.0, 5.0, 4.0, 3.0)),
        ("mgh-extended-rosenbrock", (1.0,) * 10),
        ("mgh-extended-powell", (0.0,) * 12),
        ("mgh-variably-dimensioned", (1.0,) * 10),
        ("mgh-trigonometric", (0.0,) * 10),
        ("mgh-trigonometric", (2 * math.pi,) * 10),
        ("mgh-brown-almost-linear", (1.0,) * 10),
    ]
    for name, point in zero:
        assert f_at(MGH_PROBLEMS[name], point) < 1e-24, name
    # the Gulf problem's minimizer fits every point exactly: exp(-(-50 ln t)/50) = t
    # Brown almost-linear: (a, ..., a, a^(1-n)) for the other root of n a^n - (n+1) a^(n-1) + 1
    n = 10
    roots = np.roots([n, -(n + 1)] + [0] * (n - 2) + [1])
    for alpha in roots[np.isreal(roots)].real:
        point = (alpha,) * (n - 1) + (alpha ** (1 - n),)
        assert f_at(MGH_PROBLEMS["mgh-brown-almost-linear"], point) < 1e-20, alpha
    assert f_at(MGH_PROBLEMS["mgh-brown-almost-linear"], (0.0,) * 9 + (11.0,)) == 1.0
    # linear full rank: m - n at -1
    assert f_at(MGH_PROBLEMS["mgh-linear-full-rank"], (-1.0,) * 9) == pytest.approx(36.0)


def test_rank_one_problems_attain_f_min_on_a_whole_hyperplane() -> None:
    gen = torch.Generator().manual_seed(0)
    m = 35
    for name, weights, target, f_min in [
        (
            "mgh-linear-rank-1",
            torch.arange(1.0, 8.0, dtype=DTYPE),
            3 / (2 * m + 1),
            m * (m - 1) / (2 * (2 * m + 1)),
        ),
        (
            "mgh-linear-rank-1-zero",
            torch.tensor([0.0, 2, 3, 4, 5, 6, 0], dtype=DTYPE),
            3 / (2 * m - 3),
            (m * m + 3 * m - 6) / (2 * (2 * m - 3)),
        ),
    ]:
        problem = MGH_PROBLEMS[name]
        assert problem.f_min == pytest.approx(f_min, rel=1e-15)
        x = torch.randn(20, 7, generator=gen, dtype=DTYPE)
        x = x + ((target - x @ weights) / (weights @ weights))[:, None] * weights  # project
        assert torch.allclose(problem.fn(x), torch.full((20,), f_min, dtype=DTYPE), rtol=1e-12)


def test_freudenstein_roth_local_minimum() -> None:
    problem = MGH_PROBLEMS["mgh-freudenstein-roth"]
    (point,) = problem.local_minima
    assert f_at(problem, point) == pytest.approx(48.98425367924, rel=1e-11)  # MGH: 48.9842...
    assert point[0] == pytest.approx(11.41, abs=5e-3) and point[1] == pytest.approx(
        -0.8968, abs=5e-5
    )


# ---------------------------------------------------------------------------------------
# derivatives, batching, dtypes


def _central_difference(fn, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences and their rounding error bound, about eps |f| / h per entry."""
    grad, noise = torch.empty_like(x), torch.empty_like(x)
    f = abs(fn(x).item())
    for i in range(x.numel()):
        h = 1e-6 * max(1.0, abs(x[i].item()))
        e = torch.zeros_like(x)
        e[i] = h
        grad[i] = (fn(x + e) - fn(x - e)) / (2 * h)
        noise[i] = 4 * torch.finfo(DTYPE).eps * f / h
    return grad, noise


@pytest.mark.parametrize("problem", ALL, ids=IDS)
def test_autodiff_gradient_matches_central_differences(problem: LeastSquaresProblem) -> None:
    gen = torch.Generator().manual_seed(100 + problem.number)
    x0 = problem.x0()
    shift = 0.05 * x0.abs().clamp(min=1.0) * torch.rand(problem.dim, generator=gen, dtype=DTYPE)
    for x in (x0, x0 + shift):
        grad = torch.func.grad(problem.fn)(x)
        fd, noise = _central_difference(problem.fn, x)
        scale = torch.linalg.vector_norm(grad) + 1e-12
        assert ((grad - fd).abs() <= 1e-5 * scale + noise).all(), (x, grad, fd)


@pytest.mark.parametrize("problem", ALL, ids=IDS)
def test_batched_evaluation_equals_pointwise(problem: LeastSquaresProblem) -> None:
    gen = torch.Generator().manual_seed(200 + problem.number)
    x = problem.x0() + 0.1 * torch.randn(2, 3, problem.dim, generator=gen, dtype=DTYPE)
    batched_f, batched_r = problem.fn(x), problem.residuals(x)
    assert batched_f.shape == (2, 3) and batched_r.shape == (2, 3, problem.m)
    for i in range(2):
        for j in range(3):
            assert torch.allclose(batched_f[i, j], problem.fn(x[i, j]), rtol=1e-13, atol=0)
            assert torch.allclose(
                batched_r[i, j], problem.residuals(x[i, j]), rtol=1e-13, atol=1e-300
            )


@pytest.mark.parametrize("problem", ALL, ids=IDS)
def test_float32_keeps_its_dtype_and_agrees(problem: LeastSquaresProblem) -> None:
    f32 = problem.fn(problem.x0(torch.float32))
    assert f32.dtype == torch.float32
    assert f32.item() == pytest.approx(f_at(problem, problem.start), rel=1e-3)


# ---------------------------------------------------------------------------------------
# other dimensions


def test_families_build_other_dimensions() -> None:
    assert get_problem("mgh-extended-rosenbrock-20d").fn(
        get_problem("mgh-extended-rosenbrock-20d").x0()
    ).item() == pytest.approx(12.1 * 20)
    assert get_problem("mgh-extended-powell", dim=8).fn(
        get_problem("mgh-extended-powell", dim=8).x0()
    ).item() == pytest.approx(2 * 215.0)
    for name, published in [("mgh-penalty-1-4d", 2.24997e-5), ("mgh-penalty-2-4d", 9.37629e-6)]:
        problem = get_problem(name)
        assert problem.dim == 4 and problem.f_min_published == published
        assert f_at(problem, problem.minima[0]) == pytest.approx(problem.f_min, rel=1e-10)
    for name in [
        "mgh-discrete-boundary-value",
        "mgh-discrete-integral",
        "mgh-broyden-tridiagonal",
        "mgh-broyden-banded",
    ]:
        problem = get_problem(name, dim=7)
        assert problem.dim == 7 and f_at(problem, problem.minima[0]) < 1e-26, name
    for n in range(1, 10):
        problem = mgh.chebyquad(n)
        assert f_at(problem, problem.minima[0]) == pytest.approx(problem.f_min, abs=1e-26)


def test_discrete_boundary_value_and_integral_equation_share_their_solution() -> None:
    """Both discretize u'' = (u + t + 1)^3 / 2, u(0) = u(1) = 0; the trapezoid rule on the
    Green's function of the second difference reproduces the difference equations."""
    a = MGH_PROBLEMS["mgh-discrete-boundary-value"].minima[0]
    b = MGH_PROBLEMS["mgh-discrete-integral"].minima[0]
    np.testing.assert_allclose(a, b, rtol=1e-13)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: mgh.watson(7), r"n must be one of 6, 9, 12.*got 7"),
        (lambda: mgh.penalty_1(5), r"n must be 4 or 10.*got 5"),
        (lambda: mgh.extended_rosenbrock(7), r"n must be an even integer.*got 7"),
        (lambda: mgh.extended_powell_singular(6), r"multiple of 4.*got 6"),
        (lambda: mgh.linear_full_rank(10, 5), r"m must be >= n = 10.*got m = 5"),
        (lambda: mgh.chebyquad(10), r"n must be one of 1, 2, 3.*got 10"),
        (lambda: get_problem("mgh-watson-7d"), r"got 7"),
    ],
)
def test_bad_dimensions_are_refused_with_the_valid_range(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_solved_uses_the_accurate_minimum() -> None:
    problem = MGH_PROBLEMS["mgh-jennrich-sampson"]
    assert problem.solved(124.36218235)
    assert not problem.solved(124.3625)
    # the printed 124.362 lies below the minimum: nothing can reach it
    assert problem.f_min - problem.f_min_published > 1e-4
