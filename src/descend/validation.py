"""Checks at the public boundary: each names the argument, the bad value and what is allowed."""

from __future__ import annotations

import difflib
import math
from typing import Any


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_number(
    name: str,
    value: Any,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a float if it is a finite real in the interval, else raise ValueError.

    The interval is ``[low, high]``; ``low_open``/``high_open`` exclude an end. NaN and
    infinities are refused (a "no limit" setting is spelled ``None`` in descend).
    """
    if hasattr(value, "item") and getattr(value, "numel", lambda: 1)() == 1:
        value = value.item()
    if not _is_real(value):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if not math.isfinite(value) or below or above:
        left = "(" if low_open or math.isinf(low) else "["
        right = ")" if high_open or math.isinf(high) else "]"
        raise ValueError(f"{name} must be in {left}{_fmt(low)}, {_fmt(high)}{right}, got {value!r}")
    return value


def check_positive(name: str, value: Any) -> float:
    """A real number > 0."""
    return check_number(name, value, low=0.0, low_open=True)


def check_non_negative(name: str, value: Any) -> float:
    """A real number >= 0."""
    return check_number(name, value, low=0.0)


def check_unit_interval(name: str, value: Any) -> float:
    """A real number in [0, 1), as for a decay rate such as a beta."""
    return check_number(name, value, low=0.0, high=1.0, high_open=True)


def check_int(name: str, value: Any, *, low: int = 0) -> int:
    """An integer >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise TypeError(f"{name} must be an integer >= {low}, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value}")
    return value


def check_choice(name: str, value: Any, choices: Any) -> Any:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        listed = ", ".join(repr(c) if not isinstance(c, str) else c for c in choices)
        raise ValueError(f"unknown {name} {value!r}; valid choices: {listed}")
    return value


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:g}"


def nearest(name: str, choices: Any) -> str | None:
    """The valid name a misspelled ``name`` most likely meant, or None.

    Ranked by the optimal-string-alignment distance (insertions, deletions, substitutions
    and swaps of two neighbours, one edit each: ``adma`` is one edit from ``adam``, three
    from ``adamax``), ties broken by :class:`difflib.SequenceMatcher`'s ratio. A choice
    qualifies within a third of the name's length in edits (at least 2), or with a ratio of
    0.6 (a missing word: ``initial_radius`` for ``initial_trust_radius``).
    """
    name = str(name)
    best: tuple[int, float, str] | None = None
    for choice in choices:
        choice = str(choice)
        if choice == name:
            continue
        edits = _edits(name, choice)
        ratio = difflib.SequenceMatcher(None, name, choice).ratio()
        if edits > max(2, len(name) // 3) and ratio < 0.6:
            continue
        key = (edits, -ratio, choice)
        if best is None or key < best:
            best = key
    return None if best is None else best[2]


def _edits(a: str, b: str) -> int:
    """Optimal string alignment distance between ``a`` and ``b``."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def check_device(value: Any) -> Any:
    """``value`` as a ``torch.device`` that exists on this machine (``device=`` arguments)."""
    import torch  # the one check here that needs torch

    try:
        device = torch.device(value)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={value!r} is not a torch device: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} but CUDA is not available here; use 'cpu'")
    return device

