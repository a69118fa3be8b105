"""Lion against the paper's update (Chen et al., 2023, Algorithm 2)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from rule_checks import Params, follow, minimizes_a_quadratic

from descend.optim import Lion


def reference(params: Params, grads: Params, state: dict[str, Any], hypers: list[dict]) -> None:
    """theta <- theta - lr (sign(beta1 m + (1 - beta1) g) + wd theta);
    m <- beta2 m + (1 - beta2) g."""
    for i, (p, g, h) in enumerate(zip(params, grads, hypers, strict=True)):
        lr, wd = h["lr"], h.get("weight_decay", 0.0)
        beta1, beta2 = h.get("betas", (0.9, 0.99))
        m = state.setdefault(i, torch.zeros_like(p))
        update = torch.sign(beta1 * m + (1 - beta1) * g)
        p -= lr * (update + wd * p)
        state[i] = beta2 * m + (1 - beta2) * g


@pytest.mark.parametrize("maximize", [False, True])
def test_follows_the_paper(maximize: bool) -> None:
    groups = ({"lr": 1e-3}, {"lr": 3e-3, "betas": (0.8, 0.95), "weight_decay": 0.5})
    follow(lambda g: Lion(g), reference, groups, maximize=maximize)


def test_minimizes_a_quadratic() -> None:
    # sign steps of a fixed size hover within lr of the minimum: a decaying rate closes in
    minimizes_a_quadratic(
        lambda p: Lion(p, lr=0.05),
        steps=1500,
        schedule=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=100, gamma=0.5),
    )


def test_refuses_bad_hyperparameters() -> None:
    x = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match=r"betas\[1\].*1\.5"):
        Lion(x, betas=(0.9, 1.5))
    with pytest.raises(ValueError, match=r"lr.*-1"):
        Lion(x, lr=-1.0)
