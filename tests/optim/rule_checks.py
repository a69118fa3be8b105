"""Shared by the tests of the rules torch.optim lacks: each rule is held, step for step,
against a reference written in its test from the paper's update (a plain loop over
tensors, nothing shared with ``descend.optim``), on a small network with two parameter
groups, and must minimize a quadratic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

Params = list[Tensor]
#: reference(params, grads, state, hypers): one step in place; grads are for descent
Reference = Callable[[Params, Params, dict[str, Any], list[dict[str, Any]]], None]


def mlp() -> tuple[Params, Callable[[Params], Tensor]]:
    """A 4-16-16-1 tanh network on fixed data, float64: matrices and biases."""
    gen = torch.Generator().manual_seed(0)
    sizes = [(16, 4), (16,), (16, 16), (16,), (1, 16), (1,)]
    params = [
        (torch.randn(s, generator=gen, dtype=torch.float64) * 0.5).requires_grad_() for s in sizes
    ]
    x = torch.randn(64, 4, generator=gen, dtype=torch.float64)
    y = torch.sin(x.sum(dim=1, keepdim=True))

    def loss(p: Params) -> Tensor:
        h = torch.tanh(x @ p[0].T + p[1])
        h = torch.tanh(h @ p[2].T + p[3])
        return torch.nn.functional.mse_loss(h @ p[4].T + p[5], y)

    return params, loss


def follow(
    make: Callable[[list[dict[str, Any]]], torch.optim.Optimizer],
    reference: Reference,
    groups: tuple[dict[str, Any], dict[str, Any]],
    *,
    maximize: bool = False,
    steps: int = 100,
    matrices_only: bool = False,
) -> None:
    """Run ``make([group0, group1])`` and ``reference`` side by side on two copies of the
    network and assert the parameters agree after every step. The first group holds the
    first two parameters, the second the rest (only the weight matrices with
    ``matrices_only``). ``maximize``: ours ascends the negated loss, so both runs follow
    the same path; the reference always gets the descent gradient."""
    ours_all, loss = mlp()
    theirs_all, _ = mlp()
    pick = [0, 2, 4] if matrices_only else list(range(len(ours_all)))
    ours = [ours_all[i] for i in pick]
    theirs = [theirs_all[i] for i in pick]
    extra = {"maximize": True} if maximize else {}
    opt = make(
        [{"params": ours[:2], **groups[0], **extra}, {"params": ours[2:], **groups[1], **extra}]
    )
    hypers = [groups[0]] * 2 + [groups[1]] * (len(theirs) - 2)
    state: dict[str, Any] = {}
    sign = -1.0 if maximize else 1.0
    for _ in range(steps):
        opt.zero_grad()
        (sign * loss(ours_all)).backward()
        opt.step()
        grads = list(torch.autograd.grad(loss(theirs_all), theirs))
        with torch.no_grad():
            reference(theirs, grads, state, hypers)
        for a, b in zip(ours, theirs, strict=True):
            torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-9, atol=1e-12)
    start, _ = mlp()
    assert not torch.equal(ours[0], start[pick[0]]), "nothing moved"


def minimizes_a_quadratic(
    make: Callable[[Params], torch.optim.Optimizer],
    steps: int,
    schedule: Callable[[torch.optim.Optimizer], Any] | None = None,
    shape: tuple[int, ...] = (10,),
) -> None:
    """An ill-conditioned bowl of 10 coordinates (in ``shape``) from zero: the loss falls
    below 1e-6 of its start (``schedule`` builds a learning-rate scheduler stepped after
    every step)."""
    scale = torch.logspace(0, 1, 10, dtype=torch.float64).reshape(shape)
    target = torch.linspace(-1, 1, 10, dtype=torch.float64).reshape(shape)
    x = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    opt = make([x])

    def loss() -> Tensor:
        return (scale * (x - target) ** 2).sum()

    scheduler = schedule(opt) if schedule is not None else None
    start = loss().item()
    for _ in range(steps):
        opt.zero_grad()
        loss().backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()
    assert loss().item() < 1e-6 * start
