r"""Trust-region Newton with the Steihaug-Toint truncated conjugate-gradient subproblem solver."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities
from descend.optim.flat_params import FlatParams
from descend.optim.hessian import (
    HessianVectorProduct,
    evaluate,
    require_closure,
    set_grad,
    single_group_params,
)
from descend.optim.optimizer import StepFailed
from descend.validation import check_int, check_number, check_positive

#: a step shorter than this many units in the last place of x cannot change x
_MIN_RADIUS_ULPS = 2.0


@dataclass
class SteihaugResult:
    r"""An approximate minimizer :math:`p` of the model on :math:`\|p\| \le \Delta`.

    Attributes:
        step: :math:`p`.
        predicted: the model decrease :math:`m(0) - m(p) = -(g^\top p + \tfrac12 p^\top B p)`.
        on_boundary: :math:`\|p\| = \Delta` (CG left the region or met negative curvature).
        negative_curvature: CG met a direction :math:`d` with :math:`d^\top B d \le 0`.
        iterations: CG iterations (one Hessian-vector product each).
    """

    step: Tensor
    predicted: float
    on_boundary: bool
    negative_curvature: bool
    iterations: int


def steihaug_cg(
    hvp: Callable[[Tensor], Tensor],
    grad: Tensor,
    radius: float,
    tol: float,
    max_iter: int,
) -> SteihaugResult:
    r"""Steihaug-Toint CG: minimize :math:`m(p) = g^\top p + \tfrac12 p^\top B p` on
    :math:`\|p\|_2 \le \Delta` without forming :math:`B` (Nocedal & Wright 2006, Alg. 7.2).

    Conjugate gradients on :math:`B p = -g` from :math:`p_0 = 0`, stopped when

    * the residual :math:`\|B p_j + g\| <` ``tol`` (an interior, approximately Newton step);
    * the next iterate would leave the region: the step follows the last CG direction
      to the boundary;
    * a direction has :math:`d^\top B d \le 0` (negative curvature): the step follows it
      to the boundary, at the root of :math:`\|p_j + \tau d\| = \Delta` with the lower model;
    * ``max_iter`` iterations.

    The CG iterates grow monotonically in norm and decrease the model monotonically
    (N&W Thm. 7.3), so the step is at least as good as the Cauchy point (the first
    iterate), which gives global convergence of the trust-region method.
    """
    z = torch.zeros_like(grad)
    r = grad.clone()
    d = -r
    rr = float(torch.dot(r, r))
    bd = torch.zeros_like(grad)
    tau = 0.0
    j = 0
    while j < max_iter:
        bd = hvp(d)
        j += 1
        curvature = float(torch.dot(d, bd))
        if not math.isfinite(curvature):
            raise StepFailed(
                "diverged", f"a Hessian-vector product is not finite (d'Bd = {curvature})"
            )
        if curvature <= 0.0:
            tau = _boundary_tau(z, d, r, curvature, radius, lowest_model=True)
            return _finish(grad, z, r, d, bd, tau, True, True, j)
        alpha = rr / curvature
        z_next = torch.add(z, d, alpha=alpha)
        if float(torch.linalg.vector_norm(z_next)) >= radius:
            tau = _boundary_tau(z, d, r, curvature, radius, lowest_model=False)
            return _finish(grad, z, r, d, bd, tau, True, False, j)
        z = z_next
        r.add_(bd, alpha=alpha)
        rr_next = float(torch.dot(r, r))
        if math.sqrt(rr_next) < tol:
            break
        d.mul_(rr_next / rr).sub_(r)
        rr = rr_next
    return _finish(grad, z, r, d, bd, 0.0, False, False, j)


def _boundary_tau(
    z: Tensor, d: Tensor, r: Tensor, curvature: float, radius: float, *, lowest_model: bool
) -> float:
    r"""The root :math:`\tau` of :math:`\|z + \tau d\|^2 = \Delta^2` to step to.

    With :math:`\|z\| < \Delta` the roots have opposite signs. Along a direction of
    positive curvature the positive root is the one ahead; along negative curvature the
    root with the lower model value :math:`\tau\, r^\top d + \tfrac12 \tau^2 d^\top B d`.
    The roots are computed in the cancellation-free form :math:`q/a,\ c/q`.
    """
    a = float(torch.dot(d, d))
    b = 2.0 * float(torch.dot(z, d))
    c = float(torch.dot(z, z)) - radius * radius
    disc = math.sqrt(max(b * b - 4.0 * a * c, 0.0))
    q = -0.5 * (b + math.copysign(disc, b))
    roots = [q / a, c / q] if q != 0.0 else [0.0]
    if not lowest_model:
        return max(roots)
    slope = float(torch.dot(r, d))
    return min(roots, key=lambda t: t * slope + 0.5 * t * t * curvature)


def _finish(
    grad: Tensor,
    z: Tensor,
    r: Tensor,
    d: Tensor,
    bd: Tensor,
    tau: float,
    on_boundary: bool,
    negative: bool,
    iterations: int,
) -> SteihaugResult:
    # The CG residual is r = B z + g, so B p = r - g (+ tau B d): the model value needs no
    # further product.
    if tau != 0.0:
        p = torch.add(z, d, alpha=tau)
        bp = (r - grad).add_(bd, alpha=tau)
    else:
        p, bp = z, r - grad
    predicted = -(float(torch.dot(grad, p)) + 0.5 * float(torch.dot(p, bp)))
    return SteihaugResult(p, predicted, on_boundary, negative, iterations)


class TrustRegion(torch.optim.Optimizer):
    r"""Trust-region Newton-CG (Steihaug-Toint); never forms the Hessian.

    Each step minimizes the quadratic model of f around :math:`x_k`,

    .. math::
        m_k(p) = f_k + g_k^\top p + \tfrac12 p^\top \nabla^2 f(x_k)\, p,
        \qquad \|p\|_2 \le \Delta_k,

    approximately by :func:`steihaug_cg` on Hessian-vector products, to the relative
    residual :math:`\eta_k = \min(0.5, \sqrt{\|g_k\|})` (superlinear local convergence,
    N&W Thm. 7.2), and tries :math:`x_k + p`. With
    :math:`\rho = (f(x_k) - f(x_k + p)) / (m_k(0) - m_k(p))` (N&W Alg. 4.1):

    * :math:`\rho < 1/4`: :math:`\Delta \leftarrow \min(\Delta, \|p\|) / 4` (N&W shrink
      :math:`\Delta/4`; taking :math:`\|p\|` into account makes sure a rejected interior
      step is not simply computed again);
    * :math:`\rho > 3/4` and :math:`\|p\| = \Delta`: :math:`\Delta \leftarrow
      \min(2\Delta, \Delta_\max)`;
    * the step is accepted when :math:`\rho >` ``eta``; a rejected step restores the
      parameters (and their gradients) and is solved again in the smaller region, so every
      call of ``step`` ends at an accepted point, evaluated last.

    :math:`\rho` is computed as :math:`(\text{ared} + \delta) / (\text{pred} + \delta)`
    with :math:`\delta = 10\,u \max(1, |f_k|)` so that rounding noise in f cannot reject a
    good step (Conn, Gould & Toint 2000, §17.4.2); when the predicted change is so small
    that f's differences are mostly rounding, ared comes from the gradients instead
    (see :meth:`_ratio`), so the method still converges to gradient norms far below
    :math:`\sqrt{u}` on ill-conditioned problems.

    Hessian-vector products are exact when the closure is descend's Objective (``minimize``
    passes one), otherwise forward differences of gradients through the closure (see
    :class:`~descend.optim.hessian.HessianVectorProduct`). On a quadratic with exact
    products the model is f itself, every step is accepted with :math:`\rho = 1`, the
    radius doubles while steps hit the boundary, and once the Newton step fits the region
    each iteration cuts the gradient norm to at most :math:`\eta_k \|g_k\|`
    (see ``tests/optim/test_trust_region.py`` for the count this predicts).

    Args:
        params: the parameters (one group; treated as one vector).
        initial_radius: :math:`\Delta_0 > 0`.
        max_radius: :math:`\Delta_\max \ge \Delta_0`.
        eta: acceptance threshold, in [0, 1/4).
        max_cg_iter: CG iterations per subproblem (default ``20 n``, as SciPy).
        cg_rtol: fixed relative CG tolerance in (0, 1) replacing
            :math:`\min(0.5, \sqrt{\|g_k\|})` (a small value makes every interior step an
            exact Newton step).
        max_rejections: trials per step before it fails with ``line_search_failed``
            status (each rejection quarters the radius).

    Example:
        >>> x = rosenbrock.x0().requires_grad_()  # float64 (-1.2, 1)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = rosenbrock(x)
        ...     loss.backward()
        ...     return loss
        >>> opt = descend.optim.TrustRegion([x])
        >>> for _ in range(50):
        ...     loss = opt.step(closure)
        >>> bool((x - 1).abs().max() < 1e-6)  # the minimum (1, 1)
        True

    References:
        J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., 2006, ch. 4 and
        §7.1 (Alg. 7.2). T. Steihaug, "The conjugate gradient method and trust regions in
        large scale optimization", SIAM J. Numer. Anal. 20, 1983. Ph. L. Toint, "Towards an
        efficient sparsity exploiting Newton method for minimization", 1981.
    """

    capabilities = Capabilities(needs_fixed_batch=True, second_order=True)

    def __init__(
        self,
        params: Any,
        initial_radius: float = 1.0,
        max_radius: float = 1000.0,
        eta: float = 0.15,
        *,
        max_cg_iter: int | None = None,
        cg_rtol: float | None = None,
        max_rejections: int = 60,
    ) -> None:
        check_positive("initial_radius", initial_radius)
        check_number("max_radius", max_radius, low=initial_radius)
        check_number("eta", eta, low=0.0, high=0.25, high_open=True)
        if max_cg_iter is not None:
            check_int("max_cg_iter", max_cg_iter, low=1)
        if cg_rtol is not None:
            check_number("cg_rtol", cg_rtol, low=0.0, high=1.0, low_open=True, high_open=True)
        check_int("max_rejections", max_rejections, low=1)
        defaults = dict(
            initial_radius=float(initial_radius),
            max_radius=float(max_radius),
            eta=float(eta),
            max_cg_iter=max_cg_iter,
            cg_rtol=cg_rtol,
            max_rejections=max_rejections,
        )
        super().__init__(params, defaults)
        self._params = single_group_params(self, "TrustRegion")
        self._flat = FlatParams(self._params)

    @property
    def radius(self) -> float:
        """The current trust-region radius :math:`\\Delta_k`."""
        return self.state[self._params[0]].get("radius", self.param_groups[0]["initial_radius"])

    @torch.no_grad()
    # torch's stub: a closure returns a float; descend's return the loss tensor
    def step(self, closure: Callable[[], Tensor]) -> Tensor:  # type: ignore[override]
        """Take one accepted trust-region step; returns the loss at the starting point.

        ``closure`` must re-evaluate the loss and fill ``p.grad`` (zero the gradients,
        compute the loss, call ``backward``, return the loss).
        """
        closure = require_closure(closure, "TrustRegion")
        group = self.param_groups[0]
        state = self.state[self._params[0]]
        state.setdefault("radius", group["initial_radius"])
        state.setdefault("n_iter", 0)
        state.setdefault("rejected", 0)
        state.setdefault("cg_iter", 0)
        flat = self._flat

        loss = evaluate(closure)
        f0 = float(loss)
        g = flat.gather_grad()
        g_norm = float(torch.linalg.vector_norm(g))
        if not (math.isfinite(f0) and math.isfinite(g_norm)):
            raise StepFailed("diverged", f"f = {f0} and gradient norm {g_norm} at the start")
        if g_norm == 0.0:
            return loss
        x0 = flat.gather()
        hvp = HessianVectorProduct(closure, flat, g, x0)
        rtol = group["cg_rtol"] if group["cg_rtol"] is not None else min(0.5, math.sqrt(g_norm))
        max_cg = group["max_cg_iter"] or 20 * flat.numel
        eps = torch.finfo(flat.dtype).eps
        delta = 10.0 * eps * max(1.0, abs(f0))
        min_radius = _MIN_RADIUS_ULPS * eps * max(1.0, float(torch.linalg.vector_norm(x0)))

        for _ in range(group["max_rejections"]):
            radius = state["radius"]
            sub = steihaug_cg(hvp, g, radius, rtol * g_norm, max_cg)
            state["cg_iter"] += sub.iterations
            flat.assign_axpy(x0, 1.0, sub.step)
            f_new = float(evaluate(closure))
            step_norm = float(torch.linalg.vector_norm(sub.step))
            rho = self._ratio(f0, f_new, g, sub, delta)
            if rho < 0.25:
                state["radius"] = 0.25 * min(radius, step_norm)
            elif rho > 0.75 and sub.on_boundary:
                state["radius"] = min(2.0 * radius, group["max_radius"])
            if rho > group["eta"]:
                state["n_iter"] += 1
                state["last_rho"] = rho
                return loss
            state["rejected"] += 1
            flat.assign(x0)
            set_grad(flat, g)
            if state["radius"] < min_radius or step_norm < min_radius:
                break
        raise StepFailed(
            "line_search_failed",
            f"trust region collapsed to radius {state['radius']:.3g} without a step that "
            f"decreases f (f = {f0:.6g}, gradient norm {g_norm:.3g}); the gradient or the "
            "Hessian-vector products may be inaccurate, or f is at rounding level",
        )

    def _ratio(
        self, f0: float, f_new: float, g0: Tensor, sub: SteihaugResult, delta: float
    ) -> float:
        r"""Actual over predicted reduction, robust to rounding in f.

        Normally :math:`(\text{ared} + \delta)/(\text{pred} + \delta)`. When the predicted
        change is below :math:`\sqrt{u}\max(1, |f_k|)`, a difference of two values of f
        keeps at most half its digits (fewer where f is computed with cancellation, as
        :math:`x^\top A x` for an ill-conditioned A), so unless f clearly rose, ared is
        taken from the gradients instead, by the trapezoidal rule
        :math:`f(x+p) - f(x) = \int_0^1 \nabla f(x + tp)^\top p\,dt \approx
        \tfrac12 (g_0 + g_1)^\top p`: exact on quadratics, relative error
        :math:`O(\|p\|)` otherwise; the new gradient :math:`g_1` is already in ``p.grad``.
        """
        pred = sub.predicted
        if not math.isfinite(f_new) or not pred > 0.0:
            return -math.inf
        ared = f0 - f_new
        digits_lost = math.sqrt(torch.finfo(self._flat.dtype).eps) * max(1.0, abs(f0))
        if pred <= digits_lost and ared >= -digits_lost:
            g1 = self._flat.gather_grad()
            if not bool(torch.isfinite(g1).all()):
                return -math.inf
            return -0.5 * float(torch.dot(g0 + g1, sub.step)) / pred
        return (ared + delta) / (pred + delta)
