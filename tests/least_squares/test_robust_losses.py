"""Robust losses: their derivatives, and the same fit as SciPy on data with outliers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import least_squares as scipy_least_squares

from descend import least_squares
from descend.least_squares.losses import LOSSES, RobustLoss

ROBUST = [name for name in LOSSES if name != "linear"]


@pytest.mark.parametrize("name", ROBUST)
def test_derivatives_are_those_of_rho(name: str) -> None:
    """rho' and rho'' as written agree with autodiff of rho, inside and across huber's kink."""
    z = torch.linspace(0.0, 9.0, 181, dtype=torch.float64)[1:].requires_grad_(True)
    rho, first, second = LOSSES[name](z)
    (auto_first,) = torch.autograd.grad(rho.sum(), z, create_graph=True)
    (auto_second,) = torch.autograd.grad(auto_first.sum(), z)
    torch.testing.assert_close(first, auto_first)
    torch.testing.assert_close(second, auto_second)
    # every robust loss is z near 0 (so small residuals count as in least squares)
    small = torch.tensor([1e-8], dtype=torch.float64)
    torch.testing.assert_close(LOSSES[name](small)[0], small, rtol=1e-7, atol=0)


@pytest.mark.parametrize("name", ROBUST)
def test_rescaling_gives_the_gradient_of_the_cost(name: str) -> None:
    r""":math:`\tilde J^\top \tilde f = \nabla F` (Triggs et al.'s rescaling), any f_scale."""
    generator = torch.Generator().manual_seed(0)
    jac = torch.randn(7, 3, generator=generator, dtype=torch.float64)
    x = torch.randn(3, generator=generator, dtype=torch.float64, requires_grad=True)
    offset = 3.0 * torch.randn(7, generator=generator, dtype=torch.float64)
    loss = RobustLoss(LOSSES[name], f_scale=0.7)
    f = jac @ x + offset
    (gradient,) = torch.autograd.grad(loss.cost(f), x)
    row_scale, f_tilde = loss.rescale(f.detach())
    torch.testing.assert_close((row_scale[:, None] * jac).T @ f_tilde, gradient)


def _outlier_data():
    """SciPy's robust-fit example: y = a + b exp(c t) plus noise 0.1 and three outliers."""
    generator = np.random.default_rng(0)
    t = np.linspace(0.0, 10.0, 15)
    y = 0.5 + 2.0 * np.exp(-1.0 * t) + 0.1 * generator.standard_normal(t.size)
    y[[3, 7, 11]] += [4.0, -3.0, 5.0]
    return t, y


@pytest.mark.parametrize("method", ["trf", "dogbox"])
@pytest.mark.parametrize("name", ROBUST)
def test_robust_fit_matches_scipy(method: str, name: str) -> None:
    r"""Both end at the same stationary point of the robust cost F, to what their stopping
    tests leave: near a minimizer :math:`x^*` with Hessian :math:`H`,
    :math:`\|x - x^*\| \le \|H^{-1}\| \|\nabla F(x)\|` to first order, so the two ends differ
    by at most :math:`\|H^{-1}\| (\|\nabla F(x_a)\| + \|\nabla F(x_b)\|)` (doubled for the
    second-order term), which the test measures rather than assumes."""
    t, y = _outlier_data()
    tt, yt = torch.from_numpy(t), torch.from_numpy(y)

    def residuals(x):
        return x[0] + x[1] * torch.exp(x[2] * tt) - yt

    def residuals_np(x):
        return x[0] + x[1] * np.exp(x[2] * t) - y

    def jac_np(x):
        e = np.exp(x[2] * t)
        return np.stack([np.ones_like(t), e, x[1] * t * e], axis=1)

    options = dict(loss=name, f_scale=0.1, ftol=1e-12, xtol=1e-12, gtol=1e-12)
    ours = least_squares(residuals, [1.0, 1.0, 0.0], method, **options)
    ref = scipy_least_squares(residuals_np, [1.0, 1.0, 0.0], jac=jac_np, method=method, **options)
    assert ours.success and ref.success

    loss = RobustLoss(LOSSES[name], 0.1)

    def cost(x):
        return loss.cost(residuals(x))

    def grad_norm(x):
        return float(torch.linalg.vector_norm(torch.func.grad(cost)(torch.from_numpy(x))))

    hessian = torch.func.hessian(cost)(torch.from_numpy(ref.x))
    inverse_norm = 1.0 / float(torch.linalg.eigvalsh(hessian).min())
    assert inverse_norm > 0  # a minimizer: H positive definite
    bound = 2.0 * inverse_norm * (grad_norm(ours.x) + grad_norm(ref.x)) + 1e-12
    assert np.linalg.norm(ours.x - ref.x) <= bound
    np.testing.assert_allclose(ours.x, ref.x, rtol=1e-6)
    assert ours.cost == pytest.approx(ref.cost, rel=1e-10)
    # the robust fit is nearer the truth (a, b, c) = (0.5, 2, -1) than least squares'
    plain = least_squares(residuals, [1.0, 1.0, 0.0], method)
    truth = np.array([0.5, 2.0, -1.0])
    assert np.linalg.norm(ours.x - truth) < 0.5 * np.linalg.norm(plain.x - truth)


def test_callable_loss_is_the_named_one() -> None:
    t, y = _outlier_data()
    tt, yt = torch.from_numpy(t), torch.from_numpy(y)

    def residuals(x):
        return x[0] + x[1] * torch.exp(x[2] * tt) - yt

    def soft_l1(z):
        return torch.stack(LOSSES["soft_l1"](z))

    named = least_squares(residuals, [1.0, 1.0, 0.0], loss="soft_l1", f_scale=0.1)
    mine = least_squares(residuals, [1.0, 1.0, 0.0], loss=soft_l1, f_scale=0.1)
    np.testing.assert_array_equal(named.x, mine.x)
    assert named.cost == mine.cost
