"""Reading the command line's free-form values: starts, option pairs and method lists.

Each reader raises ``ValueError`` with a one-line message that names the flag, quotes what
the user typed and shows the form that works; the app turns it into ``error: ...`` and
exit status 2.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from descend.validation import nearest

if TYPE_CHECKING:  # the methods hold torch classes: imported by the readers that need them
    from descend.methods import Method

__all__ = ["parse_methods", "parse_options", "parse_value", "parse_x0"]


def parse_x0(text: str, dim: int, problem: str = "the problem") -> list[float]:
    """``"-1.2, 1"`` -> ``[-1.2, 1.0]``, checked to have ``dim`` finite numbers.

    Args:
        text: comma-separated numbers (spaces allowed).
        dim: the problem's dimension, an integer >= 1.
        problem: the problem's name, for the message.

    Example:
        >>> parse_x0("-1.2,1", 2)
        [-1.2, 1.0]
    """
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(p == "" for p in parts):
        raise ValueError(
            f"--x0 {text!r} is malformed; give {dim} comma-separated numbers, "
            f"e.g. --x0 {','.join(['0'] * dim)}"
        )
    values = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise ValueError(
                f"--x0: {part!r} in {text!r} is not a number; give {dim} comma-separated "
                f"numbers, e.g. --x0 {','.join(['0'] * dim)}"
            ) from None
        if not math.isfinite(value):
            raise ValueError(f"--x0: {part!r} in {text!r} is not finite; give finite numbers")
        values.append(value)
    if len(values) != dim:
        raise ValueError(
            f"--x0 has {len(values)} number(s) but {problem} has dimension {dim}; "
            f"give {dim} comma-separated numbers"
        )
    return values


def parse_value(text: str) -> Any:
    """An option value: ``true``/``false`` -> bool, ``none`` -> None, integers, floats, and
    comma-separated lists of those -> tuple (``betas=0.9,0.999``); anything else stays a
    string.

    Example:
        >>> parse_value("0.9,0.999")
        (0.9, 0.999)
    """
    text = text.strip()
    if "," in text:
        return tuple(parse_value(p) for p in text.split(","))
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_options(pairs: Iterable[str]) -> dict[str, Any]:
    """``["momentum=0.5", "nesterov=true"]`` -> ``{"momentum": 0.5, "nesterov": True}``.

    Each pair is ``key=value`` with a Python-identifier key; a key given twice is refused.

    Example:
        >>> parse_options(["betas=0.9,0.99"])
        {'betas': (0.9, 0.99)}
    """
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier() or not value.strip():
            raise ValueError(
                f"--option {pair!r} is malformed; write key=value, e.g. --option momentum=0.5"
            )
        if key in options:
            raise ValueError(f"--option {key} is given twice; give each option once")
        options[key] = parse_value(value)
    return options


def find_method(name: str) -> Method:
    """The method called ``name``; an unknown name suggests the closest and lists all."""
    from descend.methods import METHODS

    key = name.strip().lower().replace("_", "-")
    if key in METHODS:
        return METHODS[key]
    close = nearest(key, METHODS)
    hint = f"; did you mean {close!r}?" if close else ";"
    raise ValueError(f"unknown method {name!r}{hint} valid methods: {', '.join(METHODS)}")


def parse_methods(text: str) -> list[Method]:
    """``"gd, adam"`` -> the two methods, in order; empty items and repeats are refused.

    Example:
        >>> [m.name for m in parse_methods("gd,adam")]
        ['gd', 'adam']
    """
    names = [p.strip() for p in text.split(",")]
    if not text.strip() or any(n == "" for n in names):
        raise ValueError(
            f"--methods {text!r} is malformed; give comma-separated method names, "
            f"e.g. --methods gd,momentum,adam"
        )
    methods = [find_method(n) for n in names]
    seen: set[str] = set()
    for method in methods:
        if method.name in seen:
            raise ValueError(f"--methods names {method.name!r} twice; give each method once")
        seen.add(method.name)
    return methods


def format_vector(values: Sequence[float], limit: int = 6, digits: int = 6) -> str:
    """``(1, 2.5)`` -> ``"(1, 2.5)"``; long vectors keep their ends: ``(1, 2, 3, …, 10)``."""
    shown = [f"{float(v):.{digits}g}" for v in values]
    if len(shown) > limit:
        shown = [*shown[: limit - 1], "…", shown[-1]]
    return "(" + ", ".join(shown) + ")"
