"""Prodigy against the paper's Adam form (Mishchenko & Defazio, 2024, Algorithm 4, as
the authors' ``prodigyopt`` runs it): one estimate d for all parameters."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from rule_checks import Params, follow, minimizes_a_quadratic

from descend.optim import Prodigy

DEFAULTS = {
    "lr": 1.0,
    "betas": (0.9, 0.999),
    "beta3": None,
    "eps": 1e-8,
    "weight_decay": 0.0,
    "decouple": True,
    "use_bias_correction": False,
    "safeguard_warmup": False,
    "d0": 1e-6,
    "d_coef": 1.0,
    "growth_rate": math.inf,
}


def reference(params: Params, grads: Params, state: dict[str, Any], hypers: list[dict]) -> None:
    """A loop over tensors: accumulate r and s, estimate d, then take Adam's step."""
    hs = [{**DEFAULTS, **h} for h in hypers]
    first = hs[0]
    beta1, beta2 = first["betas"]
    beta3 = first["beta3"] if first["beta3"] is not None else beta2**0.5
    d0 = first["d0"]
    d, d_max, r, k = (
        state.setdefault(key, value)
        for key, value in (("d", d0), ("d_max", d0), ("r", 0.0), ("k", 0))
    )
    rho = (
        (1 - beta2 ** (k + 1)) ** 0.5 / (1 - beta1 ** (k + 1))
        if first["use_bias_correction"]
        else 1.0
    )
    lr = max(h["lr"] for h in hs)
    dlr = d * lr * rho
    r *= beta3
    s_norm = 0.0
    for i, (p, g, h) in enumerate(zip(params, grads, hs, strict=True)):
        if h["weight_decay"] and not h["decouple"]:
            g = g + h["weight_decay"] * p
        s = state.setdefault(i, {"p0": p.clone(), "s": 0 * p, "m": 0 * p, "v": 0 * p})
        r += (d / d0) * dlr * float(torch.dot(g.flatten(), (s["p0"] - p).flatten()))
        s["m"] = beta1 * s["m"] + d * (1 - beta1) * g
        s["v"] = beta2 * s["v"] + d * d * (1 - beta2) * g * g
        s["s"] = beta3 * s["s"] + (d / d0) * (d if h["safeguard_warmup"] else dlr) * g
        s_norm += float(s["s"].abs().sum())
    d_hat = first["d_coef"] * r / s_norm
    if d == d0:
        d = max(d, d_hat)
    d_max = max(d_max, d_hat)
    d = min(d_max, d * first["growth_rate"])
    state.update(d=d, d_max=d_max, r=r, k=k + 1)
    for i, (p, h) in enumerate(zip(params, hs, strict=True)):
        if h["weight_decay"] and h["decouple"]:
            p *= 1 - h["weight_decay"] * dlr
        p -= dlr * state[i]["m"] / (state[i]["v"].sqrt() + d * h["eps"])


@pytest.mark.parametrize(
    ("groups", "maximize"),
    [
        (({}, {"weight_decay": 0.1}), False),
        (({"use_bias_correction": True, "betas": (0.8, 0.99)}, {"eps": 1e-6}), True),
        (
            (
                {"safeguard_warmup": True, "d_coef": 0.5, "growth_rate": 1.05},
                {"weight_decay": 0.1, "decouple": False},
            ),
            False,
        ),
    ],
)
def test_follows_the_paper(groups: tuple[dict, dict], maximize: bool) -> None:
    # group-level options (betas, d_coef, ...) are read from the first group, as the
    # authors' implementation does; the reference does the same
    follow(lambda g: Prodigy(g), reference, groups, maximize=maximize, steps=60)


def test_d_grows_from_d0_and_minimizes_a_quadratic() -> None:
    opts = []

    def make(params: Params) -> torch.optim.Optimizer:
        opts.append(Prodigy(params))
        return opts[-1]

    minimizes_a_quadratic(make, steps=2000)
    assert opts[0].param_groups[0]["d"] > 1e3 * opts[0].param_groups[0]["d0"]


def test_groups_may_differ_in_lr_only_by_freezing() -> None:
    a, b = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    opt = Prodigy([{"params": [a]}, {"params": [b], "lr": 0.0}])
    (a * a + b * b).sum().backward()
    for _ in range(3):
        opt.step()
    assert torch.equal(b.detach(), torch.ones(2)) and not torch.equal(a.detach(), torch.ones(2))
    opt.param_groups[1]["lr"] = 0.5
    with pytest.raises(ValueError, match="lr"):
        opt.step()
