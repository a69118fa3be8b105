"""Stopping: every test, counter and message of a descent run, in one place.

:class:`StoppingCriteria` holds the tolerances and budgets; :class:`Tracker` applies them
to one row of a run (``minimize`` has one row, a multistart race K), keeping the counters
and the best point seen; :func:`describe` is the one status -> message table (as SciPy's
``_status_message``), so a status reads the same from every front end.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from descend.monitors.divergence import stable_lr
from descend.result import Status
from descend.validation import check_int, check_non_negative, check_positive

#: ``(status, message)``: how a row of a run ended
Outcome = tuple[Status, str]

#: stops that mean the run failed: a stochastic run restores its best state after these only
FAILED = frozenset({Status.DIVERGED, Status.LINE_SEARCH_FAILED})

XTOL_RULES = ("relative", "mean_abs")


@dataclass
class StoppingCriteria:
    r"""The tests the descent loop applies at every iterate.

    * ``gtol``: :math:`\|\nabla f(x_k)\|_p \le` gtol, with :math:`p` = ``gtol_norm`` (2 by
      default; SciPy's BFGS and CG use :math:`\infty`, the largest component). For a
      proximal rule (L1) the gradient mapping :math:`(x_{k-1} - x_k)/\eta` replaces the
      gradient, since the gradient of the smooth part does not vanish at a sparse minimum.
    * ``ftol``: :math:`|f_{k-1} - f_k| \le` ftol :math:`\cdot \max(|f_{k-1}|, |f_k|, 1)`
      for ``patience`` iterations in a row (momentum methods pause at turning points).
    * ``xtol``: ``xtol_rule="relative"``: :math:`\|x_k - x_{k-1}\|_2 \le` xtol
      :math:`\cdot \max(\|x_k\|_2, 1)`; ``"mean_abs"`` (SciPy's Newton-CG):
      :math:`\frac1n \sum_i |x_{k,i} - x_{k-1,i}| \le` xtol; also for ``patience``
      iterations in a row.
    * ``target``: :math:`f(x_k) \le` target.
    * ``max_iter`` iterations, ``max_fev`` evaluations of f, ``max_time`` seconds.
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
    gtol_norm: float = 2.0
    xtol_rule: str = "relative"
    max_fev: int | None = None

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
        if isinstance(self.gtol_norm, bool) or not (
            isinstance(self.gtol_norm, (int, float)) and self.gtol_norm >= 1
        ):
            raise ValueError(f"gtol_norm must be a number >= 1 or math.inf, got {self.gtol_norm!r}")
        if self.xtol_rule not in XTOL_RULES:
            raise ValueError(
                f"xtol_rule must be one of {', '.join(XTOL_RULES)}, got {self.xtol_rule!r}"
            )
        if self.max_fev is not None:
            check_int("max_fev", self.max_fev, low=1)

    def ftol_met(self, f_prev: float, f: float) -> bool:
        return abs(f_prev - f) <= self.ftol * max(abs(f_prev), abs(f), 1.0)

    def diverging(self, f: float, f_best: float, f0: float) -> bool:
        scale = max(abs(f_best), abs(f0 - f_best), 1e-12)
        return f - f_best > self.divergence_factor * scale


class Tracker:
    """One row's tests and counters: the best point, divergence, the point tests and the
    change tests with their patience. A front end's feed decides what it measures (the
    iterate itself, or a batch); the tests and their messages are the same for all.
    """

    def __init__(
        self, stopping: StoppingCriteria, name: str = "f", gradient: str = "gradient"
    ) -> None:
        self.stopping, self.name, self.gradient_name = stopping, name, gradient
        self.f0: float | None = None
        self.best_f, self.best_g, self.best_nit = math.inf, math.nan, 0
        self.last_f = self.last_g = math.nan
        self.f_prev: float | None = None
        self.calm_f = self.calm_x = 0

    def observe(
        self, f: float, g: float, nit: int, lr: Callable[[], float | None]
    ) -> tuple[Outcome | None, bool]:
        """Divergence and the best point; ``(outcome or None, whether f is a new best)``.
        ``lr()`` gives the rate a divergence message advises on (read only then)."""
        self.last_f, self.last_g = f, g
        if not (math.isfinite(f) and math.isfinite(g)):
            what, value = (
                (self.name, f) if not math.isfinite(f) else (f"the {self.gradient_name} norm", g)
            )
            if self.f0 is None:
                return (
                    Status.DIVERGED,
                    f"{what} is {value} at the start, before any step: check the data for NaN "
                    "or infinite values and the starting point (or the model's initialization)",
                ), False
            return (
                Status.DIVERGED,
                divergence_message(value, self.best_f, nit - self.best_nit, lr(), what),
            ), False
        if self.f0 is None:
            self.f0 = f
        if f < self.best_f:
            self.best_f, self.best_g, self.best_nit = f, g, nit
            return None, True
        if self.stopping.diverging(f, self.best_f, self.f0):
            return (
                Status.DIVERGED,
                divergence_message(f, self.best_f, nit - self.best_nit, lr(), self.name),
            ), False
        return None, False

    def target(self, f: float, what: str | None = None) -> Outcome | None:
        t = self.stopping.target
        if t is not None and f <= t:
            return Status.TARGET, describe(Status.TARGET, what=what or self.name, f=f, target=t)
        return None

    def gradient(self, g: float, nit: int) -> Outcome | None:
        """The gradient test; ``g`` is the norm ``gtol_norm`` names (or the gradient mapping's)."""
        if g <= self.stopping.gtol:
            return Status.GTOL, describe(
                Status.GTOL,
                g=g,
                gtol=self.stopping.gtol,
                nit=nit,
                norm=self.stopping.gtol_norm,
                gradient=self.gradient_name,
            )
        return None

    def change(
        self, f: float, step: float | None = None, x_scale: float = 1.0, unit: str = "iteration"
    ) -> Outcome | None:
        """ftol on f's relative change and xtol on the step (``step <= xtol x_scale``), each
        for ``patience`` consecutive calls; ``unit`` names what a call is (iteration, epoch)."""
        s = self.stopping
        if self.f_prev is not None:
            self.calm_f = self.calm_f + 1 if s.ftol > 0 and s.ftol_met(self.f_prev, f) else 0
        self.f_prev = f
        if step is not None:
            self.calm_x = self.calm_x + 1 if s.xtol > 0 and step <= s.xtol * x_scale else 0
        if self.calm_f >= s.patience:
            what = self.name if unit == "iteration" else f"the {unit} loss"
            return Status.FTOL, describe(
                Status.FTOL, what=what, ftol=s.ftol, calm=self.calm_f, unit=unit
            )
        if self.calm_x >= s.patience:
            return Status.XTOL, describe(
                Status.XTOL, step=step, xtol=s.xtol, calm=self.calm_x, unit=unit,
                rule=s.xtol_rule,
            )  # fmt: skip
        return None

    def state_dict(self) -> dict[str, Any]:
        return dict(vars(self), stopping=None)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        stopping = self.stopping
        vars(self).update(state)
        self.stopping = stopping


def describe(status: Status, **facts: Any) -> str:
    """The message for ``status``: the one table every front end's messages come from."""
    return _MESSAGES[status](facts)


def _gradient(f: dict[str, Any]) -> str:
    """What the gradient tests read: "gradient", or "projected gradient" on a set."""
    return f.get("gradient", "gradient")


def _gtol(f: dict[str, Any]) -> str:
    gradient = _gradient(f)
    norm = (
        f"{gradient} norm"
        if f["norm"] == 2
        else (
            f"largest {gradient} component"
            if math.isinf(f["norm"])
            else f"{gradient} {f['norm']:g}-norm"
        )
    )
    return f"{norm} {f['g']:.3g} <= gtol {f['gtol']:g} after {f['nit']} iterations"


def _xtol(f: dict[str, Any]) -> str:
    what = "step norm" if f["rule"] == "relative" else "mean absolute step"
    return f"{what} {f['step']:.3g} <= xtol {f['xtol']:g} for {f['calm']} {f['unit']}(s)"


def _max_iter(f: dict[str, Any]) -> str:
    if "max_fev" in f:
        return (
            f"reached max_fev = {f['max_fev']} evaluations of f after {f['nit']} iterations "
            f"({_gradient(f)} norm {f['g']:.3g}); raise max_fev (SciPy: maxfun)"
        )
    if "epochs" in f:
        return (
            f"completed {f['epochs']} epoch(s) ({f['nit']} steps); train longer (epochs, "
            "max_steps) if the loss is still falling"
        )
    if "max_steps" in f:
        return (
            f"reached max_steps = {f['max_steps']} in epoch {f['epoch']}; raise max_steps or "
            "epochs if the loss is still falling"
        )
    return (
        f"reached max_iter = {f['max_iter']} before convergence ({_gradient(f)} norm "
        f"{f['g']:.3g}, "
        f"gtol {f['gtol']:g}); raise max_iter if f is still falling"
    )


def _callback(f: dict[str, Any]) -> str:
    where = (
        f"after {f['nit']} iterations"
        if "epoch" not in f
        else (f"after {f['nit']} steps ({f['epoch']} epochs)")
    )
    reasons = f.get("reasons") or []
    return (
        "; ".join(reasons) + f"; stopped {where}"
        if reasons
        else (f"a callback stopped the run {where}")
    )


_MESSAGES = {
    Status.GTOL: _gtol,
    Status.FTOL: lambda f: (
        f"relative change of {f['what']} <= ftol {f['ftol']:g} for {f['calm']} {f['unit']}(s)"
    ),
    Status.XTOL: _xtol,
    Status.TARGET: lambda f: f"{f['what']} = {f['f']:.6g} reached the target {f['target']:g}",
    Status.MAX_ITER: _max_iter,
    Status.MAX_TIME: lambda f: (
        f"stopped at max_time = {f['max_time']:g} s after {f['nit']} iterations "
        f"({_gradient(f)} norm {f['g']:.3g})"
    ),
    Status.CALLBACK: _callback,
    Status.EARLY_STOPPING: _callback,
    Status.DIVERGED: lambda f: divergence_message(
        f["value"], f["best"], f["steps"], f.get("lr"), f.get("what", "f")
    ),
    Status.LINE_SEARCH_FAILED: lambda f: f["message"],
    Status.RUNNING: lambda f: "running",
}


def divergence_message(
    f: float, f_best: float, steps: int, lr: float | None, what: str = "f"
) -> str:
    """Plain-English account of a blow-up, with a learning rate to try when there is one.

    f above its best grows like :math:`\\rho^{2k}` on a quadratic, so a blow-up by a factor
    G over k steps gives :math:`\\rho = G^{1/(2k)}`, and the rate suggested is
    :func:`descend.monitors.divergence.stable_lr`, the one formula the divergence monitor
    uses too.
    """
    steps = max(steps, 1)
    if math.isfinite(f):
        growth = abs(f - f_best) / max(abs(f_best), 1e-300)
        head = f"{what} rose {growth:.0e}x in {steps} steps (from {f_best:.4g} to {f:.4g})"
        rho = growth ** (1.0 / (2 * steps)) if growth > 0 else math.nan
    else:
        head = f"{what} became {f} after {steps} steps from the best point (f = {f_best:.4g})"
        rho = math.nan
    if lr is None or not lr > 0:
        return head + "; the method is unstable on this problem."
    return head + f": learning rate {lr:g} is too large; try {stable_lr(lr, rho):g}."
