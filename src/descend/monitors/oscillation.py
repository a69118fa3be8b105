"""Oscillation: successive steps pointing against each other."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import torch
from torch.linalg import vector_norm

from descend.monitors.diagnosis import Diagnosis, Severity, round_down
from descend.monitors.monitor import Monitor, flat
from descend.validation import check_int, check_number


class OscillationMonitor(Monitor):
    r"""Reports a run whose successive steps flip direction, step after step.

    For steps :math:`s_k = x_k - x_{k-1}` it measures
    :math:`\cos\theta_k = s_{k-1}\cdot s_k / (\|s_{k-1}\|\,\|s_k\|)`. Gradient descent on a
    quadratic with :math:`1/L < \eta` zig-zags across the sharpest direction with
    :math:`\cos\theta \approx -1` and step ratio :math:`q = \|s_k\|/\|s_{k-1}\| =
    |1 - \eta L|` (growing when :math:`\eta > 2/L`). The monitor reports when at least
    ``min_fraction`` of the last ``window`` measured pairs have
    :math:`\cos\theta <` ``cos_threshold``, and suggests :math:`\eta/(1+q) \approx 1/L`,
    the rate that damps the zig-zag in one step.

    Cost: it measures every step for the first ``warmup`` steps (where unstable settings
    show themselves), then one pair of steps every ``every`` steps: two parameter copies,
    held only while a pair is measured, and one host synchronization per ``every`` steps.

    Args:
        every: interval between measured pairs after the warm-up, an integer >= 3.
        warmup: steps measured densely at the start, an integer >= 0.
        cos_threshold: what counts as a flip, in [-1, 0).
        window: measured pairs the decision looks at, an integer >= 2.
        min_fraction: share of flips in the window needed to report, in (0, 1].

    Example:
        >>> res = descend.minimize(lambda x: (x**2).sum(), [1.0, 1.0], "gd", lr=0.9)
        >>> [d.kind for d in res.diagnoses]
        ['oscillation']
    """

    kinds = ("oscillation",)
    state = (
        "snap",
        "snap_step",
        "step_vec",
        "step_end",
        "pending",
        "log",
        "max_step",
        "pairs",
    )

    def __init__(
        self,
        *,
        every: int = 100,
        warmup: int = 10,
        cos_threshold: float = -0.5,
        window: int = 6,
        min_fraction: float = 0.8,
    ) -> None:
        super().__init__(every=check_int("every", every, low=3))
        self.warmup = check_int("warmup", warmup, low=0)
        self.cos_threshold = check_number(
            "cos_threshold", cos_threshold, low=-1.0, high=0.0, high_open=True
        )
        self.window = check_int("window", window, low=2)
        self.min_fraction = check_number(
            "min_fraction", min_fraction, low=0.0, high=1.0, low_open=True
        )

    def begin(self, result: Any) -> None:
        self.snap: torch.Tensor | None = None
        self.snap_step = -10
        self.step_vec: torch.Tensor | None = None
        self.step_end = -10
        self.pending: list[tuple[int, torch.Tensor]] = []
        self.log: deque[tuple[int, float, float]] = deque(maxlen=self.window)
        self.max_step = 0.0
        self.pairs = 0

    def _wanted(self, nit: int) -> bool:
        return nit <= self.warmup or nit % self.every in (self.every - 2, self.every - 1, 0)

    def watch(self, nit: int) -> int:
        if self._wanted(nit):
            self._probe(nit)
        return self._next_wanted(nit)

    def _next_wanted(self, nit: int) -> int:
        nxt = nit + 1
        if nxt <= self.warmup or nxt % self.every in (self.every - 1, 0):
            return nxt
        return self.next_multiple(nit) - 2  # the first snapshot of the next pair

    def _probe(self, nit: int) -> None:
        params = self.params()
        if not params:
            return
        x = flat(params)
        if self.snap is not None and self.snap_step == nit - 1:
            s = x - self.snap
            if self.step_vec is not None and self.step_end == nit - 1:
                a = self.step_vec
                pair = torch.stack([torch.dot(a, s), vector_norm(a), vector_norm(s)])
                self.pending.append((nit, pair))
            self.step_vec, self.step_end = s, nit
        self.snap = x.clone() if len(params) == 1 else x
        self.snap_step = nit
        if nit > self.warmup and nit % self.every == 0:
            self.snap = self.step_vec = None  # hold no copies between pairs
        if self.pending and (nit % self.every == 0 or nit == self.warmup):
            self._evaluate(nit)

    def finish(self, result: Any) -> None:
        if self.pending:
            self._evaluate(result.nit)

    def _evaluate(self, nit: int) -> None:
        steps = [step for step, _ in self.pending]
        values = torch.stack([v for _, v in self.pending]).double()
        self.pending = []
        rows = values.tolist()
        for step, (dot, na, nb) in zip(steps, rows):
            self.max_step = max(self.max_step, na, nb)
            if not (na > 1e-12 * self.max_step and nb > 1e-12 * self.max_step):
                continue  # steps at round-off level: their directions mean nothing
            if not all(math.isfinite(v) for v in (dot, na, nb)):
                continue
            self.log.append((step, dot / (na * nb), nb / na))
            self.pairs += 1
        if len(self.log) < self.window:
            return
        flips = [(s, c, q) for s, c, q in self.log if c < self.cos_threshold]
        if len(flips) < self.min_fraction * len(self.log):
            return
        self._report(flips)

    def _report(self, flips: list[tuple[int, float, float]]) -> None:
        mean_cos = sum(c for _, c, _ in flips) / len(flips)
        q = math.exp(sum(math.log(max(r, 1e-300)) for _, _, r in flips) / len(flips))
        lr = self.lr()
        evidence: dict[str, float] = {
            "flipped_pairs": len(flips),
            "measured_pairs": len(self.log),
            "mean_cos": mean_cos,
            "step_ratio": q,
            "first_step": self.log[0][0],
        }
        growing = q > 1.0
        message = (
            f"successive steps point against each other (cos = {mean_cos:.2f} on average over "
            f"{len(flips)} of the last {len(self.log)} measured pairs, steps {self.log[0][0]}"
            f"-{self.log[-1][0]}); the step length "
            + (
                f"grows {q:.3g}x per step: the zig-zag is unstable"
                if growing
                else f"shrinks only to {q:.3g}x per step"
            )
        )
        suggested: dict[str, float] = {}
        momentum = self._momentum()
        if math.isfinite(lr) and lr > 0:
            evidence["lr"] = lr
            new_lr = round_down(lr / (1.0 + q))
            suggested["lr"] = new_lr
            suggestion = (
                f"lower the learning rate from {lr:g} to about {new_lr:g} (the sharpest "
                f"curvature is about {(1 + q) / lr:.3g} = (1 + q)/lr)"
            )
        else:
            suggestion = "use a method with a line search (lbfgs, bfgs)"
        if momentum > 0:
            evidence["momentum"] = momentum
            suggestion += f", or lower the momentum ({momentum:g})"
        suggestion += "; a line search (lbfgs) or an adaptive method (adam) also damps zig-zags"
        self.report(
            Diagnosis(
                kind="oscillation",
                severity=Severity.ERROR if growing else Severity.WARNING,
                step=flips[-1][0],
                message=message,
                evidence=evidence,
                suggestion=suggestion,
                suggested=suggested,
            )
        )

    def _momentum(self) -> float:
        if self.optimizer is None:
            return 0.0
        group = self.optimizer.param_groups[0]
        momentum = group.get("momentum")
        if isinstance(momentum, (int, float)):
            return float(momentum)
        return 0.0
