"""What the playground's API sends: arrays, numbers and diagnoses as JSON values.

JSON has no NaN or infinity, so a value that is not finite goes as ``null`` (the page
draws a gap there); a diagnosis goes as its kind, severity, step, message and suggestion.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["diagnoses_json", "finite", "finite_lists"]


def finite_lists(values: Any) -> list[Any]:
    """An array as (nested) lists of floats, None where not finite."""
    array = np.asarray(values, dtype=np.float64)
    out = array.astype(object)
    out[~np.isfinite(array)] = None
    return out.tolist()


def finite(value: float) -> float | None:
    """A float, or None where it is not finite."""
    return value if math.isfinite(value) else None


def diagnoses_json(diagnoses: Iterable[Any]) -> list[dict[str, Any]]:
    """The health monitors' findings, in words."""
    return [
        {
            "kind": d.kind,
            "severity": str(d.severity),
            "step": d.step,
            "message": d.message,
            "suggestion": d.suggestion,
        }
        for d in diagnoses
    ]
