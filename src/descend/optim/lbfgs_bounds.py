r"""The bounded iteration of :class:`~descend.optim.LBFGS`: a projected quasi-Newton step
that keeps every iterate in the feasible set.

**On a box** :math:`l \le x \le u` it is the two-metric projection method of Bertsekas
("Projected Newton methods for optimization problems with simple constraints", SIAM J.
Control Optim. 20(2), 1982) with the L-BFGS matrix of L-BFGS-B (Byrd, Lu, Nocedal & Zhu,
"A limited memory algorithm for bound constrained optimization", SIAM J. Sci. Comput.
16(5), 1995), in place of L-BFGS-B's generalized Cauchy point:

1. The :math:`\epsilon`-active set: :math:`A = \{i : x_i \le l_i + \epsilon,\ g_i > 0\}
   \cup \{i : x_i \ge u_i - \epsilon,\ g_i < 0\}`, with :math:`\epsilon =
   \min(10^{-3}, \|P(x - g) - x\|_\infty)`; the free set :math:`F` is the rest.
2. On :math:`F` the quasi-Newton step of the model restricted to the free face,
   :math:`d_F = -(Z^\top B Z)^{-1} g_F`, where :math:`B = \theta I - W M W^\top` is the
   compact L-BFGS matrix (:math:`W = [Y\ \ \theta S]`, :math:`M^{-1} = \begin{bmatrix}
   -D & L^\top \\ L & \theta S^\top S\end{bmatrix}`, :math:`\theta = y^\top y / s^\top y`
   of the last pair; BLNZ eq. 3.2-3.5). By Sherman-Morrison-Woodbury, with :math:`W_F` the
   rows of :math:`W` in :math:`F`,

   .. math::
       d_F = -\tfrac1\theta g_F - \tfrac1{\theta^2} W_F z,\qquad
       \big(M^{-1} - \tfrac1\theta W_F^\top W_F\big) z = W_F^\top g_F,

   the direct primal subspace minimization of BLNZ section 5.1 taken at :math:`x` itself:
   a :math:`2m \times 2m` solve. On :math:`A`, :math:`d_A = -g_A / \theta`. Since
   :math:`Z^\top B Z` is a principal block of a positive definite matrix, :math:`g^\top d
   < 0`.
3. The step: if the whole trial step stays in the box (:math:`t_0 \le
   t_\text{bound}`, the largest feasible step along d), the strong Wolfe search along the
   ray, capped at :math:`t_\text{bound}` (L-BFGS-B's search along its feasible segment);
   otherwise a backtracking search along the projection arc :math:`x(t) = P(x + t d)`
   with the Armijo condition :math:`f(x(t)) \le f(x) + c_1 g^\top (x(t) - x)`, halving t.
   With the two-metric active set, :math:`g^\top(x(t) - x) < 0` for small t (Bertsekas,
   Prop. 1), so the search ends.

The pair :math:`s = x_{k+1} - x_k`, :math:`y = g_{k+1} - g_k` is kept when
:math:`s^\top y > \epsilon_\text{mach}\,|g^\top s|` (L-BFGS-B's rule).

**On another convex set** (the simplex) it is the spectral projected gradient method of
Birgin, Martínez & Raydan ("Nonmonotone spectral projected gradient methods on convex
sets", SIAM J. Optim. 10(4), 2000) with a monotone Armijo search: :math:`d = P(x - \alpha
g) - x` with the Barzilai-Borwein scalar :math:`\alpha = s^\top y / y^\top y` of the last
pair, a feasible direction searched on the segment :math:`t \in (0, 1]`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from descend.constraints import Box, Constraint
from descend.optim.flat_params import FlatParams, scalars
from descend.optim.line_search_optimizer import LineFunction, search
from descend.optim.linesearch import MAX_EVALS, LineSearchResult
from descend.optim.optimizer import StepFailed

#: the largest distance to a bound at which a coordinate pushed outward counts as active
ACTIVE_EPSILON = 1e-3


class BoundedIteration:
    """One bounded L-BFGS iteration over a flat parameter vector (module docstring).

    Args:
        constraint: the feasible set.
        flat: the parameters as one vector.
        history_size: pairs kept, m.
    """

    def __init__(self, constraint: Constraint, flat: FlatParams, history_size: int) -> None:
        constraint.check_size(flat.numel)
        self.constraint, self.flat, self.m = constraint, flat, history_size

    # -- the memory: m pairs in chronological order -------------------------------------------

    def init_buffers(self, state: dict[str, Any]) -> None:
        state["bound_s"] = self.flat.empty(self.m)
        state["bound_y"] = self.flat.empty(self.m)
        state["bound_order"] = []  # slots, oldest first
        state["bound_theta"] = 1.0

    def reset(self, state: dict[str, Any]) -> None:
        state["bound_order"] = []
        state["bound_theta"] = 1.0

    def store(self, state: dict[str, Any], s: Tensor, y: Tensor, g: Tensor) -> None:
        """Keep (s, y) when :math:`s^\\top y > \\epsilon_\\text{mach} |g^\\top s|`."""
        sy, yy, gs = scalars(torch.dot(s, y), torch.dot(y, y), torch.dot(g, s))
        if not (sy > self.flat.eps * abs(gs) and 0 < yy < math.inf and sy > 0):
            state["skipped"] += 1
            return
        order = state["bound_order"]
        slot = order.pop(0) if len(order) == self.m else len(order)
        state["bound_s"][slot].copy_(s)
        state["bound_y"][slot].copy_(y)
        order.append(slot)
        state["bound_theta"] = yy / sy

    # -- the iteration ----------------------------------------------------------------------

    def iterate(
        self,
        closure: Callable[[], Tensor],
        state: dict[str, Any],
        f: float,
        budget: int,
        group: dict[str, Any],
    ) -> LineSearchResult:
        """One iteration from x (feasible) with the gradient in ``state["g"]``; ends with the
        parameters, ``state["g"]`` and the closure's last evaluation at the new point."""
        g = state["g"]
        x = self.flat.gather(out=state["x0"])
        pg_max = self.constraint.projected_gradient(x, g).abs().max().item()
        if not math.isfinite(pg_max):
            raise StepFailed("diverged", f"the gradient is not finite (|P(x - g) - x| = {pg_max})")
        if pg_max == 0:
            return LineSearchResult(0.0, f, 0.0, 0, True, "projected gradient is zero")
        curved = bool(state["bound_order"])
        res = self._attempt(closure, state, x, f, curved, budget, group, pg_max)
        if res.t == 0 and curved:
            self.reset(state)
            state["resets"] += 1
            retry = self._attempt(
                closure, state, x, f, False, max(budget - res.nfev, min(budget, MAX_EVALS)),
                group, pg_max,
            )  # fmt: skip
            res = LineSearchResult(
                retry.t, retry.f, retry.dphi, res.nfev + retry.nfev, retry.success,
                f"{retry.message} (after the quasi-Newton direction failed: {res.message})",
            )  # fmt: skip
        if res.t == 0:
            raise StepFailed(
                "line_search_failed",
                f"LBFGS (bounded): no lower f along the projected steepest-descent path: "
                f"{res.message}. The parameters stay at the best point (f = {f:.10g}).",
            )
        x_new = self.flat.gather()
        g_new = state["g_next"]
        self.store(state, x_new - x, g_new - g, g)
        state["g_prev"], state["g"], state["g_next"] = g, g_new, state["g_prev"]
        return res

    def _attempt(
        self,
        closure: Callable[[], Tensor],
        state: dict[str, Any],
        x: Tensor,
        f: float,
        curved: bool,
        budget: int,
        group: dict[str, Any],
        pg_max: float,
    ) -> LineSearchResult:
        g, d = state["g"], state["d"]
        lr = group["lr"]
        if not isinstance(self.constraint, Box):
            alpha = 1.0 / state["bound_theta"] if curved else lr / pg_max
            torch.sub(self.constraint.project(x - alpha * g), x, out=d)
            dphi0 = torch.dot(g, d).item()
            phi = LineFunction(closure, self.flat, x, d, f, grad=state["g_next"])
            return search(phi, f, dphi0, 1.0, "backtracking", max_evals=budget, c1=group["c1"])
        lower, upper = self.constraint.lower(x), self.constraint.upper(x)
        free = _free(x, g, lower, upper, min(ACTIVE_EPSILON, pg_max))
        if not (curved and self._direction(state, g, free, d)):
            torch.neg(g, out=d)
            curved = False
        dphi0 = torch.dot(g, d).item()
        t0 = lr if curved else lr / math.sqrt(torch.dot(d, d).item())
        t_bound = _step_to_bound(x, d, lower, upper)
        if t_bound >= t0:
            method = group.get("line_search_fn") or "backtracking"
            options: dict[str, float] = {"c1": group["c1"]}
            if method == "strong_wolfe":
                options.update(c2=group["c2"], t_max=t_bound)
            phi = LineFunction(closure, self.flat, x, d, f, grad=state["g_next"])
            res = search(phi, f, dphi0, t0, method, max_evals=budget, **options)
            if res.t > 0 and not self.constraint.contains(self.flat.gather()):
                # x + t_bound d overshot a bound by rounding: onto the box, and f there
                return self._arc(closure, state, x, f, res.t, budget - res.nfev, group)
            return res
        return self._arc(closure, state, x, f, t0, budget, group)

    def _direction(self, state: dict[str, Any], g: Tensor, free: Tensor, d: Tensor) -> bool:
        """:math:`d_F = -(Z^\\top B Z)^{-1} g_F`, :math:`d_A = -g_A/\\theta` into ``d``;
        False if the small system is singular or d is no descent direction."""
        order = torch.tensor(state["bound_order"], device=g.device)
        s, y = state["bound_s"][order], state["bound_y"][order]
        theta = state["bound_theta"]
        sy = s @ y.T  # s_i' y_j
        lower = torch.tril(sy, -1)
        middle_inverse = torch.cat(
            [
                torch.cat([-torch.diag(torch.diagonal(sy)), lower.T], 1),
                torch.cat([lower, theta * (s @ s.T)], 1),
            ]
        )
        w_free = torch.cat([y, theta * s]).mul_(free.to(g.dtype))  # W_F' as rows
        try:
            z = torch.linalg.solve(middle_inverse - (w_free @ w_free.T) / theta, w_free @ g)
        except RuntimeError:  # singular: forget the pairs
            return False
        torch.addmv(-g / theta, w_free.T, z, alpha=-1.0 / theta**2, out=d)
        d[~free] = -g[~free] / theta
        dphi0 = torch.dot(g, d).item()
        return math.isfinite(dphi0) and dphi0 < 0

    def _arc(
        self,
        closure: Callable[[], Tensor],
        state: dict[str, Any],
        x: Tensor,
        f: float,
        t0: float,
        budget: int,
        group: dict[str, Any],
    ) -> LineSearchResult:
        """Backtracking on the projection arc :math:`P(x + t d)` from ``t0``, halving t."""
        g, d, grad = state["g"], state["d"], state["g_next"]
        c1, t = group["c1"], t0
        for evals in range(1, max(budget, 1) + 1):
            trial = self.constraint.project(torch.add(x, d, alpha=t))
            self.flat.assign(trial)
            with torch.enable_grad():
                loss = closure()
            self.flat.gather_grad(out=grad)
            f_t, decrease = scalars(torch.as_tensor(loss), torch.dot(g, trial - x))
            if math.isfinite(f_t) and f_t <= f + c1 * decrease and decrease < 0:
                return LineSearchResult(
                    t, f_t, decrease, evals, True, f"Armijo on the arc at t = {t:.6g}"
                )
            if -decrease <= self.flat.eps * abs(f):
                break
            t *= 0.5
        self.flat.assign(x)
        return LineSearchResult(0.0, f, 0.0, evals, False, "no Armijo step on the projection arc")


def _free(x: Tensor, g: Tensor, lower: Tensor, upper: Tensor, epsilon: float) -> Tensor:
    """The coordinates outside the two-metric :math:`\\epsilon`-active set."""
    active = ((x <= lower + epsilon) & (g > 0)) | ((x >= upper - epsilon) & (g < 0))
    return ~active


def _step_to_bound(x: Tensor, d: Tensor, lower: Tensor, upper: Tensor) -> float:
    """The largest t with :math:`l \\le x + t d \\le u` (inf if d never meets a bound)."""
    room = torch.where(d > 0, (upper - x) / d, torch.where(d < 0, (lower - x) / d, math.inf))
    return max(room.min().item(), 0.0)
