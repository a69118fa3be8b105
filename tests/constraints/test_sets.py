"""The feasible sets: projections against their definitions (closest feasible point, checked
by SciPy's SLSQP and by the variational inequality), the parsing of bounds= and its errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import Bounds
from scipy.optimize import minimize as scipy_minimize

from descend.constraints import Box, NonNegative, Simplex, as_constraint, project_parameters_

INF = math.inf


def test_box_projection_clips_each_coordinate_with_open_sides() -> None:
    box = Box([0.0, -INF, -1.0], [1.0, 2.0, -1.0])
    x = torch.tensor([3.0, -50.0, 7.0], dtype=torch.float64)
    expected = torch.tensor([1.0, -50.0, -1.0], dtype=torch.float64)
    torch.testing.assert_close(box.project(x), expected)
    torch.testing.assert_close(box.active(box.project(x)), torch.tensor([1, 0, 1]))
    assert box.contains(box.project(x)) and not box.contains(x)


def test_nonnegative_takes_any_shape() -> None:
    x = torch.tensor([[-1.0, 2.0], [0.5, -0.1]])
    torch.testing.assert_close(NonNegative().project(x), torch.tensor([[0.0, 2.0], [0.5, 0.0]]))


@pytest.mark.parametrize("seed", range(6))
def test_simplex_projection_is_the_nearest_point_on_the_simplex(seed) -> None:
    """The sort-based projection against SLSQP on min ||z - x||^2, z >= 0, sum z = total,
    and against the variational inequality (x - P(x))'(z - P(x)) <= 0 at the vertices."""
    rng = np.random.default_rng(seed)
    n, total = int(rng.integers(2, 9)), float(rng.uniform(0.5, 3.0))
    x = rng.normal(scale=2.0, size=n)
    p = Simplex(total).project(torch.from_numpy(x)).numpy()
    ref = scipy_minimize(
        lambda z: ((z - x) ** 2).sum(), np.full(n, total / n), jac=lambda z: 2 * (z - x),
        method="SLSQP", bounds=[(0, None)] * n,
        constraints={"type": "eq", "fun": lambda z: z.sum() - total},
        options={"ftol": 1e-14, "maxiter": 500},
    )  # fmt: skip
    assert p.min() >= 0 and p.sum() == pytest.approx(total, rel=1e-12)
    np.testing.assert_allclose(p, ref.x, atol=1e-6)
    vertices = total * np.eye(n)
    assert np.all((vertices - p) @ (x - p) <= 1e-12)


def test_projected_gradient_vanishes_exactly_at_constrained_minimum() -> None:
    """f = ||x - c||^2 on the box [0, 1]^2 with c = (2, 0.5): the minimum is (1, 0.5)."""
    box = Box(0.0, 1.0)
    c = torch.tensor([2.0, 0.5], dtype=torch.float64)
    at = torch.tensor([1.0, 0.5], dtype=torch.float64)
    assert torch.all(box.projected_gradient(at, 2 * (at - c)) == 0)
    off = torch.tensor([0.9, 0.5], dtype=torch.float64)
    assert box.projected_gradient(off, 2 * (off - c)).abs().max() > 0


def test_parsing_every_form_gives_the_same_box() -> None:
    pairs = [(0.0, 1.0), (None, 2.0), (-3.0, None)]
    low, high = [0.0, -INF, -3.0], [1.0, 2.0, INF]
    forms = [pairs, np.array([low, high]).T, torch.tensor([low, high]).T, Bounds(low, high)]
    for form in forms:
        box = as_constraint(form, n=3)
        torch.testing.assert_close(box.low, torch.tensor(low, dtype=torch.float64))
        torch.testing.assert_close(box.high, torch.tensor(high, dtype=torch.float64))
    assert isinstance(as_constraint("nonnegative"), NonNegative)
    assert isinstance(as_constraint("Simplex"), Simplex)
    assert as_constraint(None) is None


@pytest.mark.parametrize(
    ("bounds", "n", "error", "match"),
    [
        ([(1.0, 0.0), (0, 1)], 2, ValueError, r"low > high at coordinate 0 \(1 > 0\)"),
        ([(0, 1)] * 3, 2, ValueError, "bounds has 3 .* pairs but x0 has 2 coordinates"),
        ([(float("nan"), 1.0)], 1, ValueError, "NaN at coordinate 0"),
        ("simplx", 2, ValueError, "did you mean 'simplex'"),
        ([1, 2, 3], 3, ValueError, r"bounds\[0\] must be a \(low, high\) pair"),
        (np.ones((3, 3)), 3, ValueError, r"shape \(n, 2\), got shape \(3, 3\)"),
        ([("a", 1)], 1, TypeError, "pairs of numbers"),
    ],
)
def test_bad_bounds_are_refused_with_the_argument_and_what_is_allowed(bounds, n, error, match):
    with pytest.raises(error, match=match):
        as_constraint(bounds, n=n)


def test_simplex_total_must_be_positive() -> None:
    with pytest.raises(ValueError, match="total must be a finite number > 0, got -1"):
        Simplex(-1.0)


def test_project_parameters_keeps_a_model_feasible_while_sgd_trains_it() -> None:
    """Projected SGD on a nonnegative least-squares fit: the weights stay >= 0 at every
    step and reach SciPy's nnls solution."""
    from scipy.optimize import nnls

    generator = torch.Generator().manual_seed(0)
    a = torch.randn(30, 4, generator=generator, dtype=torch.float64)
    b = a @ torch.tensor([1.0, -2.0, 0.5, -0.1], dtype=torch.float64)
    model = torch.nn.Linear(4, 1, bias=False).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(2000):
        opt.zero_grad()
        ((model(a).squeeze(1) - b) ** 2).mean().backward()
        opt.step()
        project_parameters_(model, "nonnegative")
        assert model.weight.min() >= 0
    ref, _ = nnls(a.numpy(), b.numpy())
    np.testing.assert_allclose(model.weight.detach().numpy()[0], ref, atol=1e-6)


def test_projecting_rows_equals_projecting_each_point() -> None:
    rows = torch.randn(7, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    for constraint in (Simplex(2.0), Box([0, -1, 0, -INF], [1, 1, 1, 0.5]), NonNegative()):
        expected = torch.stack([constraint.project(row) for row in rows])
        torch.testing.assert_close(constraint.project_rows_(rows.clone()), expected)
