"""TorchLBFGS: torch.optim.LBFGS's defaults and step semantics, iterate for iterate."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor

from descend.optim import LBFGS, TorchLBFGS


def bowl() -> Callable[[Tensor], Tensor]:
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(6, 6, generator=gen, dtype=torch.float64)
    a = a @ a.T / 6 + 0.5 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, generator=gen, dtype=torch.float64)
    return lambda x: 0.5 * x @ a @ x - b @ x


def rosenbrock(x: Tensor) -> Tensor:
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


PROBLEMS = {
    "bowl": (bowl(), [0.0] * 6),
    "rosenbrock": (rosenbrock, [-1.2, 1.0, -1.2, 1.0]),
}


def run(cls: type, problem: str, steps: int, **options: Any) -> tuple[list[Tensor], list[int]]:
    """The iterate after each step() and the closure evaluations each step() made."""
    f, start = PROBLEMS[problem]
    x = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = cls([x], **options)
    calls = 0

    def closure() -> Tensor:
        nonlocal calls
        calls += 1
        opt.zero_grad()
        value = f(x)
        value.backward()
        return value

    iterates, counts = [], []
    for _ in range(steps):
        calls = 0
        opt.step(closure)
        iterates.append(x.detach().clone())
        counts.append(calls)
    return iterates, counts


@pytest.mark.parametrize(
    ("problem", "options"),
    [
        ("bowl", {}),
        ("rosenbrock", {"lr": 0.1}),
        ("rosenbrock", {"lr": 0.05, "max_iter": 7, "history_size": 3}),
        ("bowl", {"max_eval": 9, "tolerance_change": 1e-6}),
        ("bowl", {"tolerance_grad": 1e-2}),
    ],
)
def test_follows_torch_iterate_for_iterate(problem: str, options: dict[str, Any]) -> None:
    ours, our_calls = run(TorchLBFGS, problem, 6, **options)
    theirs, their_calls = run(torch.optim.LBFGS, problem, 6, **options)
    assert our_calls == their_calls
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    assert not torch.equal(ours[-1], torch.tensor(PROBLEMS[problem][1], dtype=torch.float64))


def test_defaults_are_torchs() -> None:
    ours = inspect.signature(TorchLBFGS).parameters
    for name, parameter in inspect.signature(torch.optim.LBFGS).parameters.items():
        assert ours[name].default == parameter.default, name
    x = torch.zeros(2, requires_grad=True)
    assert (
        TorchLBFGS([x]).param_groups[0]["max_eval"] == torch.optim.LBFGS([x]).defaults["max_eval"]
    )


def test_with_strong_wolfe_reaches_rosenbrocks_minimum_as_torch_does() -> None:
    """The case that set torch and descend.optim.LBFGS apart: 30 step() calls on 4-D
    Rosenbrock; the searches differ, the destination does not."""
    for cls in (TorchLBFGS, torch.optim.LBFGS):
        iterates, _ = run(cls, "rosenbrock", 30, line_search_fn="strong_wolfe")
        assert rosenbrock(iterates[-1]).item() < 1e-8
    one_per_step, counts = run(LBFGS, "rosenbrock", 30)
    assert rosenbrock(one_per_step[-1]).item() > 1e-8 and max(counts) < 30
