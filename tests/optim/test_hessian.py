"""Hessian-vector products and dense Hessians against torch.autograd.functional.hessian."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

import descend.optim.hessian as hessian_module
from descend.objective import Objective
from descend.optim.flat_params import FlatParams
from descend.optim.hessian import (
    HessianVectorProduct,
    check_dense_hessian_memory,
    dense_hessian,
    dense_hessian_bytes,
    finite_difference_step,
    hvp_fn,
)


def loss_of(a: Tensor, b: Tensor) -> Tensor:
    """A non-convex function of two tensors with every kind of second derivative."""
    return (
        a.sin().sum() * b.pow(3).sum()
        + (a**4).sum()
        + b.exp().sum() * a[0, 0]
        + torch.outer(a.reshape(-1), b).tanh().sum()
    )


def flat_loss(x: Tensor) -> Tensor:
    return loss_of(x[:6].reshape(3, 2), x[6:])


def make(dtype: torch.dtype, seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = (0.5 * torch.randn(3, 2, generator=g, dtype=torch.float64)).to(dtype)
    b = (0.5 * torch.randn(4, generator=g, dtype=torch.float64)).to(dtype)
    return a.requires_grad_(True), b.requires_grad_(True)


def reference_hessian(a: Tensor, b: Tensor) -> Tensor:
    x = torch.cat([a.detach().reshape(-1), b.detach()]).double()
    return torch.autograd.functional.hessian(flat_loss, x)


def plain_closure(a: Tensor, b: Tensor):
    """A torch.optim-style closure, with no exact HVP: products are finite differences."""

    def closure() -> Tensor:
        a.grad = None
        b.grad = None
        loss = loss_of(a, b)
        loss.backward()
        return loss.detach()

    return closure


# -- exact products, through descend's Objective -------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_exact_dense_hessian_matches_autograd(dtype: torch.dtype) -> None:
    a, b = make(dtype)
    objective = Objective.from_autograd([a, b], lambda: loss_of(a, b))
    h = dense_hessian(objective, [a, b])
    ref = reference_hessian(a, b).to(dtype)
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-5}
    torch.testing.assert_close(h, ref, **tol)
    assert torch.equal(h, h.T)
    assert objective.nhev == 10  # a dense Hessian counts n products


def test_exact_dense_hessian_falls_back_to_products_when_vmap_fails(monkeypatch) -> None:
    a, b = make(torch.float64)
    objective = Objective.from_autograd([a, b], lambda: loss_of(a, b))

    def unsupported(*args, **kwargs):
        raise RuntimeError("vmap: not supported for this operator")

    monkeypatch.setattr(hessian_module, "_batched_hessian", unsupported)
    h = dense_hessian(objective, [a, b])
    torch.testing.assert_close(h, reference_hessian(a, b), rtol=1e-12, atol=1e-12)
    assert objective.nhev == 10


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_exact_hvp_matches_autograd_and_counts(dtype: torch.dtype) -> None:
    a, b = make(dtype, seed=1)
    objective = Objective.from_autograd([a, b], lambda: loss_of(a, b))
    hvp = hvp_fn(objective, [a, b])
    assert hvp.exact
    v = torch.randn(10, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ref = reference_hessian(a, b) @ v
    hv = hvp(v.to(dtype))
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-5}
    torch.testing.assert_close(hv.double(), ref, **tol)
    hvp(v.to(dtype))
    assert objective.nhev == 2


def test_unused_parameter_gives_zero_rows() -> None:
    a, b = make(torch.float64)
    unused = torch.ones(2, dtype=torch.float64, requires_grad=True)
    objective = Objective.from_autograd([a, unused, b], lambda: loss_of(a, b))
    h = dense_hessian(objective, [a, unused, b])
    assert torch.count_nonzero(h[6:8]) == 0 and torch.count_nonzero(h[:, 6:8]) == 0
    keep = [*range(6), 8, 9, 10, 11]
    torch.testing.assert_close(h[keep][:, keep], reference_hessian(a, b), rtol=1e-12, atol=1e-12)


# -- finite differences, through a plain closure -------------------------------------------


def test_finite_difference_hvp_matches_autograd_and_restores_state() -> None:
    a, b = make(torch.float64, seed=3)
    closure = plain_closure(a, b)
    closure()
    a0, b0 = a.detach().clone(), b.detach().clone()
    ga, gb = a.grad.clone(), b.grad.clone()
    hvp = hvp_fn(closure, [a, b])
    assert not hvp.exact
    ref_h = reference_hessian(a, b)
    for seed in range(3):
        v = torch.randn(10, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        hv = hvp(v)
        # forward differences: error O(sqrt(u)) relative to the scale of H v
        err = (hv - ref_h @ v).norm() / (ref_h @ v).norm()
        assert err < 1e-6
    # the point and its gradient are restored bit for bit
    assert torch.equal(a.detach(), a0) and torch.equal(b.detach(), b0)
    assert torch.equal(a.grad, ga) and torch.equal(b.grad, gb)
    assert torch.equal(
        hvp(torch.zeros(10, dtype=torch.float64)), torch.zeros(10, dtype=torch.float64)
    )


def test_finite_difference_hvp_in_float32() -> None:
    a, b = make(torch.float32, seed=4)
    closure = plain_closure(a, b)
    hvp = hvp_fn(closure, [a, b])
    v = torch.randn(10, generator=torch.Generator().manual_seed(5))
    ref = reference_hessian(a, b) @ v.double()
    err = (hvp(v).double() - ref).norm() / ref.norm()
    assert err < 3e-2  # sqrt(u) = 3.5e-4 times the size of the third derivatives


def test_finite_difference_hessian_matches_autograd_and_is_symmetric() -> None:
    a, b = make(torch.float64, seed=6)
    h = dense_hessian(plain_closure(a, b), [a, b])
    ref = reference_hessian(a, b)
    assert (h - ref).abs().max() < 1e-6 * ref.abs().max()
    assert torch.equal(h, h.T)


def test_finite_difference_products_count_in_nhev_of_a_closure_that_has_one() -> None:
    a, b = make(torch.float64)
    objective = Objective.from_autograd([a, b], lambda: loss_of(a, b))
    # an Objective that has no loss_fn offers no exact product: differences, still counted
    blind = Objective([a, b], objective._evaluate)
    hvp = hvp_fn(blind, [a, b])
    assert not hvp.exact
    hvp(torch.ones(10, dtype=torch.float64))
    assert blind.nhev == 1 and blind.nfev == 2  # the start and x + h v


def test_objective_over_other_parameters_is_not_used_for_exact_products() -> None:
    a, b = make(torch.float64)
    objective = Objective.from_autograd([a, b], lambda: loss_of(a, b))
    flat = FlatParams([a])
    objective()
    hvp = HessianVectorProduct(objective, flat, flat.gather_grad())
    assert not hvp.exact  # its hvp would be over (a, b), not over a alone
    ref = reference_hessian(a, b)[:6, :6]
    v = torch.linspace(-1, 1, 6, dtype=torch.float64)
    assert (hvp(v) - ref @ v).norm() < 1e-6 * (ref @ v).norm()


def test_finite_difference_step_scales_with_x_and_v() -> None:
    u = torch.finfo(torch.float64).eps
    assert finite_difference_step(0.0, 1.0, torch.float64) == pytest.approx(math.sqrt(u))
    assert finite_difference_step(99.0, 1.0, torch.float64) == pytest.approx(100 * math.sqrt(u))
    assert finite_difference_step(0.0, 4.0, torch.float64) == pytest.approx(math.sqrt(u) / 4)
    u32 = torch.finfo(torch.float32).eps
    assert finite_difference_step(0.0, 1.0, torch.float32) == pytest.approx(math.sqrt(u32))


# -- the memory budget ----------------------------------------------------------------------


def test_memory_budget() -> None:
    assert dense_hessian_bytes(1000, torch.float64) == 2 * 1000 * 1000 * 8
    assert dense_hessian_bytes(1000, torch.float32) == 2 * 1000 * 1000 * 4
    check_dense_hessian_memory(4096, torch.float64, 256)  # 256 MiB exactly: fits
    with pytest.raises(ValueError) as info:
        check_dense_hessian_memory(4097, torch.float64, 256)
    message = str(info.value)
    for fragment in ("4097 x 4097", "hessian_memory_mb=256", "newton-cg", "trust-region"):
        assert fragment in message
    check_dense_hessian_memory(5792, torch.float32, 256)


def test_parameters_must_share_dtype() -> None:
    a = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(2, dtype=torch.float32, requires_grad=True)
    with pytest.raises(ValueError, match="dtype"):
        hvp_fn(lambda: a.sum() + b.sum(), [a, b])
