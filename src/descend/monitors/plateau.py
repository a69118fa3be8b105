"""Plateau: the loss flat far above where it could be, while the gradient is small."""

from __future__ import annotations

import math
from typing import Any

from descend.monitors.curvature import hessian_spectrum
from descend.monitors.diagnosis import Diagnosis, Severity
from descend.monitors.monitor import Monitor
from descend.validation import check_int, check_number


class PlateauMonitor(Monitor):
    r"""Reports a run stalled on a flat region it has not finished descending from.

    Reads the history. Over the last ``window`` steps, with :math:`\bar f_\text{old}`
    and :math:`\bar f_\text{new}` the mean f of the window's first and last quarter
    (means, so mini-batch noise cancels) and :math:`\Delta = \bar f_\text{old} - \bar
    f_\text{new}` the window's drop, the loss is on a plateau when all hold:

    * flat: :math:`\Delta \le` ``flat`` :math:`\cdot h`, the loss's height. With a known
      floor :math:`f_\text{lo}` of f (``floor``: every loss of ``fit`` is
      :math:`\ge 0`), :math:`h = \bar f_\text{new} - f_\text{lo}`, so a loss still
      falling by a fixed fraction of itself per window (cross-entropy creeping to 0 as
      :math:`1/t`) is never flat. Without one, :math:`h = \max(f_0 - f_\text{best},
      |\bar f_\text{new}|)`: the progress so far, or the loss's size if that is larger.
    * not converged (with a floor): :math:`h >` ``converged`` :math:`\cdot (f_0 -
      f_\text{lo})`. A loss that has shed all but that fraction of its starting height
      has arrived; its gradient and its steps are then rounding noise, which look flat
      and "not shrinking" without being a plateau.
    * small gradient: :math:`\|g\| \le` ``small_grad`` :math:`\cdot \max_k \|g_k\|`, or
      the run has made no progress yet (:math:`f_0 - f_\text{best} \le` ``flat``
      :math:`\cdot (f_0 - f_\text{lo})`, or :math:`\cdot |f_0|` without a floor): on a
      plateau from the first step the peak is the plateau's own gradient;
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
        flat: largest drop over the window, relative to the height h, in (0, 1).
        small_grad: gradient norm relative to its peak below which it counts as small,
            in (0, 1).
        shrink: least ratio (end/start of the window) of the gradient norm, in (0, 1).
        curvature_tol: :math:`\lambda_\min/\lambda_\max` at or below which the
            curvature counts as flat, in (0, 1).
        iterations: Lanczos iterations for the confirmation, an integer >= 2.
        floor: a lower bound of f, a number; ``"auto"`` (default): 0 when the run
            trains a model (``fit``: its losses are nonnegative) and f has never been
            negative, else none (``minimize``: f may have any sign).
        converged: the fraction of its starting height above ``floor`` below which the
            loss counts as converged, in (0, 1); used only with a floor.

    Example:
        >>> saddle = descend.problems.saddle  # x^2 - y^2 + y^4/4: lingers near (0, 0)
        >>> res = descend.minimize(saddle, [1.0, 1e-6], "gd", lr=0.01, max_iter=2000)
        >>> "plateau" in [d.kind for d in res.diagnoses]
        True
    """

    kinds = ("plateau",)
    state = ("seen", "f0", "f_best", "g_max", "gap", "next_confirm")

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
        floor: float | str = "auto",
        converged: float = 1e-3,
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
        if not (floor == "auto" or isinstance(floor, (int, float))) or isinstance(floor, bool):
            raise TypeError(f"floor must be a number or 'auto', got {floor!r}")
        self.floor = floor if floor == "auto" else check_number("floor", floor)
        self.converged = check_number(
            "converged", converged, low=0.0, high=1.0, low_open=True, high_open=True
        )

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

    def _floor(self) -> float | None:
        if self.floor != "auto":
            return float(self.floor)
        return 0.0 if self.model is not None and self.f_best >= 0.0 else None

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
        floor = self._floor()
        progress = self.f0 - self.f_best
        # no progress yet: the peak gradient is the plateau's own, so it cannot be "small"
        fresh = progress <= self.flat * (abs(self.f0) if floor is None else self.f0 - floor)
        if not (rows[-1][i_g] <= self.small_grad * self.g_max or fresh):
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
        if floor is None:
            height = max(progress, abs(f_new), 1e-300)
        else:
            height = f_new - floor
            if not height > self.converged * (self.f0 - floor):
                return  # the loss has (nearly) reached its floor: converged, not stalled
        drop = f_old - f_new
        g_rel = g_new / self.g_max
        if not (
            drop <= self.flat * height
            and (g_rel <= self.small_grad or fresh)
            and g_rel > 1e-8
            and g_new >= self.shrink * g_old
        ):
            return
        evidence: dict[str, float] = {
            "window": self.window,
            "f_drop": drop,
            "relative_drop": drop / height,
            "f_now": f_new,
            "f_start": self.f0,
            "grad_norm": g_new,
            "grad_norm_window_start": g_old,
            "grad_norm_peak": self.g_max,
        }
        if floor is not None:
            evidence["floor"] = floor
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
        self.report(self._diagnosis(nit, evidence, floor, where))

    def _diagnosis(
        self, nit: int, evidence: dict[str, float], floor: float | None, where: str
    ) -> Diagnosis:
        drop, f_new, g_new = evidence["f_drop"], evidence["f_now"], evidence["grad_norm"]
        if floor is None:
            measure = f"{evidence['relative_drop']:.2g} of the progress so far"
            level = ""
        else:
            measure = f"{evidence['relative_drop']:.2g} of its height above {floor:g}"
            level = f" at {f_new:.4g} (it started at {self.f0:.4g})"
        return Diagnosis(
            kind="plateau",
            severity=Severity.WARNING,
            step=nit,
            message=(
                f"f has been flat{level} for {self.window} steps (it fell {drop:.3g}, "
                f"{measure}) while the gradient norm stays small but not zero "
                f"({g_new:.3g}, {g_new / self.g_max:.2g} of its peak {self.g_max:.3g}); "
                f"{where}"
            ),
            evidence=evidence,
            suggestion=(
                "cross it faster with momentum or an adaptive method (momentum, "
                "adam), a larger learning rate, or a second-order method that "
                "follows curvature (newton, trust-region); if f is good enough, stop "
                "earlier with a looser ftol/gtol"
            ),
        )
