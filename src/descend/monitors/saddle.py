"""Saddle points: a vanishing gradient where the Hessian has a negative eigenvalue."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.linalg import vector_norm

from descend.monitors.curvature import Spectrum, hessian_spectrum
from descend.monitors.diagnosis import Diagnosis, Severity
from descend.monitors.monitor import Monitor, flat
from descend.validation import check_int, check_number


class SaddleMonitor(Monitor):
    r"""Reports a stationary point that is not a minimum, and the direction out of it.

    When the gradient norm has fallen to ``grad_tol`` times its peak (checked every
    ``every`` steps, and at the end of the run), it runs ``iterations`` steps of Lanczos
    on exact Hessian-vector products (double backward through the objective's
    ``loss_fn``) from a seeded random start. A smallest Ritz value
    :math:`\lambda_\min < -` ``curvature_tol`` :math:`\cdot \max|\lambda|` proves
    negative curvature: :math:`f(x + t v) \approx f(x) + \tfrac12\lambda_\min t^2` falls
    along the Ritz vector v, so x is a saddle, however small the gradient. The vector is
    kept as :attr:`direction`.

    Lanczos runs at most ``max_checks`` times per run (each time ``iterations`` products,
    not counted in the result's ``nhev``). Without a differentiable objective (``jac=``
    given) the monitor stays silent.

    Args:
        every: check interval in steps, an integer >= 1.
        grad_tol: gradient norm relative to its peak below which the point is examined,
            in (0, 1).
        iterations: Lanczos iterations (Hessian-vector products), an integer >= 2.
        curvature_tol: how negative, relative to the largest curvature, counts, in (0, 1).
        max_checks: Lanczos runs per run at most, an integer >= 1.
        seed: seed of the random start vector.

    Example:
        >>> saddle = descend.problems.saddle  # x^2 - y^2 + y^4/4
        >>> res = descend.minimize(saddle, [1.0, 0.0], "gd", lr=0.1)  # converges to (0, 0)
        >>> res.diagnoses[0].kind, round(res.diagnoses[0].evidence["lambda_min"], 6)
        ('saddle', -2.0)
    """

    kinds = ("saddle",)
    recheck_at_end = True
    state = ("g_max", "seen", "gap", "checks", "last_check", "spectrum", "direction")

    def __init__(
        self,
        *,
        every: int = 50,
        grad_tol: float = 1e-3,
        iterations: int = 10,
        curvature_tol: float = 1e-4,
        max_checks: int = 3,
        seed: int = 0,
    ) -> None:
        super().__init__(every=every)
        self.grad_tol = check_number(
            "grad_tol", grad_tol, low=0.0, high=1.0, low_open=True, high_open=True
        )
        self.iterations = check_int("iterations", iterations, low=2)
        self.curvature_tol = check_number(
            "curvature_tol", curvature_tol, low=0.0, high=1.0, low_open=True, high_open=True
        )
        self.max_checks = check_int("max_checks", max_checks, low=1)
        self.seed = int(seed)
        self.direction: torch.Tensor | None = None

    def begin(self, result: Any) -> None:
        self.g_max = float(result.grad_norm) if math.isfinite(result.grad_norm) else 0.0
        self.seen = 0
        self.gap = 500  # steps between Lanczos runs, then doubling
        self.checks = 0
        self.last_check = -(10**9)
        self.spectrum: Spectrum | None = None
        self.direction = None

    def _maximizing(self) -> bool:
        groups = getattr(self.optimizer, "param_groups", None) or [{}]
        return bool(groups[0].get("maximize", False))

    def _loss_fn(self) -> Any:
        return getattr(self.objective, "loss_fn", None)

    def watch(self, nit: int) -> int:
        gs = [g for g in self.view.column("grad_norm", self.seen) if math.isfinite(g)]
        self.seen = len(self.view)
        if gs:
            self.g_max = max(self.g_max, max(gs))
            g = gs[-1]
            if (
                self.checks < self.max_checks
                and nit - self.last_check >= self.gap
                and self._near_stationary(g)
            ):
                self._examine(nit, g, self.view.column("f", -1)[0])
                self.gap *= 2  # a healthy run near a minimum pays for few checks
        return self.next_multiple(nit)

    def finish(self, result: Any) -> None:
        g = result.grad_norm
        near = self._near_stationary(g) or result.status.converged
        if self.checks < self.max_checks + 1 and result.nit != self.last_check and near:
            self._examine(result.nit, g, result.fun)

    def _near_stationary(self, g: float) -> bool:
        return math.isfinite(g) and self.g_max > 0 and g <= self.grad_tol * self.g_max

    def _examine(self, nit: int, g: float, f: float) -> None:
        loss_fn = self._loss_fn()
        params = self.params()
        if loss_fn is None or not params:
            return
        self.checks += 1
        self.last_check = nit
        spectrum = hessian_spectrum(loss_fn, params, self.iterations, self.seed)
        if spectrum is None:
            return  # f is not twice differentiable here (e.g. a custom backward)
        x = flat(params)
        self.spectrum = spectrum
        lam_min, lam_max = spectrum.smallest, spectrum.largest
        v = spectrum.vectors[:, 0]
        if self._maximizing():  # ascent: a maximum is the goal, positive curvature the saddle
            lam_min, lam_max, v = -lam_max, -lam_min, spectrum.vectors[:, -1]
        size = max(abs(lam_min), abs(lam_max))
        if not (math.isfinite(lam_min) and lam_min < 0 and -lam_min > self.curvature_tol * size):
            return
        self.direction = v.detach().clone()
        # the step along v that a quadratic model trusts: where the gradient term and the
        # curvature term balance, at least a step of 1e-3 in scale
        t = max(2.0 * g / -lam_min, 1e-3 * max(float(vector_norm(x)), 1.0))
        decrease = 0.5 * -lam_min * t * t
        share = f"{g / self.g_max:.2g} of its peak" if self.g_max > 0 else "it never rose"
        # the latest saddle replaces an earlier one: a run that stops at one says so
        self.found["saddle"] = Diagnosis(
            kind="saddle",
            severity=Severity.ERROR,
            step=nit,
            message=(
                f"the gradient is nearly zero (norm {g:.3g}, {share}) but the Hessian has "
                f"a negative eigenvalue {lam_min:.4g} "
                f"(largest {lam_max:.4g}, from {spectrum.iterations} Lanczos steps): "
                "this is a saddle point, not a minimum"
            ),
            evidence={
                "lambda_min": lam_min,
                "lambda_max": lam_max,
                "grad_norm": g,
                "f": f,
                "hessian_vector_products": spectrum.iterations,
                "escape_step": t,
                "predicted_decrease": decrease,
            },
            suggestion=(
                f"step off along the negative-curvature direction "
                f"(SaddleMonitor.direction): a step of {t:.3g} lowers f by about "
                f"{decrease:.3g}; or restart from a perturbed point, or use a method "
                "that escapes saddles (momentum, adam with noise, trust-region, "
                "newton with negative-curvature steps)"
            ),
        )
