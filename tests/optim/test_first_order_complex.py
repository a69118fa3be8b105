"""Complex parameters: every elementwise rule treats a complex number as a pair of reals,
as torch.optim does (a squared gradient is |g|^2, not g*g); Adafactor refuses them, as
torch's does."""

from __future__ import annotations

import pytest
import torch

import descend.optim

NAMES = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NAdam", "RAdam", "Adamax", "Adadelta"]


@pytest.mark.parametrize(
    ("name", "options"),
    [(name, {"weight_decay": 0.05}) for name in NAMES]
    + [("Rprop", {}), ("ASGD", {"weight_decay": 0.05, "t0": 5.0})],
)
def test_complex_parameters_match_torch(name: str, options: dict[str, float]) -> None:
    params = []
    for cls in (getattr(descend.optim, name), getattr(torch.optim, name)):
        z = torch.tensor([1 + 2j, -0.5 + 0.3j, 0.2 - 1j], dtype=torch.complex128)
        z.requires_grad_()
        opt = cls([z], lr=0.01, **options)
        for _ in range(20):
            opt.zero_grad()
            (z.abs() ** 3).sum().backward()
            opt.step()
        params.append(z.detach())
    assert not torch.equal(params[0], torch.tensor([1 + 2j, -0.5 + 0.3j, 0.2 - 1j]))
    torch.testing.assert_close(params[0], params[1], rtol=1e-9, atol=1e-12)


def test_adafactor_refuses_complex_parameters() -> None:
    z = torch.tensor([1 + 2j], dtype=torch.complex128, requires_grad=True)
    opt = descend.optim.Adafactor([z])
    (z.abs() ** 2).sum().backward()
    with pytest.raises(RuntimeError, match="complex"):
        opt.step()
