"""Muon against ``torch.optim.Muon``: the same hyperparameters, defaults and state, step
for step, on the weight matrices of a small network."""

from __future__ import annotations

import inspect
import io
from typing import Any

import pytest
import torch
from rule_checks import Params, follow, minimizes_a_quadratic, mlp

from descend.optim import Muon
from descend.optim.muon import orthogonalize


def torch_muon(params: Params, grads: Params, state: dict[str, Any], hypers: list[dict]) -> None:
    """torch.optim.Muon as the reference, built on the first call with the same groups."""
    if "opt" not in state:
        state["opt"] = torch.optim.Muon(
            [{"params": params[:2], **hypers[0]}, {"params": params[2:], **hypers[2]}]
        )
    for p, g in zip(params, grads, strict=True):
        p.grad = g
    state["opt"].step()


@pytest.mark.parametrize(
    ("groups", "maximize"),
    [
        (({"lr": 0.02}, {"lr": 0.01, "weight_decay": 0.0, "nesterov": False}), False),
        (({"lr": 0.02, "adjust_lr_fn": "match_rms_adamw"}, {"lr": 0.01, "momentum": 0.9}), True),
        (
            ({"lr": 0.02, "ns_steps": 3, "adjust_lr_fn": "original"}, {"lr": 0.05, "eps": 1e-3}),
            False,
        ),
    ],
)
def test_follows_torch(groups: tuple[dict, dict], maximize: bool) -> None:
    follow(lambda g: Muon(g), torch_muon, groups, maximize=maximize, steps=50, matrices_only=True)


def test_defaults_and_state_keys_are_torchs() -> None:
    ours = inspect.signature(Muon).parameters
    theirs = inspect.signature(torch.optim.Muon).parameters
    for name, parameter in theirs.items():
        assert ours[name].default == parameter.default, name
    params, loss = mlp()
    opt = Muon([params[0]])
    loss(params).backward()
    opt.step()
    assert set(opt.state[params[0]]) - {"step"} == {"momentum_buffer"}


def test_takes_a_torch_checkpoint() -> None:
    params, loss = mlp()
    matrices = [params[0], params[2]]
    theirs = torch.optim.Muon(matrices, lr=0.02)
    for _ in range(5):
        theirs.zero_grad()
        loss(params).backward()
        theirs.step()
    copies = [p.detach().clone().requires_grad_() for p in params]
    ours = Muon([copies[0], copies[2]], lr=0.02)
    buffer = io.BytesIO()  # through a file, as a checkpoint: no tensor shared with theirs
    torch.save(theirs.state_dict(), buffer)
    buffer.seek(0)
    ours.load_state_dict(torch.load(buffer))
    for _ in range(5):
        for opt, p in ((theirs, params), (ours, copies)):
            opt.zero_grad()
            loss(p).backward()
            opt.step()
    for p, q in zip(params, copies, strict=True):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-9, atol=1e-12)


def test_orthogonalize_maps_singular_values_near_one() -> None:
    """Five steps from a matrix of condition number about 10 (tinier singular values need
    more steps: the quintic lifts them by its slope at zero, about 3.4 a step)."""
    gen = torch.Generator().manual_seed(0)
    for shape in ((8, 32), (32, 8)):
        matrix = torch.randn(shape, generator=gen) * torch.logspace(0, 1, shape[1])
        singular = torch.linalg.svdvals(
            orthogonalize(matrix, (3.4445, -4.7750, 2.0315), 5, 1e-7).float()
        )
        assert singular.min() > 0.5 and singular.max() < 1.3


def test_minimizes_a_matrix_quadratic() -> None:
    minimizes_a_quadratic(
        lambda params: Muon(params, lr=0.1, weight_decay=0.0),
        steps=2000,
        schedule=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=200, gamma=0.5),
        shape=(2, 5),
    )


def test_refuses_what_is_not_a_matrix() -> None:
    with pytest.raises(ValueError, match=r"2-D.*\(3,\)"):
        Muon([torch.zeros(3, requires_grad=True)])
    with pytest.raises(ValueError, match="adjust_lr_fn"):
        Muon([torch.zeros(3, 3, requires_grad=True)], adjust_lr_fn="rms")
