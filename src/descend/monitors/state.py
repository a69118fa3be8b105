"""A monitor's state as plain values: what a checkpoint read back with
``torch.load(weights_only=True)`` can hold (numbers, strings, None, tensors, and lists,
tuples and dicts of them).

Three richer values occur in the monitors' state and are written as one-key dicts: a
:class:`Diagnosis` (``{"diagnosis": fields}``), a Lanczos :class:`Spectrum`
(``{"spectrum": (values, vectors, iterations)}``) and a bounded ``deque``
(``{"deque": (items, maxlen)}``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict
from typing import Any

import torch

from descend.monitors.curvature import Spectrum
from descend.monitors.diagnosis import Diagnosis, Severity

_TAGS = ("diagnosis", "spectrum", "deque")


def as_plain(value: Any) -> Any:
    """``value`` with every Diagnosis, Spectrum and deque in it written as plain values."""
    if isinstance(value, Diagnosis):
        fields = asdict(value)
        fields["severity"] = value.severity.value
        return {"diagnosis": fields}
    if isinstance(value, Spectrum):
        return {"spectrum": (value.values, value.vectors, value.iterations)}
    if isinstance(value, deque):
        return {"deque": ([as_plain(v) for v in value], value.maxlen)}
    if isinstance(value, (list, tuple)):
        return type(value)(as_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: as_plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    raise TypeError(f"a monitor's state cannot hold a {type(value).__name__}")


def from_plain(value: Any, device: torch.device | None = None) -> Any:
    """The inverse of :func:`as_plain`; tensors go to ``device`` (the run's) when given."""
    if isinstance(value, torch.Tensor):
        return value if device is None else value.to(device)
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in _TAGS:
            ((tag, inner),) = value.items()
            if tag == "diagnosis":
                return Diagnosis(**{**inner, "severity": Severity(inner["severity"])})
            if tag == "spectrum":
                values, vectors, iterations = inner
                return Spectrum(values, from_plain(vectors, device), iterations)
            items, maxlen = inner
            return deque((from_plain(v, device) for v in items), maxlen=maxlen)
        return {k: from_plain(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(from_plain(v, device) for v in value)
    return value
