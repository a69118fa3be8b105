"""The blocked update driver: large tensors are cut into views, small ones are batched,
and every rule still equals ``torch.optim`` across the cuts."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

import descend.optim
from descend.optim.optimizer import BLOCK_NUMEL, blocks

#: more than two blocks, and not a multiple of a block: the last piece is partial
LARGE = max(300_000, 2 * BLOCK_NUMEL + 1)
SMALL = 1000
MANY = 2 * BLOCK_NUMEL // SMALL + 7  # enough small tensors to fill more than two batches


def layout(name: str) -> list[tuple[int, ...]]:
    """Parameter shapes; a shape (rows, cols, "t") is made non-contiguous by transposing."""
    return {
        "one_large": [(LARGE,)],
        "many_small": [(SMALL,)] * MANY,
        "mixed": [(7,), (LARGE,), *[(SMALL,)] * MANY, (LARGE // 100, 100, "t"), (3, 5)],
    }[name]


def make(shape: tuple[Any, ...], gen: torch.Generator) -> Tensor:
    if shape[-1] == "t":
        return torch.randn(shape[:-1], generator=gen, dtype=torch.float64).t()
    return torch.randn(shape, generator=gen, dtype=torch.float64)


LAYOUTS = ["one_large", "many_small", "mixed"]


@pytest.mark.parametrize("name", LAYOUTS)
def test_blocks_cover_every_element_once_in_parallel(name: str) -> None:
    gen = torch.Generator().manual_seed(0)
    values = [make(s, gen) for s in layout(name)]
    twins = [v.clone() for v in values]
    hits = [torch.zeros_like(v) for v in values]

    count = 0
    for block in blocks([values, twins, hits]):
        count += 1
        assert len(block) == 3 and len({len(lst) for lst in block}) == 1
        for value, twin, hit in zip(*block, strict=True):
            assert torch.equal(value, twin), "parallel lists were cut at different places"
            hit.add_(1)
    assert count > 2, "the layout should need several blocks"
    for hit in hits:
        assert torch.equal(hit, torch.ones_like(hit)), "an element was missed or visited twice"


def richest(name: str) -> dict[str, Any]:
    flags = {
        "SGD": {"momentum": 0.9, "nesterov": True},
        "Adagrad": {"lr_decay": 0.01, "initial_accumulator_value": 0.1},
        "RMSprop": {"momentum": 0.5, "centered": True},
        "Adam": {"amsgrad": True},
        "AdamW": {"amsgrad": True},
    }[name]
    return {**flags, "lr": 0.01, "weight_decay": 0.05, "maximize": True}


@pytest.mark.parametrize("name", LAYOUTS)
@pytest.mark.parametrize("optimizer", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_blocked_update_matches_torch(optimizer: str, name: str) -> None:
    config = richest(optimizer)
    runs = []
    for cls in (getattr(descend.optim, optimizer), getattr(torch.optim, optimizer)):
        gen = torch.Generator().manual_seed(1)
        params = [make(s, gen).requires_grad_() for s in layout(name)]
        curvature = [make(s, gen).abs_().add_(0.5) for s in layout(name)]
        runs.append((cls(params, **config), params, curvature))
    for opt, params, curvature in runs:
        for _ in range(3):
            # the gradient of the negated bowl -sum(c p^2) (maximized): every element its
            # own curvature, with the parameter's strides as autograd would give
            for p, c in zip(params, curvature, strict=True):
                p.grad = p.detach() * c * -2
            opt.step()
    (_, ours, _), (_, theirs, _) = runs
    for p, q in zip(ours, theirs, strict=True):
        assert p.stride() == q.stride()
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-9, atol=1e-12)
