"""The function feed: one objective over a list of parameters (``minimize``, lr sweeps)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from descend.callbacks import Callback, CallbackList
from descend.constraints import Constraint
from descend.engine.feed import Measure, host, norm_of, step_tests
from descend.engine.iterates import Iterates
from descend.engine.loop import Engine
from descend.engine.step_controls import StepControls
from descend.engine.stopping import StoppingCriteria
from descend.objective import Objective
from descend.optim.capabilities import capabilities
from descend.optim.proximal import proximal_gradient_mapping
from descend.result import History, OptimizeResult, Status


class FunctionFeed:
    """Measures f, the gradient and the step at the iterate itself (an exact feed).

    f and the gradient come from the :class:`~descend.objective.Objective`, whose cache
    makes the optimizer's own call of the closure at the same point free. With
    ``maximize=True`` (the rule ascends) the loop's tests and best point read :math:`-f`,
    so the best iterate is the highest; the history and the result keep f itself. For a proximal
    rule (``capabilities(optimizer).proximal``) the gradient test reads the proximal
    gradient mapping :math:`\\|x_{k-1} - x_k\\|/\\eta` instead of the gradient.

    With a feasible set :math:`C` (``constraint``), the gradient norm recorded and tested is
    the projected gradient's, :math:`\\|P_C(x - \\nabla f(x)) - x\\|` (zero exactly at a
    constrained stationary point; with ``gtol_norm=inf`` SciPy's L-BFGS-B ``pgtol``), each
    parameter tensor projected on its own; with ``project_steps`` every step is followed by
    the projection :math:`x \\leftarrow P_C(x)` (projected gradient descent for the
    first-order rules; a rule that keeps its iterates feasible itself needs none).

    ``controls`` clip the gradient before each step and step a learning-rate schedule
    after it (:class:`~descend.engine.step_controls.StepControls`); the gradient norm
    recorded and tested is the one before clipping.
    """

    rows = 1
    exact = True

    def __init__(
        self,
        objective: Objective,
        optimizer: torch.optim.Optimizer,
        stopping: StoppingCriteria,
        *,
        record: bool = False,
        present: Callable[[list[Tensor]], Any] | None = None,
        method: str = "",
        maximize: bool = False,
        constraint: Constraint | None = None,
        project_steps: bool = False,
        controls: StepControls | None = None,
    ) -> None:
        self.objective, self.stopping, self.method = objective, stopping, method
        self.constraint = constraint
        self.project_steps = project_steps and constraint is not None
        self.sign = -1.0 if maximize else 1.0
        self.objective_name = "-f" if maximize else "f"
        # what the gradient tests and messages read: on a set, P(x - g) - x
        self.gradient_name = "gradient" if constraint is None else "projected gradient"
        self.params = objective.params
        self.present = present or _default_present
        self.iterates = Iterates(self.params)
        self.history = History(record_x=record)
        self.proximal = capabilities(optimizer).proximal
        self._previous: list[list[Tensor]] | None = None
        self.controls = controls or StepControls()
        self._f = math.nan  # the loop's objective at the iterate the next step starts from

    @property
    def nfev(self) -> int:
        return self.objective.nfev

    def measure(self, loop: Engine) -> Measure:
        s, params = self.stopping, self.params
        f_t = self.objective.closure()
        if len(params) == 1 and params[0].grad is not None:
            grads = [params[0].grad]
        else:
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        if self.constraint is not None:
            grads = [self.constraint.projected_gradient(p, g) for p, g in zip(params, grads)]
        tensors = [f_t, norm_of(grads)]  # all read back with one host synchronization
        if self.proximal:
            if self._previous is not None:
                tensors.append(proximal_gradient_mapping(loop.optimizer, self._previous))
        elif s.gtol_norm != 2.0:
            tensors.append(norm_of(grads, s.gtol_norm))
        tested = len(tensors) == 3  # the gradient test reads its own norm
        moved = loop.nit > 0
        if moved and s.xtol == 0 and len(params) == 1:  # the step norm alone: one op
            tensors.append(torch.dist(params[0].detach(), self.iterates.prev[0]))
        elif moved:
            diff = self.iterates.step()
            tensors.append(norm_of(diff))
            if s.xtol > 0:
                tensors.extend(step_tests(s, diff, self.iterates.data()))
        v = host(*tensors)
        f, g = v[0], v[1]
        self._f = self.sign * f
        # a proximal run's stationarity is known after its first step
        g_test = v[2] if tested else (math.inf if self.proximal else g)
        rest = v[3:] if tested else v[2:]
        step_norm = rest[0] if moved else math.nan
        step, x_scale = (rest[1], rest[2]) if moved and s.xtol > 0 else (math.nan, 1.0)
        self.history.append(
            (loop.nit, f, g, step_norm, loop.lr(), loop.elapsed(),
             self.objective.nfev, self.objective.njev),
            self._snapshot() if self.history.record_x else None,
        )  # fmt: skip
        return Measure([self.sign * f], [g], [g_test], [step], [x_scale])

    def exhausted(self, loop: Engine) -> None:
        return None

    def step(self, optimizer: torch.optim.Optimizer, active: list[int]) -> None:
        self.iterates.before_step()
        if self.proximal:
            self._previous = [
                [p.detach().clone() for p in g["params"]] for g in optimizer.param_groups
            ]
        self.controls.step(optimizer, self.params, self._f, self.objective)
        if self.project_steps:
            assert self.constraint is not None
            for p in self.params:
                self.constraint.project_(p)

    def after_step(self, loop: Engine) -> None:
        loop.measure()  # callbacks and monitors read x_{k+1}'s row

    def epoch_end(self, loop: Engine) -> None:
        return None

    def keep_best(self, rows: list[int]) -> None:
        self.iterates.new_best()

    def restore_best(self, rows: list[int]) -> None:
        self.iterates.restore_best()
        self.objective.forget()
        return None

    def intermediate(self, loop: Engine, status: Status, message: str) -> OptimizeResult:
        m = loop.measure()
        return self._result(loop, self.sign * m.f[0], m.g[0], status, message)

    def result(self, loop: Engine) -> OptimizeResult:
        """The final result, after :meth:`Engine.run`."""
        status, message = loop.outcome(0)
        t = loop.trackers[0]
        f, g = (t.best_f, t.best_g) if loop.restored[0] else (t.last_f, t.last_g)
        return self._result(loop, self.sign * f, g, status, message)

    def _result(
        self, loop: Engine, f: float, g: float, status: Status, message: str
    ) -> OptimizeResult:
        return OptimizeResult(
            x=self.present(self.params),
            fun=f,
            grad_norm=g,
            nit=loop.nit,
            nfev=self.objective.nfev,
            njev=self.objective.njev,
            nhev=self.objective.nhev,
            status=status,
            message=message,
            history=self.history,
            method=self.method,
            time=loop.elapsed(),
        )

    def _snapshot(self) -> Any:
        if not self.history.record_x:
            return None
        if len(self.params) == 1:
            return self.params[0].detach().cpu().numpy().copy()
        return torch.cat([p.detach().reshape(-1) for p in self.params]).cpu().numpy()


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
    """Minimize ``objective`` over its parameters with ``optimizer`` until ``stopping`` says
    so: the engine on a :class:`FunctionFeed`. ``present`` turns the parameter list into the
    result's ``x``; the callbacks see every iterate, and their ``on_end`` the result."""
    feed = FunctionFeed(
        objective, optimizer, stopping, record=record, present=present, method=method
    )
    hooks = CallbackList(callbacks)
    engine = Engine(feed, optimizer, stopping, hooks)
    engine.run()
    result = feed.result(engine)
    engine.end(result)
    return result


def _default_present(params: list[Tensor]) -> Any:
    if len(params) == 1:
        return params[0].detach().clone()
    return [p.detach().clone() for p in params]
