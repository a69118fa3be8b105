"""Schedule-Free SGD and AdamW against the paper's three sequences (Defazio et al., 2024,
Algorithm 1): z steps at y, x averages z, y interpolates; the optimizer stores only z and
one of x, y."""

from __future__ import annotations

import io
from typing import Any

import pytest
import torch
from rule_checks import Params, follow, minimizes_a_quadratic, mlp

from descend.optim import ScheduleFreeAdamW, ScheduleFreeSGD

DEFAULTS = {"warmup_steps": 0, "r": 0.0, "weight_lr_power": 2.0, "weight_decay": 0.0}


def reference(adam: bool) -> Any:
    """One step of the three-sequence form; ``state["x"]`` keeps the averages."""

    def step(params: Params, grads: Params, state: dict[str, Any], hypers: list[dict]) -> None:
        groups = state.setdefault("groups", {})
        for key, h in {id(h): h for h in hypers}.items():
            h = {**DEFAULTS, **h}
            counters = groups.setdefault(key, {"k": 0, "sum": 0.0, "max": -1.0})
            k = counters["k"] = counters["k"] + 1
            gamma = h["lr"] * min(1.0, k / h["warmup_steps"]) if h["warmup_steps"] else h["lr"]
            counters["max"] = max(counters["max"], gamma)
            weight = k ** h["r"] * counters["max"] ** h["weight_lr_power"]
            counters["sum"] += weight
            counters["c"], counters["gamma"] = weight / counters["sum"], gamma
        for i, (y, g, h) in enumerate(zip(params, grads, hypers, strict=True)):
            counters = groups[id(h)]
            h = {**DEFAULTS, **h}
            s = state.setdefault(i, {"z": y.clone(), "x": y.clone(), "v": torch.zeros_like(y)})
            if adam:
                beta, beta2 = h.get("betas", (0.9, 0.999))
                s["v"] = beta2 * s["v"] + (1 - beta2) * g * g
                g = g / ((s["v"] / (1 - beta2 ** counters["k"])).sqrt() + h.get("eps", 1e-8))
            else:
                beta = h.get("momentum", 0.9)
            d = g + h["weight_decay"] * y
            s["z"] = s["z"] - counters["gamma"] * d
            s["x"] = (1 - counters["c"]) * s["x"] + counters["c"] * s["z"]
            y.copy_((1 - beta) * s["z"] + beta * s["x"])

    return step


CASES = [
    pytest.param(
        ScheduleFreeSGD,
        ({"lr": 0.05}, {"lr": 0.1, "momentum": 0.8, "weight_decay": 0.01, "warmup_steps": 10}),
        id="SGD",
    ),
    pytest.param(
        ScheduleFreeAdamW,
        (
            {"lr": 2e-3, "r": 1.0},
            {"lr": 5e-3, "betas": (0.8, 0.99), "weight_decay": 0.1, "weight_lr_power": 1.0},
        ),
        id="AdamW",
    ),
    pytest.param(
        ScheduleFreeAdamW,
        ({"lr": 1e-3, "warmup_steps": 20}, {"lr": 1e-2, "eps": 1e-4}),
        id="AdamW-warmup",
    ),
]


@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize(("cls", "groups"), CASES)
def test_follows_the_paper(cls: type, groups: tuple[dict, dict], maximize: bool) -> None:
    follow(lambda g: cls(g), reference(cls is ScheduleFreeAdamW), groups, maximize=maximize)


@pytest.mark.parametrize(("cls", "groups"), CASES)
def test_eval_holds_the_average_and_train_the_gradient_point(cls: type, groups: Any) -> None:
    params, loss = mlp()
    opt = cls([{"params": params[:2], **groups[0]}, {"params": params[2:], **groups[1]}])
    copies, _ = mlp()
    state: dict[str, Any] = {}
    step = reference(cls is ScheduleFreeAdamW)
    hypers = [groups[0]] * 2 + [groups[1]] * 4
    for _ in range(30):
        opt.zero_grad()
        loss(params).backward()
        opt.step()
        grads = list(torch.autograd.grad(loss(copies), copies))
        with torch.no_grad():
            step(copies, grads, state, hypers)
    y = [p.detach().clone() for p in params]
    opt.eval()
    for i, p in enumerate(params):
        torch.testing.assert_close(p.detach(), state[i]["x"], rtol=1e-9, atol=1e-12)
    opt.eval()  # a second switch to the same mode is no switch
    torch.testing.assert_close(params[0].detach(), state[0]["x"], rtol=1e-9, atol=1e-12)
    with pytest.raises(RuntimeError, match="train"):
        opt.step()
    opt.train()
    for p, q in zip(params, y, strict=True):
        torch.testing.assert_close(p.detach(), q, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cls", [ScheduleFreeSGD, ScheduleFreeAdamW])
def test_state_dict_resumes_in_lockstep(cls: type) -> None:
    """The averaging counters live in the param groups and travel with the state."""
    params, loss = mlp()
    original = cls(params, lr=0.01, warmup_steps=5)
    for _ in range(10):
        original.zero_grad()
        loss(params).backward()
        original.step()
    buffer = io.BytesIO()
    torch.save(original.state_dict(), buffer)
    buffer.seek(0)
    copies = [p.detach().clone().requires_grad_() for p in params]
    resumed = cls(copies, lr=0.01, warmup_steps=5)
    resumed.load_state_dict(torch.load(buffer))
    assert resumed.param_groups[0]["k"] == 10
    for _ in range(10):
        for opt, p in ((original, params), (resumed, copies)):
            opt.zero_grad()
            loss(p).backward()
            opt.step()
    for p, q in zip(params, copies, strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize(
    ("cls", "lr"), [(ScheduleFreeSGD, 0.05), (ScheduleFreeAdamW, 0.05)], ids=["SGD", "AdamW"]
)
def test_minimizes_a_quadratic(cls: type, lr: float) -> None:
    minimizes_a_quadratic(lambda p: cls(p, lr=lr), steps=3000)


def test_refuses_bad_hyperparameters() -> None:
    x = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match=r"momentum.*0\.0"):
        ScheduleFreeSGD(x, momentum=0.0)
    with pytest.raises(ValueError, match=r"warmup_steps.*-1"):
        ScheduleFreeAdamW(x, warmup_steps=-1)
