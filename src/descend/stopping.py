"""Stopping criteria: when a descent run ends, why, and what to tell its user."""

from __future__ import annotations

import math
from dataclasses import dataclass

from descend.result import Status
from descend.validation import check_int, check_non_negative, check_positive


@dataclass
class StoppingCriteria:
    r"""The tests the descent loop applies after every iteration.

    * ``gtol``: :math:`\|\nabla f(x_k)\|_2 \le` gtol.
    * ``ftol``: :math:`|f_{k-1} - f_k| \le` ftol :math:`\cdot \max(|f_{k-1}|, |f_k|, 1)`
      for ``patience`` iterations in a row (momentum methods pause at turning points).
    * ``xtol``: :math:`\|x_k - x_{k-1}\|_2 \le` xtol :math:`\cdot \max(\|x_k\|_2, 1)`,
      also for ``patience`` iterations in a row.
    * ``target``: :math:`f(x_k) \le` target.
    * ``max_iter`` iterations, ``max_time`` seconds.
    * divergence: f or the gradient not finite, or f above the best f seen by
      ``divergence_factor`` times the scale of the problem
      (:math:`\max(|f_\text{best}|, |f_0 - f_\text{best}|)`).

    A tolerance of 0 switches its test off.
    """

    max_iter: int = 1000
    gtol: float = 1e-5
    ftol: float = 2.2e-9
    xtol: float = 0.0
    max_time: float | None = None
    target: float | None = None
    patience: int = 1
    divergence_factor: float = 1e6

    def __post_init__(self) -> None:
        check_int("max_iter", self.max_iter, low=0)
        check_non_negative("gtol", self.gtol)
        check_non_negative("ftol", self.ftol)
        check_non_negative("xtol", self.xtol)
        if self.max_time is not None:
            check_positive("max_time", self.max_time)
        if self.target is not None and (
            isinstance(self.target, bool)
            or not isinstance(self.target, (int, float))
            or math.isnan(self.target)
        ):
            raise ValueError(f"target must be a real number or None, got {self.target!r}")
        check_int("patience", self.patience, low=1)
        check_positive("divergence_factor", self.divergence_factor)

    # -- tests on the current point -----------------------------------------------------

    def at_point(self, f: float, grad_norm: float, nit: int) -> tuple[Status, str] | None:
        """Tests that hold at a single point: target and gradient norm."""
        if self.target is not None and f <= self.target:
            return Status.TARGET, f"f = {f:.6g} reached the target {self.target:g}"
        if grad_norm <= self.gtol:
            return (
                Status.GTOL,
                f"gradient norm {grad_norm:.3g} <= gtol {self.gtol:g} after {nit} iterations",
            )
        return None

    def ftol_met(self, f_prev: float, f: float) -> bool:
        return abs(f_prev - f) <= self.ftol * max(abs(f_prev), abs(f), 1.0)

    def xtol_met(self, step_norm: float, x_norm: float) -> bool:
        return step_norm <= self.xtol * max(x_norm, 1.0)

    def diverging(self, f: float, f_best: float, f0: float) -> bool:
        scale = max(abs(f_best), abs(f0 - f_best), 1e-12)
        return f - f_best > self.divergence_factor * scale


def divergence_message(
    f: float, f_best: float, steps: int, lr: float | None, what: str = "f"
) -> str:
    """Plain-English account of a blow-up, with a learning rate to try when there is one.

    On a quadratic, gradient descent multiplies the error by :math:`\\rho = |1 - \\eta L|`
    per step and f by :math:`\\rho^2`; a blow-up of f by a factor G over k steps gives
    :math:`\\rho \\approx G^{1/(2k)}`, so :math:`L \\approx (1 + \\rho)/\\eta` and the rate
    :math:`\\eta/(1+\\rho) \\approx 1/L` is the largest safe choice.
    """
    steps = max(steps, 1)
    if math.isfinite(f):
        growth = abs(f - f_best) / max(abs(f_best), 1e-300)
        head = f"{what} rose {growth:.0e}x in {steps} steps (from {f_best:.4g} to {f:.4g})"
        rho = max(growth ** (1.0 / (2 * steps)), 1.0) if growth > 0 else 1.0
    else:
        head = f"{what} became {f} after {steps} steps from the best point (f = {f_best:.4g})"
        rho = 9.0
    if lr is None or lr <= 0:
        return head + "; the method is unstable on this problem."
    suggestion = _round_down(lr / (1.0 + rho))
    return head + f": learning rate {lr:g} is too large; try {suggestion:g}."


def max_iter_message(max_iter: int, grad_norm: float, gtol: float) -> str:
    return (
        f"reached max_iter = {max_iter} before convergence (gradient norm {grad_norm:.3g}, "
        f"gtol {gtol:g}); raise max_iter, or the learning rate if f is still falling slowly."
    )


def _round_down(x: float) -> float:
    """Round down to one significant figure: 0.0734 -> 0.07."""
    if x <= 0 or not math.isfinite(x):
        return x
    exponent = math.floor(math.log10(x))
    return math.floor(x / 10**exponent * (1 + 1e-9)) * 10**exponent
