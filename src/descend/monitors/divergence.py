"""Divergence: the loss or the gradient blowing up."""

from __future__ import annotations

import math
from typing import Any

from descend.monitors.diagnosis import Diagnosis, Severity, round_down
from descend.monitors.monitor import Monitor
from descend.result import Status
from descend.validation import check_int, check_number


class DivergenceMonitor(Monitor):
    r"""Reports a loss or gradient blow-up, with the learning rate that would be stable.

    Reads only the history. A blow-up is any of:

    * f or the gradient norm not finite;
    * f above its best value by more than ``loss_growth`` times the scale of the problem
      (:math:`\max(|f_\text{best}|, f_0 - f_\text{best})`), and rising for ``rising``
      recorded steps in a row;
    * the gradient norm above ``grad_growth`` times its value at the start, rising for
      ``rising`` steps in a row;
    * the run ended with status ``diverged``.

    The suggested rate comes from the growth rate: on a quadratic, gradient descent
    multiplies the error along the sharpest direction by :math:`\rho = |1 - \eta L|` per
    step, so f above its best grows like :math:`\rho^{2k}`. Measuring
    :math:`\rho = (\Delta f_k / \Delta f_{k-j})^{1/(2j)}` gives :math:`L = (1+\rho)/\eta`,
    and :math:`1/L = \eta/(1+\rho)` is the rate suggested (rounded down).

    Args:
        every: check interval in steps, >= 1.
        loss_growth: how many scales above its best f must climb, > 0.
        grad_growth: how many times its starting value the gradient norm must reach, > 1.
        rising: consecutive rising steps required, an integer >= 1.

    Example:
        >>> res = descend.minimize(lambda x: (x**2).sum(), [1.0], "gd", lr=1.5)
        >>> res.diagnoses[0].kind
        'divergence'
    """

    kinds = ("divergence",)

    def __init__(
        self,
        *,
        every: int = 50,
        loss_growth: float = 100.0,
        grad_growth: float = 1e3,
        rising: int = 3,
    ) -> None:
        super().__init__(every=every)
        self.loss_growth = check_number("loss_growth", loss_growth, low=0.0, low_open=True)
        self.grad_growth = check_number("grad_growth", grad_growth, low=1.0, low_open=True)
        self.rising = check_int("rising", rising, low=1)

    def begin(self, result: Any) -> None:
        self.seen = 0  # history rows already read
        self.f0 = self.g0 = math.nan
        self.f_best = math.inf
        self.best_row = 0
        self.f_last = self.g_last = math.nan
        self.f_rises = self.g_rises = 0  # consecutive rows in which f, g rose

    def watch(self, nit: int) -> int:
        self._scan(nit)
        return self.next_multiple(nit)

    def finish(self, result: Any) -> None:
        self._scan(result.nit)
        if "divergence" not in self.found and result.status == Status.DIVERGED:
            self._report(result.nit, _finite_max(self._tail("f")), "the loop", result.message)

    # ---------------------------------------------------------------------------------

    def _tail(self, column: str) -> list[float]:
        return self.view.column(column, -(self.rising + 6))

    def _scan(self, nit: int) -> None:
        view = self.view
        if len(view) <= self.seen:
            return
        first = self.seen
        rows = view.rows(first)
        self.seen = len(view)
        i_f, i_g = view.index["f"], view.index["grad_norm"]
        if math.isnan(self.f0):
            self.f0, self.g0 = float(rows[0][i_f]), float(rows[0][i_g])
        f_last, g_last = self.f_last, self.g_last
        f_rises, g_rises = self.f_rises, self.g_rises
        for i, row in enumerate(rows):
            f, g = float(row[i_f]), float(row[i_g])
            if not (math.isfinite(f) and math.isfinite(g)):
                what = "f" if not math.isfinite(f) else "the gradient norm"
                self._report(first + i, f if what == "f" else g, what)
                return
            if f < self.f_best:
                self.f_best, self.best_row = f, first + i
            f_rises = f_rises + 1 if f > f_last else 0
            g_rises = g_rises + 1 if g > g_last else 0
            f_last, g_last = f, g
        self.f_last, self.g_last, self.f_rises, self.g_rises = f_last, g_last, f_rises, g_rises
        scale = max(abs(self.f_best), self.f0 - self.f_best, 1e-12)
        if f_rises >= self.rising and f_last - self.f_best > self.loss_growth * scale:
            self._report(nit, f_last, "f")
        elif g_rises >= self.rising and self.g0 > 0 and g_last > self.grad_growth * self.g0:
            self._report(nit, g_last, "the gradient norm")

    def _report(self, step: int, value: float, what: str, loop_message: str = "") -> None:
        lr = self.lr()
        f_tail = [f for f in self._tail("f") if math.isfinite(f)]
        g_tail = [g for g in self._tail("grad_norm") if math.isfinite(g)]
        rho = _growth_rate([f - self.f_best for f in f_tail])
        if not math.isfinite(rho):
            rho = _growth_rate([g * g for g in g_tail])
        evidence: dict[str, float] = {
            "f_best": self.f_best,
            "best_step": self.best_row,
            "f_start": self.f0,
            "grad_norm_start": self.g0,
        }
        if math.isfinite(value):
            key = "f_now" if what == "f" else "grad_norm_now"
            evidence[key] = value
            if what == "f":
                evidence["growth"] = (value - self.f_best) / max(abs(self.f_best), 1e-300)
            elif self.g0 > 0:
                evidence["growth"] = value / self.g0
        if math.isfinite(rho):
            evidence["growth_per_step"] = rho
        if math.isfinite(lr):
            evidence["lr"] = lr
        steps = max(step - self.best_row, 1)
        if what == "the loop":
            message = f"the run diverged: {loop_message}"
        elif math.isfinite(value):
            message = (
                f"{what} blew up to {value:.4g} within {steps} steps of the best point "
                f"(f_best = {self.f_best:.4g})"
            )
        else:
            message = f"{what} became {value} {steps} steps after the best point"
        suggested: dict[str, float] = {}
        if math.isfinite(lr) and lr > 0:
            new_lr = stable_lr(lr, rho)
            suggested["lr"] = new_lr
            suggestion = (
                f"lower the learning rate from {lr:g} to about {new_lr:g} (the error grows "
                f"{rho:.3g}x per step, so the sharpest curvature is about "
                f"{(1 + rho) / lr:.3g})"
                if math.isfinite(rho) and rho > 1.0
                else f"lower the learning rate from {lr:g} to about {new_lr:g}"
            ) + "; or clip gradients, or use a line-search method (bfgs, lbfgs)"
        else:
            suggestion = (
                "use a method with a line search or trust region (lbfgs, trust-region), "
                "or start closer to a minimum"
            )
        self.report(
            Diagnosis(
                kind="divergence",
                severity=Severity.ERROR,
                step=step,
                message=message,
                evidence=evidence,
                suggestion=suggestion,
                suggested=suggested,
            )
        )


def stable_lr(lr: float, rho: float) -> float:
    r"""The learning rate to suggest after a blow-up whose error grew :math:`\rho` times per
    step at rate ``lr``: on a quadratic, gradient descent multiplies the error along the
    sharpest direction by :math:`\rho = |1 - \eta L|`, so :math:`L = (1 + \rho)/\eta` and
    :math:`1/L = \eta / (1 + \rho)` is the largest stable rate (rounded down). Without a
    measured :math:`\rho > 1`, a tenth of ``lr``. The one formula of every such advice.
    """
    factor = 1.0 + rho if math.isfinite(rho) and rho > 1.0 else 10.0
    return round_down(lr / factor)


def _growth_rate(excess: list[float]) -> float:
    r"""Per-step factor :math:`\rho` of the geometric rise (:math:`\propto\rho^{2k}`) ending
    ``excess``."""
    values = [e for e in excess if e > 0 and math.isfinite(e)]
    start = len(values) - 1
    while start > 0 and values[start - 1] < values[start]:
        start -= 1  # the rising run at the end: the blow-up itself
    j = len(values) - 1 - start
    if j < 1:
        return math.nan
    return (values[-1] / values[start]) ** (1.0 / (2 * j))


def _finite_max(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return max(finite) if finite else math.nan
