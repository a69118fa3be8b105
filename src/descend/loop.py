"""The descent loop: evaluate, step, record, test, call back; the one loop every run uses."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from descend.callbacks import Callback
from descend.objective import Objective
from descend.optim.optimizer import StepFailed
from descend.result import History, OptimizeResult, Status
from descend.stopping import StoppingCriteria, divergence_message, max_iter_message


def run_descent(
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    stopping: StoppingCriteria,
    *,
    callbacks: Sequence[Callback] = (),
    record: bool = False,
    present: Callable[[list[Tensor]], Any] | None = None,
    method: str = "",
) -> OptimizeResult:
    """Minimize ``objective`` over its parameters with ``optimizer`` until ``stopping`` says so.

    Each iteration takes one optimizer step (which may evaluate the objective several
    times), then measures f, the gradient norm and the step norm at the new point, appends
    them to the history, and applies the stopping tests. f and the gradient at the current
    point are evaluated once per iteration; the optimizer's own call of the closure at that
    point reuses it.

    On divergence (non-finite or exploding f), on a failed step, and on any stop that is
    not convergence, the parameters are set back to the best iterate seen and the result
    reports that point. ``present`` turns the parameter list into the result's ``x``.
    """
    params = objective.params
    present = present or _default_present
    clock = time.perf_counter
    start = clock()
    history = History(record_x=record)

    f_t = objective.closure()
    f, g = _floats(f_t, _grad_norm(params))
    f0 = f
    iterates = _Iterates(params, f, g)
    history.append(_row(0, f, g, math.nan, optimizer, 0.0, objective), _snapshot(params, record))

    def intermediate(nit: int, f: float, g: float, status: Status, message: str) -> OptimizeResult:
        return OptimizeResult(
            x=present(params),
            fun=f,
            grad_norm=g,
            nit=nit,
            nfev=objective.nfev,
            njev=objective.njev,
            nhev=objective.nhev,
            status=status,
            message=message,
            history=history,
            method=method,
            time=clock() - start,
        )

    for cb in callbacks:
        cb.on_begin(intermediate(0, f, g, Status.RUNNING, "starting"))

    nit = 0
    f_prev = f
    calm_f = calm_x = 0  # consecutive iterations meeting ftol, xtol
    outcome = stopping.at_point(f, g, 0)
    while outcome is None:
        if nit >= stopping.max_iter:
            outcome = Status.MAX_ITER, max_iter_message(stopping.max_iter, g, stopping.gtol)
            break
        iterates.before_step()
        try:
            optimizer.step(objective)
        except StepFailed as failure:
            outcome = Status(failure.status), failure.message
            break
        nit += 1
        f_t = objective.closure()
        f, g, s = _floats(f_t, _grad_norm(params), iterates.step_norm())
        elapsed = clock() - start
        history.append(_row(nit, f, g, s, optimizer, elapsed, objective), _snapshot(params, record))

        best = iterates.best
        if not (math.isfinite(f) and math.isfinite(g)):
            what = "f" if not math.isfinite(f) else "the gradient norm"
            value = f if not math.isfinite(f) else g
            outcome = (
                Status.DIVERGED,
                divergence_message(value, best.f, nit - best.nit, _lr(optimizer), what),
            )
            break
        if f < best.f:
            iterates.new_best(f, g, nit)
        elif stopping.diverging(f, best.f, f0):
            outcome = Status.DIVERGED, divergence_message(f, best.f, nit - best.nit, _lr(optimizer))
            break

        outcome = stopping.at_point(f, g, nit)
        if outcome is not None:
            break
        calm_f = calm_f + 1 if stopping.ftol > 0 and stopping.ftol_met(f_prev, f) else 0
        calm_x = calm_x + 1 if stopping.xtol > 0 and _xtol_met(stopping, s, params) else 0
        f_prev = f
        if calm_f >= stopping.patience:
            outcome = (
                Status.FTOL,
                (f"relative change of f <= ftol {stopping.ftol:g} for {calm_f} iteration(s)"),
            )
            break
        if calm_x >= stopping.patience:
            outcome = (
                Status.XTOL,
                (f"step norm {s:.3g} <= xtol {stopping.xtol:g} for {calm_x} iteration(s)"),
            )
            break
        if stopping.max_time is not None and elapsed >= stopping.max_time:
            outcome = (
                Status.MAX_TIME,
                (
                    f"stopped at max_time = {stopping.max_time:g} s after {nit} iterations "
                    f"(gradient norm {g:.3g})"
                ),
            )
            break
        if callbacks:
            # the intermediate result only for callbacks that want this step (monitors
            # checking every N steps do not), so they cost no result per step
            wanted = [cb for cb in callbacks if cb.on_iteration(nit)]
            if wanted and _any_stop(wanted, intermediate(nit, f, g, Status.RUNNING, "running")):
                outcome = Status.CALLBACK, f"a callback stopped the run after {nit} iterations"
                break

    status, message = outcome
    best = iterates.best
    if not status.converged and not f <= best.f:  # also when f is NaN
        iterates.restore_best()
        objective.forget()
        f, g = best.f, best.g
        message = message.rstrip(".") + (
            f". Returned the best iterate (iteration {best.nit}, f = {f:.6g})."
        )
    result = intermediate(nit, f, g, status, message)
    for cb in callbacks:
        cb.on_end(result)
    return result


class _Best:
    """f, gradient norm and iteration of the lowest-f iterate seen."""

    def __init__(self, f: float, g: float, nit: int) -> None:
        self.f, self.g, self.nit = f, g, nit


class _Iterates:
    """The previous iterate (for the step norm) and the best one, at one copy per iteration.

    The best iterate lives in one of three places: the parameters themselves (it is the
    current point), ``prev`` (it was the point before this step), or ``saved``. A new best
    costs no copy; only when the loop is about to overwrite ``prev`` while the best lives
    there are the two buffers swapped, which costs no copy either. So a run pays one
    parameter copy per iteration, the one the step norm needs anyway.
    """

    def __init__(self, params: list[Tensor], f: float, g: float) -> None:
        self.params = params
        self.prev = [p.detach().clone() for p in params]
        self.saved = [p.detach().clone() for p in params]
        self.best = _Best(f, g, 0)
        self.where = "params"

    def _data(self) -> list[Tensor]:
        # fresh detached aliases every time: an optimizer may re-point ``p.data``
        return [p.detach() for p in self.params]

    def before_step(self) -> None:
        if self.where == "prev":
            self.prev, self.saved = self.saved, self.prev
            self.where = "saved"
        if len(self.params) == 1:
            self.prev[0].copy_(self.params[0].detach())
        else:
            torch._foreach_copy_(self.prev, self._data())
        if self.where == "params":
            self.where = "prev"

    def step_norm(self) -> Tensor:
        """||x_k - x_{k-1}|| as a tensor (no host synchronization)."""
        if len(self.params) == 1:
            return torch.dist(self.params[0].detach(), self.prev[0])
        return _norm(torch._foreach_sub(self._data(), self.prev))

    def new_best(self, f: float, g: float, nit: int) -> None:
        self.best.f, self.best.g, self.best.nit = f, g, nit
        self.where = "params"

    def restore_best(self) -> None:
        if self.where == "params":
            return
        source = self.prev if self.where == "prev" else self.saved
        with torch.no_grad():
            torch._foreach_copy_(self.params, source)
        self.where = "params"


def _xtol_met(stopping: StoppingCriteria, step_norm: float, params: list[Tensor]) -> bool:
    x_norm = _floats(_norm([p.detach() for p in params]))[0]
    return stopping.xtol_met(step_norm, x_norm)


def _any_stop(callbacks: Sequence[Callback], snapshot: OptimizeResult) -> bool:
    stop = False
    for cb in callbacks:
        try:
            stop = bool(cb.on_step(snapshot)) or stop
        except StopIteration:
            stop = True
    return stop


def _norm(tensors: list[Tensor]) -> Tensor:
    if len(tensors) == 1:
        return torch.linalg.vector_norm(tensors[0])
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tensors)))


def _grad_norm(params: list[Tensor]) -> Tensor:
    if len(params) == 1 and params[0].grad is not None:
        return torch.linalg.vector_norm(params[0].grad)
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    return _norm(grads)


def _floats(*tensors: Tensor) -> list[float]:
    """One host synchronization for several scalars."""
    if tensors[0].device.type == "cpu":
        return [t.item() for t in tensors]
    return torch.stack([t.detach().double() for t in tensors]).tolist()


def _lr(optimizer: torch.optim.Optimizer) -> float | None:
    lr = optimizer.param_groups[0].get("lr")
    return float(lr) if isinstance(lr, (int, float)) else None


def _row(nit: int, f: float, g: float, s: float, optimizer: Any, t: float, obj: Objective) -> tuple:
    lr = _lr(optimizer)
    return (nit, f, g, s, math.nan if lr is None else lr, t, obj.nfev, obj.njev)


def _snapshot(params: list[Tensor], record: bool) -> Any:
    if not record:
        return None
    if len(params) == 1:
        return params[0].detach().cpu().numpy().copy()
    return torch.cat([p.detach().reshape(-1) for p in params]).cpu().numpy()


def _default_present(params: list[Tensor]) -> Any:
    if len(params) == 1:
        return params[0].detach().clone()
    return [p.detach().clone() for p in params]
