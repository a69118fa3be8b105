"""A landscape typed as a formula in ``x`` and ``y``, parsed without ``eval``.

The text is parsed by :mod:`ast` and every node is checked against a whitelist: numbers,
the names ``x``, ``y``, ``pi``, ``e``, the operators ``+ - * / ** %`` and a short list of
functions, each turned into its torch op. Anything else (attribute access, subscripts,
``__import__``, lambdas, comprehensions, unknown names) is refused with a ValueError that
says what and where. The result is a function of ``x`` of shape ``(..., 2)``, written with
torch ops, so autodiff gives its gradient and a grid is evaluated in one call.

Example:
    >>> f = parse_formula("(1 - x)**2 + 100*(y - x**2)**2")
    >>> f(torch.tensor([1.0, 1.0], dtype=torch.float64))
    tensor(0., dtype=torch.float64)
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["FUNCTIONS", "MAX_FORMULA_LENGTH", "NAMES", "parse_formula"]

#: the longest formula accepted, in characters
MAX_FORMULA_LENGTH = 500
#: the deepest nesting accepted (a guard against pathological parse trees)
MAX_DEPTH = 40

#: functions a formula may call, by the name typed, each with its torch op
FUNCTIONS: dict[str, Callable[..., Tensor]] = {
    "sin": torch.sin,
    "cos": torch.cos,
    "tan": torch.tan,
    "arcsin": torch.asin,
    "arccos": torch.acos,
    "arctan": torch.atan,
    "sinh": torch.sinh,
    "cosh": torch.cosh,
    "tanh": torch.tanh,
    "exp": torch.exp,
    "log": torch.log,
    "log1p": torch.log1p,
    "sqrt": torch.sqrt,
    "abs": torch.abs,
    "sigmoid": torch.sigmoid,
    "softplus": torch.nn.functional.softplus,
    "atan2": torch.atan2,
    "hypot": torch.hypot,
    "minimum": torch.minimum,
    "maximum": torch.maximum,
}
#: how many arguments each function takes
_ARITY = {"atan2": 2, "hypot": 2, "minimum": 2, "maximum": 2}

#: constants a formula may name
NAMES: dict[str, float] = {"pi": math.pi, "e": math.e}
_VARIABLES = ("x", "y")

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}

# a compiled node: the coordinates (x, y) -> a tensor or a Python number
Node = Callable[[Tensor, Tensor], Any]


def parse_formula(text: str) -> Callable[[Tensor], Tensor]:
    """The function of ``x`` (shape ``(..., 2)``; returns shape ``(...)``) that ``text`` names.

    Args:
        text: an expression in ``x`` and ``y`` of at most :data:`MAX_FORMULA_LENGTH`
            characters: numbers, ``pi``, ``e``, ``+ - * / ** %``, parentheses and the
            functions in :data:`FUNCTIONS`.

    Raises:
        ValueError: naming what is not allowed, or why the text does not parse.
    """
    if not isinstance(text, str):
        raise TypeError(f"formula must be a string, got {type(text).__name__}")
    if not text.strip():
        raise ValueError("formula is empty; type an expression in x and y, e.g. x**2 + 3*y**2")
    if len(text) > MAX_FORMULA_LENGTH:
        raise ValueError(
            f"formula has {len(text)} characters; at most {MAX_FORMULA_LENGTH} are allowed"
        )
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        where = f"at column {exc.offset}" if exc.offset else "at its end"
        raise ValueError(f"formula does not parse {where}: {exc.msg}") from None
    node = _compile(tree.body, 0)
    # Only arithmetic on constants can raise (torch ops give inf or NaN instead), and it
    # raises wherever it is evaluated: one evaluation finds it.
    zero = torch.zeros((), dtype=torch.float64)
    try:
        node(zero, zero)
    except (ArithmeticError, RuntimeError) as exc:
        raise ValueError(f"formula cannot be evaluated: {exc}") from None

    def landscape(x: Tensor) -> Tensor:
        if x.ndim == 0 or x.shape[-1] != 2:
            raise ValueError(f"a formula takes x of shape (..., 2), got {tuple(x.shape)}")
        value = node(x[..., 0], x[..., 1])
        if not isinstance(value, Tensor):  # a formula without x or y: a flat landscape
            value = torch.full(x.shape[:-1], float(value), dtype=x.dtype, device=x.device)
        return value

    return landscape


def _compile(node: ast.AST, depth: int) -> Node:
    """The compiled form of one whitelisted node; a ValueError for anything else."""
    if depth > MAX_DEPTH:
        raise ValueError(f"formula is nested more than {MAX_DEPTH} levels deep")
    where = f" (column {node.col_offset + 1})" if hasattr(node, "col_offset") else ""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ValueError(
                f"formula may hold only numbers as constants, got {node.value!r}{where}"
            )
        value = float(node.value)  # floats: 9**9**9 overflows at once instead of hanging
        return lambda x, y: value
    if isinstance(node, ast.Name):
        return _name(node.id, where)
    if isinstance(node, ast.BinOp):
        op = _BINARY.get(type(node.op))
        if op is None:
            raise ValueError(
                f"operator {type(node.op).__name__} is not allowed{where}; use + - * / ** %"
            )
        left, right = _compile(node.left, depth + 1), _compile(node.right, depth + 1)
        return lambda x, y: op(left(x, y), right(x, y))
    if isinstance(node, ast.UnaryOp):
        unary = _UNARY.get(type(node.op))
        if unary is None:
            raise ValueError(f"operator {type(node.op).__name__} is not allowed{where}")
        operand = _compile(node.operand, depth + 1)
        return lambda x, y: unary(operand(x, y))
    if isinstance(node, ast.Call):
        return _call(node, depth, where)
    if isinstance(node, ast.Attribute):
        raise ValueError(f"attribute access (.{node.attr}) is not allowed in a formula{where}")
    raise ValueError(
        f"{type(node).__name__} is not allowed in a formula{where}; use numbers, x, y, "
        f"pi, e, + - * / ** % and the functions {', '.join(FUNCTIONS)}"
    )


def _name(name: str, where: str) -> Node:
    if name == "x":
        return lambda x, y: x
    if name == "y":
        return lambda x, y: y
    if name in NAMES:
        value = NAMES[name]
        return lambda x, y: value
    hint = " (a function: call it)" if name in FUNCTIONS else ""
    raise ValueError(f"unknown name {name!r} in formula{where}{hint}; the names are x, y, pi, e")


def _call(node: ast.Call, depth: int, where: str) -> Node:
    if not isinstance(node.func, ast.Name):
        if isinstance(node.func, ast.Attribute):
            raise ValueError(
                f"attribute access (.{node.func.attr}) is not allowed in a formula{where}"
            )
        raise ValueError(f"only named functions can be called in a formula{where}")
    name = node.func.id
    if name not in FUNCTIONS:
        raise ValueError(
            f"unknown function {name!r} in formula{where}; the functions are {', '.join(FUNCTIONS)}"
        )
    if node.keywords:
        raise ValueError(f"{name}() takes no keyword arguments in a formula{where}")
    arity = _ARITY.get(name, 1)
    if len(node.args) != arity:
        raise ValueError(
            f"{name}() takes {arity} argument{'s' if arity > 1 else ''}, "
            f"got {len(node.args)}{where}"
        )
    fn = FUNCTIONS[name]
    args = [_compile(a, depth + 1) for a in node.args]

    def call(x: Tensor, y: Tensor) -> Tensor:
        # a constant argument becomes a tensor like x's, since torch functions take tensors
        values = [
            v if isinstance(v, Tensor) else torch.tensor(v, dtype=x.dtype)
            for v in (a(x, y) for a in args)
        ]
        return fn(*values)

    return call
