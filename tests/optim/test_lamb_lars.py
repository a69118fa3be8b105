"""LARS and LAMB against the papers' updates (You et al. 2017, Algorithm 1; You et al. 2019,
Algorithm 2), written here as plain loops over tensors, and against torch.optim where the
trust ratio is off (SGD, AdamW)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from rule_checks import Params, follow, minimizes_a_quadratic

import descend
from descend.optim import LAMB, LARS, layer_adaptation_groups


def lars_reference(
    params: Params, grads: Params, state: dict[str, Any], hypers: list[dict]
) -> None:
    """local_lr = eta ||w|| / (||g|| + beta ||w||) (1 if a norm is 0);
    v = m v + gamma local_lr (g + beta w); w = w - v (gamma constant)."""
    for i, (w, g, h) in enumerate(zip(params, grads, hypers, strict=True)):
        gamma, m, beta = h["lr"], h.get("momentum", 0.9), h.get("weight_decay", 0.0)
        eta = h.get("trust_coefficient", 1e-3)
        w_norm, g_norm = w.norm().item(), g.norm().item()
        local_lr = 1.0
        if h.get("layer_adaptation", True) and w_norm > 0 and g_norm > 0:
            local_lr = eta * w_norm / (g_norm + beta * w_norm)
        v = state.get(i, torch.zeros_like(w))
        state[i] = m * v + gamma * local_lr * (g + beta * w)
        w -= state[i]


def lamb_reference(
    params: Params, grads: Params, state: dict[str, Any], hypers: list[dict]
) -> None:
    """m, v as Adam; r = m_hat / (sqrt(v_hat) + eps); x -= lr phi(||x||) / ||r + l x||
    (r + l x) (ratio 1 if a norm is 0)."""
    for i, (x, g, h) in enumerate(zip(params, grads, hypers, strict=True)):
        lr, lam, eps = h["lr"], h.get("weight_decay", 0.0), h.get("eps", 1e-6)
        beta1, beta2 = h.get("betas", (0.9, 0.999))
        s = state.setdefault(i, {"t": 0, "m": torch.zeros_like(x), "v": torch.zeros_like(x)})
        s["t"] += 1
        s["m"] = beta1 * s["m"] + (1 - beta1) * g
        s["v"] = beta2 * s["v"] + (1 - beta2) * g * g
        r = (s["m"] / (1 - beta1 ** s["t"])) / ((s["v"] / (1 - beta2 ** s["t"])).sqrt() + eps)
        u = r + lam * x
        x_norm, u_norm = x.norm().item(), u.norm().item()
        ratio = 1.0
        if h.get("layer_adaptation", True) and x_norm > 0 and u_norm > 0:
            low, high = h.get("weight_norm_bounds") or (0.0, float("inf"))
            ratio = min(max(x_norm, low), high) / u_norm
        x -= lr * ratio * u


@pytest.mark.parametrize(
    "groups",
    [
        ({"lr": 0.5}, {"lr": 2.0, "momentum": 0.8, "weight_decay": 0.01}),
        ({"lr": 1.0, "trust_coefficient": 0.01}, {"lr": 0.05, "layer_adaptation": False}),
        ({"lr": 3.0, "momentum": 0.0, "weight_decay": 0.1}, {"lr": 1.0}),
    ],
)
@pytest.mark.parametrize("maximize", [False, True])
def test_lars_follows_the_paper(groups: tuple[dict, dict], maximize: bool) -> None:
    follow(lambda g: LARS(g), lars_reference, groups, maximize=maximize)


@pytest.mark.parametrize(
    "groups",
    [
        ({"lr": 1e-2}, {"lr": 3e-3, "betas": (0.8, 0.99), "weight_decay": 0.1}),
        ({"lr": 1e-2, "weight_norm_bounds": (0.5, 2.0)}, {"lr": 1e-3, "eps": 1e-8}),
        ({"lr": 1e-2, "layer_adaptation": False, "weight_decay": 0.01}, {"lr": 5e-3}),
    ],
)
@pytest.mark.parametrize("maximize", [False, True])
def test_lamb_follows_the_paper(groups: tuple[dict, dict], maximize: bool) -> None:
    follow(lambda g: LAMB(g), lamb_reference, groups, maximize=maximize)


def quadratic_network() -> tuple[Params, Any]:
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(5, 4, generator=gen, dtype=torch.float64).requires_grad_()
    b = torch.randn(5, generator=gen, dtype=torch.float64).requires_grad_()
    x = torch.randn(32, 4, generator=gen, dtype=torch.float64)

    def loss() -> torch.Tensor:
        return ((torch.tanh(x @ w.T + b) - 0.5) ** 2).mean()

    return [w, b], loss


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (
            lambda p: LARS(
                p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01, layer_adaptation=False
            ),
            lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        ),
        (
            lambda p: LAMB(p, lr=0.01, weight_decay=0.1, eps=1e-8, layer_adaptation=False),
            lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1, eps=1e-8),
        ),
    ],
    ids=["lars-is-sgd", "lamb-is-adamw"],
)
def test_without_the_ratio_they_are_torchs_sgd_and_adamw(ours, theirs) -> None:
    a, loss_a = quadratic_network()
    b, loss_b = quadratic_network()
    opt_a, opt_b = ours(a), theirs(b)
    for _ in range(50):
        for opt, loss in ((opt_a, loss_a), (opt_b, loss_b)):
            opt.zero_grad()
            loss().backward()
            opt.step()
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("make", "fraction"),
    [(lambda p: LARS(p, lr=10.0), 10.0 * 1e-3), (lambda p: LAMB(p, lr=0.1), 0.1)],
    ids=["lars", "lamb"],
)
def test_a_step_moves_each_tensor_by_a_fraction_of_its_norm(make, fraction: float) -> None:
    """First step, no momentum history, no decay: LARS moves a tensor by lr * eta * ||w||
    and LAMB by lr * ||w||, whatever the gradient's scale."""
    for scale in (1e-3, 1e3):
        w = torch.full((3, 4), 2.0, dtype=torch.float64, requires_grad=True)
        opt = make([w])
        start = w.detach().clone()
        w.grad = scale * torch.linspace(-1, 1, 12, dtype=torch.float64).reshape(3, 4)
        opt.step()
        moved = (w.detach() - start).norm()
        torch.testing.assert_close(moved, fraction * start.norm(), rtol=1e-6, atol=0)


