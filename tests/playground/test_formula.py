"""The formula parser: every whitelisted piece means its torch op, and autodiff gives the
gradient; it never evaluates Python."""

from __future__ import annotations

import math

import pytest
import torch

from descend.playground.formula import FUNCTIONS, parse_formula


def point(x: float, y: float) -> torch.Tensor:
    return torch.tensor([x, y], dtype=torch.float64)


def test_a_formula_is_the_torch_function_it_names_with_its_autodiff_gradient():
    f = parse_formula("sin(x) * exp(-y) + x**2 / 2 - 3 % 2 + pi * e")
    x = point(0.7, -0.4).requires_grad_(True)
    value = f(x)
    value.backward()
    u, v = 0.7, -0.4
    assert value.item() == pytest.approx(
        math.sin(u) * math.exp(-v) + u**2 / 2 - 1 + math.pi * math.e
    )
    assert x.grad.tolist() == pytest.approx(
        [math.cos(u) * math.exp(-v) + u, -math.sin(u) * math.exp(-v)]
    )


def test_a_formula_is_evaluated_on_a_grid_in_one_call():
    f = parse_formula("x**2 + 10*y**2")
    grid = torch.stack(torch.meshgrid(torch.arange(3.0), torch.arange(4.0), indexing="ij"), -1)
    assert f(grid.double()).shape == (3, 4)
    assert parse_formula("3")(grid.double()).tolist() == [[3.0] * 4] * 3  # flat, right shape


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_whitelisted_function_runs_on_tensors_and_constants(name):
    two = name in ("atan2", "hypot", "minimum", "maximum")
    text = f"{name}(x, 0.5) + {name}(0.25, y)" if two else f"{name}(0.3 * x) + {name}(0.5)"
    value = parse_formula(text)(point(0.5, 0.25))
    assert value.shape == () and torch.isfinite(value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("__import__('os')", "unknown function '__import__'"),
        ("x.real", "attribute access (.real)"),
        ("z + 1", "unknown name 'z'"),
        ("exp", "a function: call it"),
        ("exp(x, y)", "takes 1 argument"),
        ("hypot(x)", "takes 2 arguments"),
        ("exp(x=1)", "no keyword arguments"),
        ("x < y", "Compare is not allowed"),
        ("x @ y", "MatMult is not allowed"),
        ("not x", "Not is not allowed"),
        ("'x'", "only numbers"),
        ("True", "only numbers"),
        ("1/0", "cannot be evaluated"),
        ("", "empty"),
        ("x" * 501, "at most 500"),
    ],
)
def test_anything_outside_the_whitelist_is_refused(text, words):
    with pytest.raises(ValueError) as error:
        parse_formula(text)
    assert words in str(error.value)


def test_deep_nesting_is_refused():
    with pytest.raises(ValueError, match="nested more than"):
        parse_formula("-" * 100 + "x")
