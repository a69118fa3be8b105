"""The method table: every rule added to ``descend.optim`` runs by name in ``minimize``."""

from __future__ import annotations

import pytest
import torch

import descend
from descend.methods import METHODS, get_method

#: the rules added after the first table (torch.optim's remaining rules and beyond)
ADDED = (
    "nadam",
    "radam",
    "adamax",
    "adadelta",
    "rprop",
    "asgd",
    "adafactor",
    "lion",
    "adopt",
    "yogi",
    "schedule-free-sgd",
    "schedule-free-adamw",
    "prodigy",
)

SCALE = torch.tensor([1.0, 2.0, 4.0, 8.0], dtype=torch.float64)
TARGET = torch.tensor([1.0, -0.5, 0.25, 2.0], dtype=torch.float64)


def bowl(x: torch.Tensor) -> torch.Tensor:
    return (SCALE * (x - TARGET) ** 2).sum()


@pytest.mark.parametrize("name", [n for n in ADDED if n != "lion"])
def test_minimize_by_name_converges_on_a_quadratic(name: str) -> None:
    result = descend.minimize(bowl, [0.0, 0.0, 0.0, 0.0], name, max_iter=20_000)
    assert result.converged, result.message
    torch.testing.assert_close(torch.as_tensor(result.x), TARGET, rtol=0, atol=1e-3)


def test_minimize_with_lion_ends_within_a_step_of_the_minimum() -> None:
    """Every coordinate moves by exactly lr each step: at a fixed rate Lion circles the
    minimum at that distance and never meets gtol."""
    lr = get_method("lion").default_lr()
    result = descend.minimize(bowl, [0.0, 0.0, 0.0, 0.0], "lion", max_iter=2_000)
    torch.testing.assert_close(torch.as_tensor(result.x), TARGET, rtol=0, atol=2 * lr)


@pytest.mark.parametrize("name", ADDED)
def test_each_added_method_has_rates_for_functions_and_for_training(name: str) -> None:
    method = get_method(name)
    assert name in METHODS and method.optimizer.__module__.startswith("descend.optim")
    assert method.default_lr() > 0 and method.default_lr(training=True) > 0
