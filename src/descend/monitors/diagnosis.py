"""What a health monitor found: a structured :class:`Diagnosis`, and plain-text reports.

A diagnosis names one challenge of gradient descent (divergence, oscillation, a plateau, a
saddle point, ...), says when it was seen, backs the claim with numbers, and suggests a
fix. Runs collect them on ``result.diagnoses``, one per kind.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from enum import Enum
from typing import IO, Any

from descend.notebook import diagnoses_table


class Severity(str, Enum):
    """How much a finding matters.

    ``info``: worth knowing, the run is fine. ``warning``: the run is slower or less
    accurate than it could be. ``error``: the run failed or its answer is wrong (it
    diverged, or "converged" to a saddle point).
    """

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Diagnosis:
    """One finding of a health monitor.

    Attributes:
        kind: what was found (``"divergence"``, ``"oscillation"``, ``"lr_too_small"``,
            ``"plateau"``, ``"saddle"``, ``"vanishing_gradients"``,
            ``"exploding_gradients"``, ``"dead_relu"``, ``"gradient_noise"``).
        severity: :class:`Severity`.
        step: the iteration (optimizer step) at which it was seen.
        message: what was seen, in one or two plain sentences with the key numbers.
        evidence: the numbers behind the claim, by name (all plain floats or ints).
        suggestion: what to change, as concretely as the numbers allow.
        suggested: the suggested settings as numbers, by name (``{"lr": 0.003}``,
            ``{"batch_size": 512}``), for programs that act on a diagnosis.

    Example:
        >>> res = descend.minimize(lambda x: (x**2).sum(), [1.0], "gd", lr=1.5)
        >>> res.diagnoses[0].kind, res.diagnoses[0].suggested
        ('divergence', {'lr': 0.4})
    """

    kind: str
    severity: Severity
    step: int
    message: str
    evidence: dict[str, float] = field(default_factory=dict)
    suggestion: str = ""
    suggested: dict[str, float] = field(default_factory=dict)

    def _repr_html_(self) -> str:
        """A one-row table in a notebook (severity, kind, step, what was seen, fix)."""
        return diagnoses_table([self])

    def __str__(self) -> str:
        lines = [f"[{self.severity}] {self.kind} (step {self.step}): {self.message}"]
        if self.evidence:
            lines.append(
                "    evidence: "
                + ", ".join(f"{name} = {_number(value)}" for name, value in self.evidence.items())
            )
        if self.suggestion:
            lines.append(f"    fix: {self.suggestion}")
        return "\n".join(lines)


def format_diagnoses(diagnoses: Any) -> str:
    """The diagnoses of a run as plain text, most severe first, one block per finding.

    Args:
        diagnoses: a list of :class:`Diagnosis`, or a result with a ``diagnoses`` list.

    Example:
        >>> res = descend.minimize(lambda x: (x**2).sum(), [1.0], "gd", lr=1.5)
        >>> print(format_diagnoses(res))
        [error] divergence (step 10): f blew up to 1.049e+06 within 10 steps of the best ...
    """
    items = _as_list(diagnoses)
    if not items:
        return "no problems found"
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    ranked = sorted(items, key=lambda d: (order.get(d.severity, 3), d.step))
    return "\n".join(str(d) for d in ranked)


def print_diagnoses(diagnoses: Any, file: IO[str] | None = None) -> None:
    """Print :func:`format_diagnoses` to ``file`` (default: standard output).

    Example:
        >>> print_diagnoses(descend.minimize(lambda x: (x**2).sum(), [1.0], "gd", lr=1.5))
    """
    print(format_diagnoses(diagnoses), file=file or sys.stdout)


def _as_list(diagnoses: Any) -> list[Diagnosis]:
    if diagnoses is None:
        return []
    if isinstance(diagnoses, Diagnosis):
        return [diagnoses]
    # a result (an iterable mapping itself) with its diagnoses, not a list of diagnoses
    if hasattr(diagnoses, "diagnoses") and not isinstance(diagnoses, (list, tuple)):
        return list(diagnoses.diagnoses or [])
    items = list(diagnoses)
    for item in items:
        if not isinstance(item, Diagnosis):
            raise TypeError(
                f"diagnoses must be Diagnosis objects or a result with .diagnoses, "
                f"got an item of type {type(item).__name__}"
            )
    return items


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.3g}"


def round_down(x: float) -> float:
    """``x`` rounded down to one significant figure (0.0734 -> 0.07), for suggested settings
    (the nearest float to the decimal, so it prints as typed: 0.0006, not 0.00060000001)."""
    if not (x > 0 and math.isfinite(x)):
        return x
    exponent = math.floor(math.log10(x))
    digit = math.floor(x / 10.0**exponent * (1 + 1e-9))
    if digit >= 10:  # log10 rounded just below a power of ten
        digit, exponent = 1, exponent + 1
    return float(f"{digit}e{exponent}")
