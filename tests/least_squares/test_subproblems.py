"""The pieces: trust-region subproblems, CGLS, the box, each against its defining property."""

from __future__ import annotations

import math

import pytest
import torch

from descend.least_squares.bounds import (
    active_constraints,
    coleman_li_scaling,
    step_to_bound,
    strictly_feasible,
)
from descend.least_squares.cgls import cgls
from descend.least_squares.lm import lm_parameter_step
from descend.least_squares.trust_region import (
    intersect_trust_region,
    levenberg_marquardt_step,
    solve_trust_region_2d,
    update_radius,
)

DTYPE = torch.float64


def _random(m: int, n: int, seed: int, rank: int | None = None):
    generator = torch.Generator().manual_seed(seed)
    jac = torch.randn(m, n, generator=generator, dtype=DTYPE)
    if rank is not None:
        jac = jac[:, :rank] @ torch.randn(rank, n, generator=generator, dtype=DTYPE)
    f = torch.randn(m, generator=generator, dtype=DTYPE)
    return jac, f


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("shape", [(8, 3), (3, 5), (8, 4, 2)])
def test_levenberg_marquardt_step_solves_the_damped_system(seed, shape) -> None:
    r"""p = -(J^T J + alpha I)^{-1} J^T f with |p| = Delta (SciPy's trf variant, rescaled onto
    the boundary), or the Gauss-Newton step inside the region."""
    jac, f = _random(shape[0], shape[1], seed, shape[2] if len(shape) == 3 else None)
    u, s, vh = torch.linalg.svd(jac, full_matrices=False)
    g = jac.T @ f
    for delta in (1e-3, 0.1, 1.0, 100.0):
        p, alpha = levenberg_marquardt_step(
            s, vh.T, f @ u, delta, 0.0, m=shape[0], rtol=0.01, to_boundary=True
        )
        if alpha == 0.0:
            assert float(p.norm()) <= delta * (1 + 1e-12)
            torch.testing.assert_close(jac.T @ (jac @ p), -g)  # normal equations
        else:
            assert float(p.norm()) == pytest.approx(delta, rel=1e-12)
            system = jac.T @ jac + alpha * torch.eye(shape[1], dtype=DTYPE)
            # the parameter is found to 1%: the step is that of a nearby alpha
            unscaled = torch.linalg.solve(system, -g)
            assert float(unscaled.norm()) == pytest.approx(delta, rel=0.02)
            assert float(torch.nn.functional.cosine_similarity(p, unscaled, dim=0)) > 0.999


@pytest.mark.parametrize("seed", range(6))
def test_minpack_parameter_within_ten_percent(seed) -> None:
    jac, f = _random(9, 4, seed)
    u, s, vh = torch.linalg.svd(jac, full_matrices=False)
    for delta in (1e-2, 0.3, 3.0):
        q, parameter = lm_parameter_step(s, vh.T, f @ u, delta, 0.0)
        if parameter == 0.0:
            assert float(q.norm()) <= 1.1 * delta
        else:
            assert abs(float(q.norm()) - delta) <= 0.1 * delta
            system = jac.T @ jac + parameter * torch.eye(4, dtype=DTYPE)
            torch.testing.assert_close(q, torch.linalg.solve(system, -jac.T @ f))


@pytest.mark.parametrize("seed", range(8))
def test_trust_region_2d_is_the_minimum_on_the_disc(seed) -> None:
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(3, 2, generator=generator, dtype=DTYPE)
    b = a.T @ a
    g = torch.randn(2, generator=generator, dtype=DTYPE)
    angles = torch.linspace(0, 2 * math.pi, 20001, dtype=DTYPE)
    for delta in (0.05, 0.5, 50.0):
        p = solve_trust_region_2d(b, g, delta)
        assert float(p.norm()) <= delta * (1 + 1e-10)
        value = 0.5 * p @ b @ p + g @ p
        circle = delta * torch.stack([angles.cos(), angles.sin()])
        on_circle = 0.5 * (circle * (b @ circle)).sum(0) + g @ circle
        newton = -torch.linalg.solve(b, g)
        inside = 0.5 * newton @ b @ newton + g @ newton if newton.norm() <= delta else math.inf
        assert float(value) <= min(float(on_circle.min()), float(inside)) + 1e-9 * (1 + delta**2)


def test_cgls_is_damped_least_squares() -> None:
    jac, f = _random(12, 5, 0)
    damp = torch.linspace(0.0, 2.0, 5, dtype=DTYPE)
    x = cgls(jac, f, damp, rtol=1e-12)
    normal = jac.T @ jac + torch.diag(damp.square())
    torch.testing.assert_close(x, torch.linalg.solve(normal, jac.T @ f))
    torch.testing.assert_close(cgls(jac, f, rtol=1e-12), torch.linalg.lstsq(jac, f).solution)


def test_radius_rule() -> None:
    assert update_radius(1.0, 0.1, 1.0, 0.8, True) == (0.2, 0.1)  # poor: shrink to |p|/4
    assert update_radius(1.0, 0.9, 1.0, 1.0, True) == (2.0, 0.9)  # good on the boundary
    assert update_radius(1.0, 0.9, 1.0, 0.5, False) == (1.0, 0.9)  # good inside: keep
    assert update_radius(1.0, 0.0, 0.0, 0.5, False) == (1.0, 1.0)


def test_the_box() -> None:
    lb = torch.tensor([0.0, -math.inf, -1.0], dtype=DTYPE)
    ub = torch.tensor([1.0, 2.0, math.inf], dtype=DTYPE)
    x = torch.tensor([0.5, 0.0, 0.0], dtype=DTYPE)
    t, hits = step_to_bound(x, torch.tensor([1.0, 1.0, 0.0], dtype=DTYPE), lb, ub)
    assert t == 0.5 and hits.tolist() == [1, 0, 0]
    on = torch.tensor([0.0, 2.0, 5.0], dtype=DTYPE)
    assert active_constraints(on, lb, ub).tolist() == [-1, 1, 0]
    inside = strictly_feasible(on, lb, ub)
    assert bool(((inside > lb) & (inside < ub)).all())
    v, dv = coleman_li_scaling(x, torch.tensor([1.0, -1.0, -1.0], dtype=DTYPE), lb, ub)
    assert v.tolist() == [0.5, 2.0, 1.0] and dv.tolist() == [1.0, -1.0, 0.0]
    low, high = intersect_trust_region(torch.zeros(2, dtype=DTYPE), torch.ones(2, dtype=DTYPE), 2.0)
    assert low == pytest.approx(-math.sqrt(2)) and high == pytest.approx(math.sqrt(2))
