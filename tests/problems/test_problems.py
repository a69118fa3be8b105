"""The test problems: values and gradients at the published minima, batching, the registry."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd.functional import hessian

import descend.problems as P
from descend.problems import PROBLEMS, Problem, get_problem, quadratic, register

DTYPE = torch.float64
SCALABLE = {
    "rosenbrock": P.rosenbrock_nd,
    "rastrigin": P.rastrigin_nd,
    "ackley": P.ackley_nd,
    "styblinski-tang": P.styblinski_tang_nd,
}
# The problems of classic.py and quadratic.py, in other dimensions too.
OWN = [
    P.rosenbrock,
    P.beale,
    P.booth,
    P.himmelblau,
    P.rastrigin,
    P.ackley,
    P.styblinski_tang,
    P.goldstein_price,
    P.saddle,
    P.monkey_saddle,
    get_problem("quadratic"),
    P.rosenbrock_nd(5),
    P.rastrigin_nd(3),
    P.ackley_nd(4),
    P.styblinski_tang_nd(3),
    quadratic(6, 1e3, seed=3),
    quadratic(4, 50.0),
]
OWN_IDS = [p.name for p in OWN]
# The contract every registered problem keeps (other modules' too: mgh.py).
CASES = OWN + [p for p in PROBLEMS.values() if all(p is not q for q in OWN)]
IDS = [p.name for p in CASES]


def _value_and_grad(problem: Problem, point) -> tuple[float, torch.Tensor]:
    x = torch.tensor(point, dtype=DTYPE, requires_grad=True)
    f = problem(x)
    (grad,) = torch.autograd.grad(f, x)
    return f.item(), grad


def _close(value: float, reference: float, rtol: float = 1e-6) -> bool:
    return abs(value - reference) <= rtol * max(1.0, abs(reference))


@pytest.mark.parametrize("problem", CASES, ids=IDS)
def test_f_at_every_listed_minimum_is_f_min(problem: Problem) -> None:
    for point in problem.minima:
        f, _ = _value_and_grad(problem, point)
        assert _close(f, problem.f_min), (problem.name, point, f, problem.f_min)


@pytest.mark.parametrize("problem", OWN, ids=OWN_IDS)
def test_gradient_vanishes_at_minima_local_minima_and_saddles(problem: Problem) -> None:
    points = problem.minima + problem.local_minima + problem.saddles
    for point in points:
        _, grad = _value_and_grad(problem, point)
        assert torch.linalg.vector_norm(grad) < 1e-8, (problem.name, point, grad)


@pytest.mark.parametrize("problem", OWN, ids=OWN_IDS)
def test_listed_points_are_what_they_claim_by_the_hessian(problem: Problem) -> None:
    """Minima have a positive semidefinite Hessian, saddles an indefinite or negative one."""
    for point in problem.minima + problem.local_minima:
        eig = torch.linalg.eigvalsh(hessian(problem.fn, torch.tensor(point, dtype=DTYPE)))
        assert eig.min() >= -1e-8, (problem.name, point, eig)
    for point in problem.saddles:
        eig = torch.linalg.eigvalsh(hessian(problem.fn, torch.tensor(point, dtype=DTYPE)))
        assert eig.min() < -1e-8 or eig.abs().max() < 1e-12, (problem.name, point, eig)


@pytest.mark.parametrize("problem", OWN, ids=OWN_IDS)
def test_local_minima_lie_above_f_min(problem: Problem) -> None:
    for point in problem.local_minima:
        f, _ = _value_and_grad(problem, point)
        assert f > problem.f_min + 1e-3


@pytest.mark.parametrize("problem", CASES, ids=IDS)
def test_autodiff_gradient_matches_central_differences(problem: Problem) -> None:
    gen = torch.Generator().manual_seed(7)
    low = torch.tensor([b[0] for b in problem.bounds], dtype=DTYPE)
    high = torch.tensor([b[1] for b in problem.bounds], dtype=DTYPE)
    h = 1e-6
    eye = torch.eye(problem.dim, dtype=DTYPE)
    for _ in range(5):
        point = low + (high - low) * torch.rand(problem.dim, generator=gen, dtype=DTYPE)
        f, grad = _value_and_grad(problem, point.tolist())
        with torch.no_grad():
            fd = (problem(point + h * eye) - problem(point - h * eye)) / (2 * h)
        scale = max(1.0, abs(f), grad.abs().max().item())
        torch.testing.assert_close(grad, fd, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("problem", CASES, ids=IDS)
def test_batched_evaluation_equals_pointwise(problem: Problem) -> None:
    gen = torch.Generator().manual_seed(1)
    batch = 4 * torch.rand(3, 5, problem.dim, generator=gen, dtype=DTYPE) - 2
    values = problem(batch)
    assert values.shape == (3, 5)
    for i in range(3):
        for j in range(5):
            torch.testing.assert_close(values[i, j], problem(batch[i, j]), rtol=1e-12, atol=0)


@pytest.mark.parametrize("problem", CASES, ids=IDS)
def test_metadata_is_consistent(problem: Problem) -> None:
    assert len(problem.start) == problem.dim
    assert len(problem.bounds) == problem.dim
    assert all(low < high for low, high in problem.bounds)
    for point in problem.minima + problem.local_minima + problem.saddles:
        assert len(point) == problem.dim
    assert math.isfinite(problem(problem.x0()).item())
    assert problem.description
    assert problem.reference


def test_float32_evaluation_agrees_with_float64() -> None:
    for problem in CASES:
        x = problem.x0()
        torch.testing.assert_close(problem(x.float()).double(), problem(x), rtol=1e-5, atol=1e-5)


def test_himmelblau_has_four_minima_with_distinct_basins() -> None:
    him = P.himmelblau
    assert len(him.minima) == 4
    published = [(3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)]
    for listed, reference in zip(him.minima, published, strict=True):
        assert listed == pytest.approx(reference, abs=1e-6)
    values = him(torch.tensor(him.minima, dtype=DTYPE))
    assert torch.all(values.abs() < 1e-20)
    # four separate points, not one listed four times
    pts = torch.tensor(him.minima, dtype=DTYPE)
    assert torch.cdist(pts, pts).add(torch.eye(4) * 10).min() > 1.0


def test_rosenbrock_reference_values() -> None:
    assert P.rosenbrock.start == (-1.2, 1.0)
    assert P.rosenbrock(P.rosenbrock.x0()).item() == pytest.approx(24.2)
    ten = P.rosenbrock_nd(10)
    assert ten(torch.ones(10, dtype=DTYPE)).item() == 0.0
    # MGH extended Rosenbrock start: f = 24.2 per pair of coordinates, with the cross
    # terms 100 (x_{2k+1} - x_{2k}^2)^2 = 100 (-1.2 - 1)^2 = 484 between the pairs
    assert ten(ten.x0()).item() == pytest.approx(5 * 24.2 + 4 * 484.0)


def test_styblinski_tang_minimum_and_local_minima() -> None:
    st = P.styblinski_tang
    # the published value: f* = -39.16617 n at x_i = -2.903534
    assert st.minima[0] == pytest.approx((-2.903534, -2.903534), abs=1e-6)
    assert st.f_min == pytest.approx(-78.33234, abs=1e-5)
    assert P.styblinski_tang_nd(5).f_min == pytest.approx(-39.16617 * 5, abs=1e-4)
    assert len(st.local_minima) == 3


def test_goldstein_price_published_values() -> None:
    gp = P.goldstein_price
    assert gp(torch.tensor([0.0, -1.0], dtype=DTYPE)).item() == pytest.approx(3.0, abs=1e-12)
    local = gp(torch.tensor(gp.local_minima, dtype=DTYPE))
    torch.testing.assert_close(local, torch.tensor([30.0, 84.0, 840.0], dtype=DTYPE))


def test_saddle_has_minima_at_root_two_and_a_saddle_at_the_origin() -> None:
    sd = P.saddle
    assert sd.minima == ((0.0, math.sqrt(2)), (0.0, -math.sqrt(2)))
    eig = torch.linalg.eigvalsh(hessian(sd.fn, torch.zeros(2, dtype=DTYPE)))
    torch.testing.assert_close(eig, torch.tensor([-2.0, 2.0], dtype=DTYPE))


def test_monkey_saddle_is_unbounded_below_with_no_minimum() -> None:
    ms = P.monkey_saddle
    assert ms.minima == ()
    assert ms.f_min == -math.inf
    assert math.isnan(ms.distance_to_minimum([0.0, 0.0]))
    # along the negative x axis f = x^3 falls without bound
    far = ms(torch.tensor([[-10.0, 0.0], [-1e3, 0.0]], dtype=DTYPE))
    torch.testing.assert_close(far, torch.tensor([-1e3, -1e9], dtype=DTYPE))
    # the Hessian at the origin is zero: a degenerate (monkey) saddle
    assert hessian(ms.fn, torch.zeros(2, dtype=DTYPE)).abs().max() == 0.0


@pytest.mark.parametrize(
    ("n", "kappa", "seed"), [(2, 100.0, 0), (5, 1e3, 11), (8, 1e4, None), (3, 1.0, 2)]
)
def test_quadratic_condition_number_from_its_hessian(n: int, kappa: float, seed) -> None:
    problem = quadratic(n, kappa, seed=seed)
    point = torch.randn(n, dtype=DTYPE, generator=torch.Generator().manual_seed(0))
    eig = torch.linalg.eigvalsh(hessian(problem.fn, point))
    assert (eig.max() / eig.min()).item() == pytest.approx(kappa, rel=1e-9)
    torch.testing.assert_close(
        eig, torch.logspace(0, math.log10(kappa), n, dtype=DTYPE), rtol=1e-9, atol=1e-9
    )
    matrix = problem.fn.matrix
    is_diagonal = torch.equal(matrix, torch.diag(torch.diagonal(matrix)))
    assert is_diagonal == (seed is None or n == 1)


def test_quadratic_is_deterministic_per_seed_and_rotates_by_seed() -> None:
    a, b, c = quadratic(4, 10.0, seed=5), quadratic(4, 10.0, seed=5), quadratic(4, 10.0, seed=6)
    assert torch.equal(a.fn.matrix, b.fn.matrix)
    assert not torch.allclose(a.fn.matrix, c.fn.matrix)
    state = torch.random.get_rng_state()
    quadratic(4, 10.0, seed=9)
    assert torch.equal(state, torch.random.get_rng_state()), "global RNG was touched"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0, "condition_number": 10.0}, r"n must be an integer >= 1, got 0"),
        ({"n": 3, "condition_number": 0.5}, r"condition_number must be in \[1, inf\), got 0.5"),
        ({"n": 1, "condition_number": 10.0}, r"condition_number must be 1 when n = 1"),
        ({"n": 3, "condition_number": 10.0, "seed": -1}, r"seed must be an integer >= 0"),
    ],
)
def test_quadratic_rejects_bad_arguments(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        quadratic(**kwargs)


def test_factories_reject_too_small_dimensions() -> None:
    with pytest.raises(ValueError, match=r"n must be an integer >= 2, got 1"):
        P.rosenbrock_nd(1)
    with pytest.raises(TypeError, match=r"n must be an integer"):
        P.rastrigin_nd(2.5)


def test_registry_lookup_is_case_insensitive_and_scales() -> None:
    assert get_problem("Rosenbrock") is P.rosenbrock
    assert get_problem("STYBLINSKI_TANG") is P.styblinski_tang
    assert get_problem("goldstein price") is P.goldstein_price
    for name, factory in SCALABLE.items():
        p = get_problem(f"{name}-7d")
        assert p.dim == 7 and p.name == factory(7).name
        assert get_problem(name, dim=3).dim == 3
    assert get_problem("quadratic-5d").dim == 5


def test_registry_unknown_name_suggests_and_lists() -> None:
    with pytest.raises(ValueError) as info:
        get_problem("rosenbrok")
    message = str(info.value)
    assert "unknown problem 'rosenbrok'; did you mean 'rosenbrock'?" in message
    for name in PROBLEMS:
        assert name in message


def test_registry_refuses_other_dimensions_of_fixed_problems() -> None:
    with pytest.raises(ValueError, match=r"'beale' is defined only in dimension 2, got dim=3"):
        get_problem("beale-3d")
    with pytest.raises(ValueError, match=r"names dimension 4 but dim=3"):
        get_problem("rosenbrock-4d", dim=3)


def test_register_adds_and_replaces() -> None:
    bowl = Problem(
        name="Test_Bowl",
        fn=lambda x: (x**2).sum(-1),
        dim=2,
        minima=((0.0, 0.0),),
        f_min=0.0,
        start=(1.0, 1.0),
        bounds=((-2.0, 2.0), (-2.0, 2.0)),
    )
    try:
        assert register(bowl) is bowl
        assert get_problem("test-bowl") is bowl
        with pytest.raises(ValueError, match="must not end in"):
            register(Problem("bowl-3d", bowl.fn, 2, (), 0.0, (0.0, 0.0), bowl.bounds))
        with pytest.raises(TypeError, match="must be a descend.problems.Problem"):
            register("bowl")  # type: ignore[arg-type]
    finally:
        PROBLEMS.pop("test-bowl", None)


def test_problem_call_checks_the_last_dimension() -> None:
    with pytest.raises(ValueError, match=r"'rosenbrock' takes x of shape \(\.\.\., 2\)"):
        P.rosenbrock(torch.zeros(3))
    with pytest.raises(ValueError, match=r"got shape \(\)"):
        P.booth(torch.tensor(1.0))


def test_distance_to_minimum_uses_the_nearest() -> None:
    him = P.himmelblau
    assert him.distance_to_minimum([3.0, 2.5]) == pytest.approx(0.5)
    assert him.distance_to_minimum(torch.tensor(him.minima[2], dtype=DTYPE)) == 0.0
