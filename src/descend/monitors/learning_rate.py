"""A learning rate too small: steps far shorter than the gradient and curvature allow."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.linalg import vector_norm

from descend.monitors.curvature import hessian_spectrum
from descend.monitors.diagnosis import Diagnosis, Severity, round_down
from descend.monitors.monitor import Monitor, flat, grads_of
from descend.validation import check_int, check_number

_EPS = 2.2e-16


class SmallLearningRateMonitor(Monitor):
    r"""Reports steps far shorter than the local model of f says they could be.

    Every ``every`` steps it compares one step's actual decrease with the first-order
    prediction :math:`p = -g\cdot s` (for gradient descent :math:`\eta\|g\|^2`).
    Along the step, :math:`f(x + t s) \approx f(x) - t p + \tfrac12 t^2 c`, so the ratio
    :math:`r = (f(x) - f(x + s))/p = 1 - c/(2p)` measures the curvature c seen by the step,
    and the best multiple of the step is :math:`t^* = p/c = 1/(2(1 - r))`. :math:`r
    \approx 1` means the step never left the linear regime.

    A long step along a flat direction is not proof enough: in a narrow valley the
    steps follow the flat floor while a sharp wall bounds the rate. So when
    :math:`|1 - r| \le 1/(2\,\text{headroom})` and f falls by less than ``progress``
    (relative) per step at ``patience`` checks in a row, the monitor confirms with the
    sharpest curvature :math:`\lambda_\max` (Lanczos on exact Hessian-vector products):
    with the effective rate :math:`\eta_\text{eff} = \|s\|/\|g\|` (the rate itself for
    gradient descent), steps stay stable up to :math:`2/\lambda_\max`, so the room is
    :math:`m = \min(t^*, 1/(\eta_\text{eff}\lambda_\max))`. With
    :math:`\lambda_\max \le 0` (f linear, as :math:`|x|` or a linear model under an
    absolute loss, or concave) no curvature bounds the step, and the Polyak step to
    :math:`f = 0` does: :math:`m = \min(t^*, |f|/p)`, the longest multiple after which
    the linear model still has :math:`f \ge 0` (a loss is bounded below). It reports
    when :math:`m \ge` ``headroom`` and suggests :math:`\eta\,m` (rounded down, capped at
    :math:`10^4\eta`). A failed confirmation doubles the wait before the next one, so a
    run pays for O(log steps) of them.

    Needs a differentiable objective (``minimize`` without ``jac``, or ``fit``);
    silent otherwise. On mini-batches noise breaks the ``r`` test, so it speaks only
    when steps are consistently in the linear regime.

    Args:
        every: check interval in steps, an integer >= 3.
        headroom: the factor by which the rate must be improvable, > 1.
        progress: relative decrease of f per step below which progress counts as slow,
            in (0, 1).
        patience: consecutive checks needed, an integer >= 1.
        iterations: Lanczos iterations for the confirmation, an integer >= 2.

    Example:
        >>> res = descend.minimize(rosenbrock, [-1.2, 1.0], "gd", lr=1e-7, max_iter=500)
        >>> res.diagnoses[0].suggested
        {'lr': 0.0006}
    """

    kinds = ("lr_too_small",)
    state = (
        "lag",
        "stage",
        "stage_step",
        "x_a",
        "g_a",
        "f_a",
        "pending",
        "streak",
        "gap",
        "next_confirm",
    )

    def __init__(
        self,
        *,
        every: int = 100,
        headroom: float = 10.0,
        progress: float = 1e-2,
        patience: int = 3,
        iterations: int = 10,
    ) -> None:
        super().__init__(every=check_int("every", every, low=3))
        self.headroom = check_number("headroom", headroom, low=1.0, low_open=True)
        self.progress = check_number(
            "progress", progress, low=0.0, high=1.0, low_open=True, high_open=True
        )
        self.patience = check_int("patience", patience, low=1)
        self.iterations = check_int("iterations", iterations, low=2)

    def begin(self, result: Any) -> None:
        # minimize records f after each step; fit records the step's loss before it
        self.lag = 0 if self.view.has("step_norm") else 1
        self.stage = ""
        self.stage_step = -10
        self.x_a: torch.Tensor | None = None
        self.g_a: torch.Tensor | None = None
        self.f_a = math.nan
        self.pending: torch.Tensor | None = None
        self.streak: list[dict[str, float]] = []
        self.gap = 1000  # steps to the next Lanczos run after a failed one, then doubling
        self.next_confirm: float = 0  # an iteration, or inf: never

    def watch(self, nit: int) -> int:
        if self.stage and nit != self.stage_step + 1:
            self.stage = ""  # the probe lost a step: start over
        if self.stage or nit % self.every == self._arm_phase():
            self._probe(nit)
        if self.stage:
            return nit + 1
        return self.next_multiple(nit) - 1 - self.lag

    def _arm_phase(self) -> int:
        return (self.every - 1 - self.lag) % self.every

    def _probe(self, nit: int) -> None:
        params = self.params()
        if not params or len(self.view) == 0:
            return
        f_now = self.view.column("f", -1)[0]
        self.stage_step = nit
        if not self.stage:
            if not math.isfinite(f_now):
                return
            x = flat(params)
            self.x_a = x.clone() if len(params) == 1 else x
            if self.lag == 0:  # f and g at x_a are the ones just recorded
                g = flat(grads_of(params))
                self.g_a = g.clone() if len(params) == 1 else g
                self.f_a = f_now
            self.stage = "armed"
        elif self.stage == "armed":
            assert self.x_a is not None  # kept when armed
            s = flat(params) - self.x_a
            if self.lag == 1:  # this step's gradient and loss were taken at x_a
                self.g_a, self.f_a = flat(grads_of(params)), f_now
            assert self.g_a is not None  # taken when armed (lag 0) or just now (lag 1)
            g = self.g_a
            self.pending = torch.stack([-torch.dot(g, s), vector_norm(s), vector_norm(g)])
            self.x_a = self.g_a = None
            self.stage = "stepped"
            if self.lag == 0:
                self._measure(nit, f_now, params)
                self.stage = ""
        else:  # fit: this row's loss is the first one taken after the step
            self._measure(nit, f_now, params)
            self.stage = ""

    def _measure(self, nit: int, f_now: float, params: list[torch.Tensor]) -> None:
        assert self.pending is not None  # stepped
        predicted, step, grad = self.pending.double().tolist()
        self.pending = None
        f_a = self.f_a
        actual = f_a - f_now
        measurable = predicted > 1e3 * _EPS * max(abs(f_a), abs(f_now), 1e-300)
        if not (math.isfinite(actual) and math.isfinite(predicted) and measurable):
            self.streak = []
            return
        r = actual / predicted
        relative = actual / max(abs(f_a), 1e-300)
        if abs(1.0 - r) > 1.0 / (2.0 * self.headroom) or relative >= self.progress:
            self.streak = []
            return
        t_star = math.inf if r >= 1.0 else 1.0 / (2.0 * (1.0 - r))
        self.streak.append(
            {
                "step": nit,
                "ratio": r,
                "t_star": t_star,
                "polyak": abs(f_a) / predicted,
                "decrease": actual,
                "predicted": predicted,
                "relative": relative,
                "step_norm": step,
                "grad_norm": grad,
            }
        )
        if len(self.streak) >= self.patience and nit >= self.next_confirm:
            self._confirm(nit, params)

    def _confirm(self, nit: int, params: list[torch.Tensor]) -> None:
        latest = self.streak[-1]
        loss_fn = getattr(self.objective, "loss_fn", None)
        spectrum = hessian_spectrum(loss_fn, params, self.iterations)
        self.streak = []
        if spectrum is None:
            self.next_confirm = math.inf  # no curvature to confirm with: stay silent
            return
        lam_max = spectrum.largest
        if not math.isfinite(lam_max):
            self.next_confirm = math.inf  # autograd's curvature is not a number here
            return
        rate = latest["step_norm"] / latest["grad_norm"] if latest["grad_norm"] > 0 else 0.0
        if lam_max > 0:
            stable = 1.0 / (rate * lam_max) if rate > 0 else math.inf
        else:  # no curvature bounds the step: the Polyak step to f = 0 does
            stable = latest["polyak"]
        room = min(latest["t_star"], stable, 1e4)
        if room < self.headroom:
            self.next_confirm = nit + self.gap
            self.gap *= 2
            return
        self._report(latest, room, lam_max, rate)

    def _report(self, latest: dict[str, float], room: float, lam_max: float, rate: float) -> None:
        lr = self.lr()
        evidence: dict[str, float] = {
            "decrease_ratio": latest["ratio"],
            # the step multiple where the quadratic model along the step bottoms out (none
            # when f is linear along it: then the key is left out, not an infinite number)
            **(
                {"step_multiple_along_step": latest["t_star"]}
                if math.isfinite(latest["t_star"])
                else {}
            ),
            "lambda_max": lam_max,
            "effective_lr": rate,
            "room": room,
            "relative_decrease_per_step": latest["relative"],
            "grad_norm": latest["grad_norm"],
            "step_norm": latest["step_norm"],
        }
        if lam_max > 0:
            bound = (
                f"the sharpest curvature ({lam_max:.3g}) allows {room:.3g}x longer steps "
                f"(effective rate {rate:.3g} vs a stability limit of {2.0 / lam_max:.3g})"
            )
        else:
            bound = (
                f"no positive curvature bounds the step (largest Hessian eigenvalue "
                f"{lam_max:.3g}: f is linear or concave here) and a {room:.3g}x longer step "
                "would still not take f past 0 by the linear model"
            )
        message = (
            f"each step decreases f by {latest['ratio']:.4f} of the first-order prediction "
            f"and f falls only {latest['relative']:.2g} of itself per step, while {bound}"
        )
        suggested: dict[str, float] = {}
        if math.isfinite(lr) and lr > 0:
            evidence["lr"] = lr
            new_lr = round_down(lr * room)
            suggested["lr"] = new_lr
            suggestion = (
                f"raise the learning rate from {lr:g} to about {new_lr:g}, or find one with "
                "descend.diagnostics.lr_range_test"
            )
        else:
            suggestion = "take longer steps (raise the step size), or use a line search (lbfgs)"
        self.report(
            Diagnosis(
                kind="lr_too_small",
                severity=Severity.WARNING,
                step=int(latest["step"]),
                message=message,
                evidence=evidence,
                suggestion=suggestion,
                suggested=suggested,
            )
        )
