r"""The line function of a torch closure, and the base of the line-search methods.

:class:`LineFunction` builds :math:`\phi(t) = f(x_0 + t d)` from a torch closure, a list of
parameters and a flat direction: it moves the parameters in place, calls the closure, and
returns the loss and :math:`\nabla f \cdot d` with one host synchronization per
evaluation, remembering the best point seen. :func:`search` runs a line search of
:mod:`descend.optim.linesearch` over it and leaves the parameters at the accepted point
(with the closure's last evaluation there, so a caching objective does not evaluate it
again) or, on failure, at the best point.

:class:`LineSearchOptimizer` is a descent direction times a search (optimistix's two
axes): BFGS, L-BFGS, nonlinear conjugate gradient and Newton supply the direction, this
base runs the iteration.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from descend.objective import Objective
from descend.optim.capabilities import Capabilities
from descend.optim.flat_params import FlatParams, scalars
from descend.optim.linesearch import (
    MAX_EVALS,
    LineSearchResult,
    fixed_step,
    run_search,
)
from descend.optim.optimizer import StepFailed


class LineFunction:
    r""":math:`\phi(t) = f(x_0 + t d)` and :math:`\phi'(t) = \nabla f(x_0 + t d)^\top d`
    for a torch closure.

    Each call moves the parameters to :math:`x_0 + t d` in place (one kernel), calls the
    closure under ``torch.enable_grad()``, gathers the gradient into :attr:`grad` and
    returns ``(loss, grad . d)`` as floats with one host synchronization. The lowest-f
    point seen (:math:`t = 0` included) is kept in :attr:`best_t`, :attr:`best_f`.

    Args:
        closure: evaluates the loss at the current parameters and fills ``p.grad``.
        flat: the parameters, as :class:`FlatParams`.
        x0: the flat start (a copy: it must not alias the parameters).
        d: the flat direction.
        f0: the loss at ``x0``.
        grad: optional buffer for the gradient (allocated if None).
    """

    def __init__(
        self,
        closure: Callable[[], Tensor],
        flat: FlatParams,
        x0: Tensor,
        d: Tensor,
        f0: float,
        grad: Tensor | None = None,
    ) -> None:
        self.closure = closure
        self.flat = flat
        self.x0 = x0
        self.d = d
        self.grad = flat.empty() if grad is None else grad
        self.t = 0.0  # where the parameters are now
        self.evaluated_t: float | None = None  # where the closure last ran
        self.f = f0
        self.dphi = math.nan
        self.nfev = 0
        self.best_t, self.best_f = 0.0, f0

    def __call__(self, t: float) -> tuple[float, float]:
        self.flat.assign_axpy(self.x0, t, self.d)
        self.t = t
        with torch.enable_grad():
            loss = self.closure()
        self.nfev += 1
        self.flat.gather_grad(out=self.grad)
        if isinstance(loss, Tensor):
            f, dphi = scalars(loss, torch.dot(self.grad, self.d))
        else:
            f, dphi = float(loss), torch.dot(self.grad, self.d).item()
        self.evaluated_t, self.f, self.dphi = t, f, dphi
        if math.isfinite(f) and f < self.best_f:
            self.best_t, self.best_f = t, f
        return f, dphi

    def move_to(self, t: float) -> None:
        """Put the parameters at ``x0 + t d`` without evaluating (``t = 0``: exactly x0)."""
        if t == 0:
            self.flat.assign(self.x0)
        else:
            self.flat.assign_axpy(self.x0, t, self.d)
        self.t = t

    def finish(self, t: float) -> tuple[float, float]:
        """End at step ``t`` with the closure's last evaluation (and :attr:`grad`) there,
        evaluating once more only if the last evaluation was elsewhere."""
        if self.evaluated_t == t and self.t == t:
            return self.f, self.dphi
        return self(t)


def search(
    phi: LineFunction,
    f0: float,
    dphi0: float,
    t0: float = 1.0,
    method: str = "strong_wolfe",
    **options: float,
) -> LineSearchResult:
    r"""Run a line search over ``phi`` and leave the parameters at its outcome.

    On success, and when the search failed but found a lower f (``result.t > 0``), the
    parameters end at ``x0 + t d`` with the closure's last evaluation there (``phi.grad``
    holds the gradient); otherwise they are restored to ``x0`` exactly and the gradient
    buffers no longer describe them.

    Args:
        phi: the :class:`LineFunction` to search along.
        f0, dphi0: :math:`\phi(0)`, :math:`\phi'(0)`.
        t0: first trial step.
        method: ``"strong_wolfe"`` or ``"backtracking"``.
        **options: passed to the search (``c1``, ``c2``, ``shrink``, ``max_evals``, ...),
            which are not validated here: check them once where they are set
            (:func:`~descend.optim.linesearch.check_search_constants`).
    """
    options.setdefault("eps", phi.flat.eps)
    if not 0 < t0 < math.inf:
        t0 = 1.0
    res = run_search(method, phi, f0, dphi0, t0, **options)
    if res.t > 0:
        f, dphi = phi.finish(res.t)
        if res.success or (math.isfinite(f) and f < f0):
            return LineSearchResult(res.t, f, dphi, phi.nfev, res.success, res.message)
    phi.move_to(0.0)
    return LineSearchResult(0.0, f0, dphi0, phi.nfev, False, res.message)


class LineSearchOptimizer(torch.optim.Optimizer):
    r"""Base of the methods that move along a direction chosen by a line search.

    A method is a descent direction times a search (optimistix's two axes). The subclass
    supplies the direction :math:`d_k` (:meth:`_direction`), what it learns from an accepted
    step (:meth:`_accept`), how to forget it (:meth:`_reset`) and, if it wants, the first
    trial step (:meth:`_initial_step`). This base runs one iteration per ``step(closure)``
    (``max_iter`` per step where the subclass has that hyperparameter):

    1. :math:`f_k, g_k` from the closure, flattened into one vector. With descend's
       :class:`~descend.objective.Objective` as the closure, when it has not evaluated since
       this optimizer's last evaluation (which ended at :math:`x_k`), both are reused
       without a copy or a host synchronization.
    2. :math:`d_k` from the subclass. If :math:`\phi'(0) = g_k^\top d_k` is not negative and
       finite, the curvature information is forgotten and :math:`d_k = -g_k`.
    3. A line search from :math:`t_0` (``lr`` for a curvature direction,
       ``lr`` :math:`/\|g_k\|_2` for steepest descent, a step of length ``lr`` as in SciPy's
       L-BFGS-B). It ends with the closure's last evaluation at the accepted point, so the
       descent loop's evaluation there is free.
    4. If the search finds no lower f along a curvature direction (e.g. f is NaN all along
       it), the memory is reset, the parameters go back to :math:`x_k` and the search is
       retried along :math:`-g_k` (with an evaluation budget of its own, at least
       ``min(max_eval, 30)``). If that fails too, the parameters stay at :math:`x_k`
       (the best point seen) and :class:`~descend.optim.StepFailed` is raised with status
       ``"line_search_failed"`` (``"diverged"`` for a fixed step that is not finite).

    A search that runs out of evaluations, or shrinks its interval to rounding, after
    finding a lower f accepts that point: it is progress, even without the curvature
    condition (the quasi-Newton update is then skipped if :math:`s^\top y \le 0`).

    All parameters must be in one parameter group and share dtype and device, as for
    ``torch.optim.LBFGS``.
    """

    capabilities = Capabilities(needs_fixed_batch=True)

    def __init__(self, params: Any, defaults: dict[str, Any]) -> None:
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError(
                f"{type(self).__name__} does not support per-parameter options (parameter "
                f"groups); got {len(self.param_groups)} groups, give one list of parameters"
            )
        self._flat = FlatParams(self.param_groups[0]["params"])
        # (objective, its nfev, f) after this optimizer's last evaluation, if it ended there
        self._known: tuple[Objective, int, float] | None = None

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._known = None
        super().load_state_dict(state_dict)

    # -- the direction axis: overridden by each method ---------------------------------------

    def _init_buffers(self, state: dict[str, Any], n: int) -> None:
        """Allocate the method's own state (called once, before the first direction)."""

    def _direction(self, state: dict[str, Any], g: Tensor, d: Tensor) -> bool:
        """Write the direction into ``d``; return False if it is :math:`-g` (no curvature
        information was used), True otherwise."""
        torch.neg(g, out=d)
        return False

    def _accept(
        self,
        state: dict[str, Any],
        g: Tensor,
        g_new: Tensor,
        d: Tensor,
        dphi0: float,
        res: LineSearchResult,
    ) -> None:
        """Learn from the accepted step :math:`s = t d`, :math:`y = g_{new} - g`."""

    def _reset(self, state: dict[str, Any]) -> None:
        """Forget the curvature information (after a direction or a search failed)."""

    def _initial_step(self, state: dict[str, Any], f: float, dphi0: float, curved: bool) -> float:
        lr = self.param_groups[0]["lr"]
        if curved:
            return lr
        if self.param_groups[0].get("line_search_fn", "strong_wolfe") is None:
            # torch.optim.LBFGS without a line search: lr * min(1, 1/|g|_1)
            g1 = state["g"].abs().sum().item()
            return lr * min(1.0, 1.0 / g1) if g1 > 0 else lr
        return lr / math.sqrt(-dphi0)

    def _search_options(self, group: dict[str, Any]) -> dict[str, float]:
        options = {"c1": group["c1"]}
        if group.get("line_search_fn", "strong_wolfe") == "strong_wolfe":
            options["c2"] = group["c2"]
        return options

    # -- the shared iteration ---------------------------------------------------------------

    @property
    def _state(self) -> dict[str, Any]:
        return self.state[self._flat.params[0]]

    def _prepare(self) -> dict[str, Any]:
        state = self._state
        if "d" not in state:
            flat = self._flat
            for key in ("g", "g_prev", "g_next", "d", "x0"):
                state[key] = torch.zeros(flat.numel, dtype=flat.dtype, device=flat.device)
            state.setdefault("n_iter", 0)
            state.setdefault("func_evals", 0)
            state.setdefault("resets", 0)
            self._init_buffers(state, flat.numel)
        return state

    @torch.no_grad()
    # torch's stub: a closure returns a float; descend's return the loss tensor
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor:  # type: ignore[override]
        """One iteration (``max_iter`` where the method has it); returns the loss at the
        start, like ``torch.optim.LBFGS``. ``closure`` re-evaluates the loss and fills the
        gradients; it is required."""
        if closure is None:
            raise RuntimeError(
                f"{type(self).__name__}.step needs a closure that clears the gradients, "
                "evaluates the loss, calls backward() and returns the loss"
            )
        group = self.param_groups[0]
        state = self._prepare()
        known, self._known = getattr(self, "_known", None), None
        with torch.enable_grad():
            loss = closure()
        if known is not None and known[0] is closure and known[1] == closure.nfev:
            # descend's Objective has not evaluated since this optimizer's last evaluation,
            # which was here: f and the gradient in state["g"] are current
            f = known[2]
        else:
            f = float(loss)
            if not math.isfinite(f):
                raise StepFailed(
                    "diverged",
                    f"f is {f} at the current parameters; no step can be taken from there",
                )
            self._flat.gather_grad(out=state["g"])
        max_iter = group.get("max_iter", 1)
        max_eval = group.get("max_eval") or max_iter * MAX_EVALS
        tol_grad = group.get("tolerance_grad", 0.0)
        tol_change = group.get("tolerance_change", 0.0)
        evals = 1
        for it in range(max_iter):
            if tol_grad > 0 and state["g"].abs().max().item() <= tol_grad:
                break
            if max_eval - evals <= 0:
                break
            res = self._iterate(closure, state, f, max_eval - evals)
            evals += res.nfev
            state["func_evals"] += res.nfev
            if res.t == 0:  # zero gradient: nothing to do
                break
            state["n_iter"] += 1
            f_old, f = f, res.f
            if it + 1 < max_iter and tol_change > 0:
                moved = state["d"].abs().max().item() * res.t
                if moved <= tol_change or abs(f - f_old) < tol_change:
                    break
        if isinstance(closure, Objective):
            self._known = (closure, closure.nfev, f)
        return loss

    def _iterate(
        self, closure: Callable[[], Tensor], state: dict[str, Any], f: float, budget: int
    ) -> LineSearchResult:
        """One iteration from the point whose gradient is in ``state["g"]``."""
        g, d = state["g"], state["d"]
        curved = self._direction(state, g, d)
        dphi0 = torch.dot(g, d).item()
        if curved and not (math.isfinite(dphi0) and dphi0 < 0):
            self._forget(state)
            curved = False
        if not curved:
            torch.neg(g, out=d)
            dphi0 = -torch.dot(g, g).item()
        if not math.isfinite(dphi0):
            raise StepFailed(
                "diverged", f"the gradient is not finite (|g|^2 = {-dphi0}); no step can be taken"
            )
        if dphi0 == 0:
            return LineSearchResult(0.0, f, 0.0, 0, True, "zero gradient: nothing to do")
        x0 = self._flat.gather(out=state["x0"])
        res = self._search(closure, state, x0, f, dphi0, curved, budget)
        if res.t == 0 and curved:
            self._forget(state)
            torch.neg(g, out=d)
            dphi0 = -torch.dot(g, g).item()
            # the fallback gets a budget of its own: a search lost in a NaN region may have
            # spent all of the step's
            retry_budget = max(budget - res.nfev, min(budget, MAX_EVALS))
            retry = self._search(closure, state, x0, f, dphi0, False, retry_budget)
            res = LineSearchResult(
                retry.t,
                retry.f,
                retry.dphi,
                res.nfev + retry.nfev,
                retry.success,
                f"{retry.message} (after the quasi-Newton direction failed: {res.message})",
            )
        if res.t == 0:
            fixed = self.param_groups[0].get("line_search_fn", "strong_wolfe") is None
            raise StepFailed(
                "diverged" if fixed else "line_search_failed",
                f"{type(self).__name__}: the line search found no lower f along the "
                f"steepest-descent direction: {res.message}. The parameters stay at the "
                f"best point (f = {f:.10g}).",
            )
        self._accept(state, g, state["g_next"], d, dphi0, res)
        state["g_prev"], state["g"], state["g_next"] = g, state["g_next"], state["g_prev"]
        return res

    def _forget(self, state: dict[str, Any]) -> None:
        state["resets"] += 1
        self._reset(state)

    def _search(
        self,
        closure: Callable[[], Tensor],
        state: dict[str, Any],
        x0: Tensor,
        f: float,
        dphi0: float,
        curved: bool,
        budget: int,
    ) -> LineSearchResult:
        group = self.param_groups[0]
        t0 = self._initial_step(state, f, dphi0, curved)
        phi = LineFunction(closure, self._flat, x0, state["d"], f, grad=state["g_next"])
        method = group.get("line_search_fn", "strong_wolfe")
        if method is None:
            res = fixed_step(phi, f, dphi0, t0)
            if res.t == 0:
                phi.move_to(0.0)
            return res
        options = self._search_options(group)
        return search(phi, f, dphi0, t0, method, max_evals=budget, **options)
