"""Yogi against the paper's update (Zaheer et al., 2018, Algorithm 2)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from rule_checks import Params, follow, minimizes_a_quadratic

from descend.optim import Yogi


def reference(params: Params, grads: Params, state: dict[str, Any], hypers: list[dict]) -> None:
    """m = b1 m + (1 - b1) g; v = v - (1 - b2) sign(v - g^2) g^2;
    theta -= lr m / (sqrt(v) + eps)."""
    for i, (p, g, h) in enumerate(zip(params, grads, hypers, strict=True)):
        lr, wd, eps = h["lr"], h.get("weight_decay", 0.0), h.get("eps", 1e-3)
        beta1, beta2 = h.get("betas", (0.9, 0.999))
        if h.get("decoupled_weight_decay"):
            p *= 1 - lr * wd
        else:
            g = g + wd * p
        v0 = h.get("initial_accumulator", 1e-6)
        s = state.setdefault(i, {"m": torch.zeros_like(p), "v": torch.full_like(p, v0)})
        s["m"] = beta1 * s["m"] + (1 - beta1) * g
        s["v"] = s["v"] - (1 - beta2) * torch.sign(s["v"] - g * g) * g * g
        p -= lr * s["m"] / (s["v"].sqrt() + eps)


@pytest.mark.parametrize(
    ("groups", "maximize"),
    [
        (({"lr": 1e-2}, {"lr": 3e-3, "betas": (0.8, 0.99), "weight_decay": 0.1}), False),
        (({"lr": 1e-2, "initial_accumulator": 0.5}, {"lr": 2e-3, "eps": 1e-6}), True),
        (({"lr": 1e-3, "weight_decay": 0.2, "decoupled_weight_decay": True}, {"lr": 1e-3}), False),
    ],
)
def test_follows_the_paper(groups: tuple[dict, dict], maximize: bool) -> None:
    follow(lambda g: Yogi(g), reference, groups, maximize=maximize)


def test_the_second_moment_changes_by_at_most_one_minus_beta2_g_squared() -> None:
    """Adam would shrink v from 100 to 0.1 * 100 + ... in one step with beta2 = 0.9; Yogi
    moves it by (1 - beta2) g^2 = 0.1 only."""
    x = torch.zeros(1, requires_grad=True)
    opt = Yogi([x], betas=(0.9, 0.9), initial_accumulator=100.0)
    x.grad = torch.ones(1)
    opt.step()
    assert opt.state[x]["exp_avg_sq"].item() == pytest.approx(100.0 - 0.1)


def test_minimizes_a_quadratic() -> None:
    minimizes_a_quadratic(
        lambda p: Yogi(p, lr=0.05),
        steps=3000,
        schedule=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=300, gamma=0.5),
    )


def test_refuses_bad_hyperparameters() -> None:
    x = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match=r"initial_accumulator.*-1"):
        Yogi(x, initial_accumulator=-1.0)
    with pytest.raises(ValueError, match=r"eps.*0\.0"):
        Yogi(x, eps=0.0)
