"""Lanczos stops at its budget of products or when the Krylov space is exhausted; either
way its Ritz pairs are those of the operator projected on the basis it built."""

from __future__ import annotations

import pytest
import torch

from descend.monitors import lanczos


def _symmetric(n: int, seed: int) -> torch.Tensor:
    a = torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a + a.T


@pytest.mark.parametrize(("n", "iterations"), [(2, 1), (2, 2), (5, 3), (12, 4), (12, 12)])
def test_ritz_pairs_are_the_projection_of_the_operator_on_the_basis(n, iterations):
    """V^T A V = diag(values) for the Ritz vectors V: the last step's alpha counts too."""
    A = _symmetric(n, seed=n)
    start = torch.randn(n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    spectrum = lanczos(lambda v: A @ v, start, iterations)
    assert spectrum.iterations == iterations
    V = spectrum.vectors
    torch.testing.assert_close(V.T @ V, torch.eye(iterations, dtype=torch.float64))
    torch.testing.assert_close(V.T @ A @ V, torch.diag(spectrum.values), atol=1e-10, rtol=0)


def test_an_exhausted_krylov_space_ends_the_iteration_early():
    """Two distinct eigenvalues: the start's Krylov space has dimension 2, whatever the
    budget, and its Ritz values are those eigenvalues."""
    A = torch.diag(torch.tensor([1.0, 1.0, 3.0, 3.0], dtype=torch.float64))
    spectrum = lanczos(lambda v: A @ v, torch.ones(4, dtype=torch.float64), 10)
    assert spectrum.iterations == 2
    torch.testing.assert_close(spectrum.values, torch.tensor([1.0, 3.0], dtype=torch.float64))
