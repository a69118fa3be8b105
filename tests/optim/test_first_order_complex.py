"""Complex parameters: every first-order rule treats a complex number as a pair of reals,
as torch.optim does (a squared gradient is |g|^2, not g*g)."""

from __future__ import annotations

import pytest
import torch

import descend.optim


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_complex_parameters_match_torch(name: str) -> None:
    params = []
    for cls in (getattr(descend.optim, name), getattr(torch.optim, name)):
        z = torch.tensor([1 + 2j, -0.5 + 0.3j, 0.2 - 1j], dtype=torch.complex128)
        z.requires_grad_()
        opt = cls([z], lr=0.01, weight_decay=0.05)
        for _ in range(20):
            opt.zero_grad()
            (z.abs() ** 3).sum().backward()
            opt.step()
        params.append(z.detach())
    assert not torch.equal(params[0], torch.tensor([1 + 2j, -0.5 + 0.3j, 0.2 - 1j]))
    torch.testing.assert_close(params[0], params[1], rtol=1e-9, atol=1e-12)
