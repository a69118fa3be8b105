"""Plateau: the loss flat while the gradient is small but not zero."""

from __future__ import annotations

import math
from typing import Any

from descend.monitors.curvature import hessian_spectrum
from descend.monitors.diagnosis import Diagnosis, Severity
from descend.monitors.monitor import Monitor
from descend.validation import check_int, check_number


class PlateauMonitor(Monitor):
    r"""Reports a run crawling across a flat region.

    Reads the history. Over the last ``window`` steps, with :math:`\bar f_\text{old}`
    and :math:`\bar f_\text{new}` the mean f of the window's first and last quarter
    (means, so mini-batch noise cancels), the loss is on a plateau when all hold:

    * flat: :math:`\bar f_\text{old} - \bar f_\text{new} \le` ``flat`` :math:`\cdot`
      (progress so far, :math:`f_0 - f_\text{best}`; or :math:`|f|` if there was none);
    * small gradient: :math:`\|g\| \le` ``small_grad`` :math:`\cdot \max_k \|g_k\|`;
    * not zero: :math:`\|g\| > 10^{-8} \max_k \|g_k\|` (else the run has converged);
    * not shrinking: the gradient norm at the end of the window is at least ``shrink``
      times its value at the start (a converging run's gradient keeps falling);
    * no curvature explains it: a slow crawl down a narrow convex valley (Rosenbrock's)
      also looks flat, but there the Hessian is positive definite and the run is
      converging. So the monitor confirms with Lanczos (``iterations`` exact
      Hessian-vector products) that :math:`\lambda_\min \le` ``curvature_tol``
      :math:`\cdot \lambda_\max`: flat or negative curvature, a true plateau or a
      saddle region. Without a differentiable objective it asks instead that the
      gradient norm did not fall at all over the window.

    A failed confirmation doubles the wait before the next one.

    Args:
        every: check interval in steps, an integer >= 1.
        window: steps the loss must stay flat, an integer >= 8.
        flat: largest decrease over the window, relative to the progress so far, in (0, 1).
        small_grad: gradient norm relative to its peak below which it counts as small,
            in (0, 1).
        shrink: least ratio (end/start of the window) of the gradient norm, in (0, 1).
        curvature_tol: :math:`\lambda_\min/\lambda_\max` at or below which the
            curvature counts as flat, in (0, 1).
        iterations: Lanczos iterations for the confirmation, an integer >= 2.

    Example:
        >>> res = descend.minimize(saddle, [1.0, 1e-6], "gd", lr=0.01, max_iter=2000)
        >>> "plateau" in [d.kind for d in res.diagnoses]
        True
    """

    kinds = ("plateau",)

    def __init__(
        self,
        *,
        every: int = 50,
        window: int = 100,
        flat: float = 1e-3,
        small_grad: float = 1e-2,
        shrink: float = 0.5,
        curvature_tol: float = 1e-6,
        iterations: int = 10,
    ) -> None:
        super().__init__(every=every)
        self.window = check_int("window", window, low=8)
        self.flat = check_number("flat", flat, low=0.0, high=1.0, low_open=True, high_open=True)
        self.small_grad = check_number(
            "small_grad", small_grad, low=0.0, high=1.0, low_open=True, high_open=True
        )
        self.shrink = check_number(
            "shrink", shrink, low=0.0, high=1.0, low_open=True, high_open=True
        )
        self.curvature_tol = check_number(
            "curvature_tol", curvature_tol, low=0.0, high=1.0, low_open=True, high_open=True
        )
        self.iterations = check_int("iterations", iterations, low=2)

    def begin(self, result: Any) -> None:
        self.seen = 0
        self.f0 = math.nan
        self.f_best = math.inf
        self.g_max = 0.0
        self.gap = 1000  # steps to the next Lanczos run after a failed one, then doubling
        self.next_confirm = 0

    def watch(self, nit: int) -> int:
        self._scan(nit)
        return self.next_multiple(nit)

    def _scan(self, nit: int) -> None:
        view = self.view
        n = len(view)
        if n <= self.seen:
            return
        i_f, i_g = view.index["f"], view.index["grad_norm"]
        rows = view.rows(self.seen)
        self.seen = n
        if math.isnan(self.f0):
            self.f0 = float(rows[0][i_f])
        for row in rows:
            f, g = row[i_f], row[i_g]
            if f < self.f_best:  # NaN compares False
                self.f_best = float(f)
            if g > self.g_max:
                self.g_max = float(g)
        if n < self.window + 1 or self.g_max <= 0 or nit < self.next_confirm:
            return
        if not rows[-1][i_g] <= self.small_grad * self.g_max:
            return  # the common case, decided without reading the window
        quarter = max(self.window // 4, 1)
        old = view.rows(n - self.window, n - self.window + quarter)
        new = view.rows(n - quarter, n)
        f_old = sum(row[i_f] for row in old) / quarter
        f_new = sum(row[i_f] for row in new) / quarter
        g_old = sum(row[i_g] for row in old) / quarter
        g_new = sum(row[i_g] for row in new) / quarter
        if not all(math.isfinite(v) for v in (f_old, f_new, g_old, g_new)):
            return
        progress = self.f0 - self.f_best
        scale = progress if progress > 0 else max(abs(f_new), 1e-300)
        drop = f_old - f_new
        g_rel = g_new / self.g_max
        if not (
            drop <= self.flat * scale
            and 1e-8 < g_rel <= self.small_grad
            and g_new >= self.shrink * g_old
        ):
            return
        evidence: dict[str, float] = {
            "window": self.window,
            "f_drop": drop,
            "relative_drop": drop / scale,
            "f_now": f_new,
            "grad_norm": g_new,
            "grad_norm_window_start": g_old,
            "grad_norm_peak": self.g_max,
        }
        spectrum = hessian_spectrum(
            getattr(self.objective, "loss_fn", None), self.params(), self.iterations
        )
        if spectrum is not None:
            lam_min, lam_max = spectrum.smallest, spectrum.largest
            evidence["lambda_min"], evidence["lambda_max"] = lam_min, lam_max
            if lam_min > self.curvature_tol * max(abs(lam_max), 1e-300):
                # positive curvature everywhere: a convex valley the run is converging in
                self.next_confirm = nit + self.gap
                self.gap *= 2
                return
            where = (
                f"the Hessian has negative curvature ({lam_min:.3g}): a saddle region"
                if lam_min < 0
                else f"the curvature is flat too (smallest {lam_min:.3g}, largest {lam_max:.3g})"
            )
        elif g_new < g_old:
            return
        else:
            where = "the gradient is not shrinking"
        self.report(
            Diagnosis(
                kind="plateau",
                severity=Severity.WARNING,
                step=nit,
                message=(
                    f"f has been flat for {self.window} steps (it fell {drop:.3g}, "
                    f"{drop / scale:.2g} of the progress so far) while the gradient norm "
                    f"stays small but not zero ({g_new:.3g}, {g_rel:.2g} of its peak "
                    f"{self.g_max:.3g}); {where}"
                ),
                evidence=evidence,
                suggestion=(
                    "cross it faster with momentum or an adaptive method (momentum, "
                    "adam), a larger learning rate, or a second-order method that "
                    "follows curvature (newton, trust-region); if f is good enough, stop "
                    "earlier with a looser ftol/gtol"
                ),
            )
        )
