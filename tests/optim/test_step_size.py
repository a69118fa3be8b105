"""The 1/L step: Lipschitz constants against eigvalsh of the Hessian, and power iteration
on matrix-vector and Hessian-vector products."""

from __future__ import annotations

import pytest
import torch

from descend.optim.step_size import POWER_MARGIN, largest_eigenvalue, lipschitz_constant


def data(n: int = 60, d: int = 5, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    scales = torch.logspace(0, 1.5, d, dtype=torch.float64)
    return torch.randn(n, d, generator=gen, dtype=torch.float64) * scales + 0.7


def hessian_top(loss, d: int) -> float:
    w = torch.zeros(d, dtype=torch.float64)
    H = torch.autograd.functional.hessian(loss, w)
    return float(torch.linalg.eigvalsh(H)[-1])


@pytest.mark.parametrize("intercept", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_least_squares_constant_is_the_hessians_top_eigenvalue(intercept, weighted):
    X = data()
    n = X.shape[0]
    s = torch.linspace(0.2, 3.0, n, dtype=torch.float64) if weighted else torch.ones(n)
    s = s.double()
    l2 = 0.3
    Xt = torch.cat([X, torch.ones(n, 1, dtype=torch.float64)], 1) if intercept else X

    def loss(w):
        return 0.5 * (s * (Xt @ w - 1.0) ** 2).mean() + 0.5 * l2 * (w * w).sum()

    L = lipschitz_constant(
        X, weights=s if weighted else None, l2=l2, fit_intercept=intercept, curvature=1.0
    )
    assert pytest.approx(hessian_top(loss, Xt.shape[1]), rel=1e-12) == L


def test_logistic_constant_bounds_the_hessian_everywhere():
    X = data(seed=1)
    d = X.shape[1]
    y = (X[:, 0] > X[:, 0].median()).double()
    L = lipschitz_constant(X, curvature=0.25)
    gen = torch.Generator().manual_seed(2)
    for _ in range(20):
        w0 = torch.randn(d, generator=gen, dtype=torch.float64) * 0.05

        def loss(w, w0=w0):
            z = X @ (w + w0)
            return torch.nn.functional.binary_cross_entropy_with_logits(z, y)

        assert hessian_top(loss, d) <= L * (1 + 1e-12)
    # and it is attained where every sigmoid is 1/2 (z = 0)
    at_zero = hessian_top(
        lambda w: torch.nn.functional.binary_cross_entropy_with_logits(X @ w, y), d
    )
    assert pytest.approx(at_zero, rel=1e-12) == L


def test_power_iteration_brackets_the_top_eigenvalue():
    X = data(n=200, d=40, seed=3)
    exact = lipschitz_constant(X)
    estimate = lipschitz_constant(X, exact_max_dim=0)  # by power iteration
    assert exact <= estimate <= POWER_MARGIN * exact * (1 + 1e-9)
    gram = X.T @ X / X.shape[0]
    assert exact == pytest.approx(float(torch.linalg.eigvalsh(gram)[-1]), rel=1e-14)
    # the same seed, the same estimate
    assert lipschitz_constant(X, exact_max_dim=0) == estimate


def test_largest_eigenvalue_of_a_hessian_vector_product():
    gen = torch.Generator().manual_seed(4)
    A = torch.randn(30, 30, generator=gen, dtype=torch.float64)
    H = A @ A.T + torch.diag(torch.linspace(0, 50, 30, dtype=torch.float64))
    f = lambda x: 0.5 * x @ H @ x  # noqa: E731

    def hvp(v):
        x = torch.zeros(30, dtype=torch.float64)
        return torch.autograd.functional.hvp(f, x, v)[1]

    top = float(torch.linalg.eigvalsh(H)[-1])
    assert largest_eigenvalue(H) == pytest.approx(top, rel=1e-14)
    assert largest_eigenvalue(hvp, 30, iterations=500) == pytest.approx(top, rel=1e-8)
    assert largest_eigenvalue(hvp, 30, iterations=3) <= top * (1 + 1e-12)  # from below


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="square"):
        largest_eigenvalue(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="dim"):
        largest_eigenvalue(lambda v: v)
    with pytest.raises(ValueError, match="curvature"):
        lipschitz_constant(data(), curvature=-1.0)
    assert lipschitz_constant(torch.zeros(5, 2, dtype=torch.float64)) == 1e-12