@pytest.mark.parametrize("make", [lambda p: LARS(p, lr=0.5), lambda p: LAMB(p, lr=0.5)])
def test_the_ratio_is_one_for_a_zero_tensor_or_a_zero_gradient(make) -> None:
    """A zero tensor (a fresh bias) takes the global rate instead of never moving; a zero
    gradient leaves the tensor where it is."""
    zero = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    still = torch.ones(4, dtype=torch.float64, requires_grad=True)
    opt = make([zero, still])
    zero.grad = torch.full((4,), 2.0, dtype=torch.float64)
    still.grad = torch.zeros(4, dtype=torch.float64)
    opt.step()
    assert torch.isfinite(zero).all() and zero.abs().min() > 0
    if isinstance(opt, LARS):  # the SGD step: -lr g
        torch.testing.assert_close(zero.detach(), torch.full((4,), -1.0, dtype=torch.float64))
    else:  # Adam's first step: -lr g / (|g| + eps)
        expected = torch.full((4,), -0.5 * 2.0 / (2.0 + 1e-6), dtype=torch.float64)
        torch.testing.assert_close(zero.detach(), expected)
    torch.testing.assert_close(still.detach(), torch.ones(4, dtype=torch.float64))


def test_layer_adaptation_groups_exclude_biases_and_norm_scales() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 1))
    model[2].bias.requires_grad_(False)
    adapted, excluded = layer_adaptation_groups(model, weight_decay=0.01)
    assert [p.shape for p in adapted["params"]] == [(4, 3), (1, 4)]
    assert adapted["weight_decay"] == 0.01 and adapted["layer_adaptation"]
    assert [p.shape for p in excluded["params"]] == [(4,), (4,), (4,)]
    assert excluded["weight_decay"] == 0.0 and not excluded["layer_adaptation"]
    opt = LAMB(layer_adaptation_groups(model, weight_decay=0.01))
    model(torch.randn(8, 3)).sum().backward()
    opt.step()


@pytest.mark.parametrize(
    "make",
    [
        lambda p: LARS(p, lr=20.0, momentum=0.5),
        lambda p: LAMB(p, lr=0.05),
    ],
    ids=["lars", "lamb"],
)
def test_minimizes_a_quadratic(make) -> None:
    # a step proportional to the tensor's norm never shrinks on its own: a decaying rate
    minimizes_a_quadratic(
        make,
        steps=2000,
        schedule=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=100, gamma=0.6),
    )


@pytest.mark.parametrize("name", ["lars", "lamb"])
def test_by_name_in_minimize_and_fit(name: str) -> None:
    scale = torch.tensor([1.0, 2.0, 4.0, 8.0], dtype=torch.float64)
    target = torch.tensor([1.0, -0.5, 0.25, 2.0], dtype=torch.float64)
    result = descend.minimize(
        lambda x: (scale * (x - target) ** 2).sum(), [0.1] * 4, name, max_iter=300
    )
    assert result.fun < 0.05 * (scale * (0.1 - target) ** 2).sum().item()
    method = descend.methods.get_method(name)
    assert method.default_lr() > 0 and method.default_lr(training=True) > 0


def test_refuses_bad_hyperparameters() -> None:
    x = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match=r"trust_coefficient.*\(0, inf\).*0\.0"):
        LARS(x, trust_coefficient=0.0)
    with pytest.raises(ValueError, match=r"nesterov.*momentum=0"):
        LARS(x, momentum=0.0, nesterov=True)
    with pytest.raises(ValueError, match=r"weight_norm_bounds\[1\].*\[0\.5, inf\).*0\.1"):
        LAMB(x, weight_norm_bounds=(0.5, 0.1))
    with pytest.raises(ValueError, match=r"weight_norm_bounds.*pair"):
        LAMB(x, weight_norm_bounds=1.0)
    with pytest.raises(ValueError, match=r"eps.*0\.0"):
        LAMB(x, eps=0.0)
