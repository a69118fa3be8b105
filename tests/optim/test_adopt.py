"""ADOPT against the paper's update (Taniguchi et al., 2024, Algorithm 2, with clipping)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from rule_checks import Params, follow, minimizes_a_quadratic

from descend.optim import ADOPT


def reference(params: Params, grads: Params, state: dict[str, Any], hypers: list[dict]) -> None:
    """v_0 = g_0^2; then m = b1 m + (1 - b1) clip(g / max(sqrt(v), eps), t^p),
    theta -= lr m, v = b2 v + (1 - b2) g^2, for t = 1, 2, ..."""
    for i, (p, g, h) in enumerate(zip(params, grads, hypers, strict=True)):
        lr, wd, eps = h["lr"], h.get("weight_decay", 0.0), h.get("eps", 1e-6)
        beta1, beta2 = h.get("betas", (0.9, 0.9999))
        exponent = h.get("clip_exponent", 0.25)
        if h.get("decoupled_weight_decay"):
            p *= 1 - lr * wd
        else:
            g = g + wd * p
        if i not in state:
            state[i] = {"t": 1, "m": torch.zeros_like(p), "v": g * g}
            continue
        s = state[i]
        normed = g / torch.clamp(s["v"].sqrt(), min=eps)
        if exponent is not None:
            normed = normed.clamp(-(s["t"] ** exponent), s["t"] ** exponent)
        s["m"] = beta1 * s["m"] + (1 - beta1) * normed
        p -= lr * s["m"]
        s["v"] = beta2 * s["v"] + (1 - beta2) * g * g
        s["t"] += 1


@pytest.mark.parametrize(
    ("groups", "maximize"),
    [
        (({"lr": 1e-3}, {"lr": 3e-3, "betas": (0.8, 0.99), "weight_decay": 0.1}), False),
        (({"lr": 1e-3, "clip_exponent": None}, {"lr": 2e-3, "eps": 1e-3}), True),
        (
            (
                {"lr": 1e-3, "weight_decay": 0.2, "decoupled_weight_decay": True},
                {"lr": 1e-3, "clip_exponent": 0.1},
            ),
            False,
        ),
    ],
)
def test_follows_the_paper(groups: tuple[dict, dict], maximize: bool) -> None:
    follow(lambda g: ADOPT(g), reference, groups, maximize=maximize)


def test_the_first_step_only_measures_the_gradient() -> None:
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    opt = ADOPT([x], lr=0.1)
    x.grad = torch.tensor([3.0, 4.0])
    opt.step()
    assert torch.equal(x.detach(), torch.tensor([1.0, -2.0]))
    assert torch.equal(opt.state[x]["exp_avg_sq"], torch.tensor([9.0, 16.0]))


def test_minimizes_a_quadratic() -> None:
    minimizes_a_quadratic(
        lambda p: ADOPT(p, lr=0.05, betas=(0.9, 0.999)),
        steps=3000,
        schedule=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=300, gamma=0.5),
    )


def test_refuses_bad_hyperparameters() -> None:
    x = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match=r"clip_exponent.*-1"):
        ADOPT(x, clip_exponent=-1.0)
    with pytest.raises(ValueError, match=r"eps.*0\.0"):
        ADOPT(x, eps=0.0)
