"""The health monitors of a run, replayed after it along its recorded iterates.

A race runs its racers as rows of one feed, without callbacks, so that one step of the
loop serves them all. What ``descend.minimize`` would have diagnosed comes afterwards: the
monitors see the same sequence of events as in a run of their own. For each iteration k
the history grows by row k, and at the iterations a monitor asks for (its ``wake``), the
parameter is set to :math:`x_k` and the objective evaluated there, and the optimizer's
learning rate to the one recorded at k (a schedule moves it), so the monitor reads the
same point, gradient, history and learning rate as it would during the run. At the
end the final result goes through the engine's ``end`` (the monitors' last look, and a
"converged" status at a saddle point turned into ``saddle``).

The replay needs the objective to be deterministic (a monitor's extra evaluations of a
noisy gradient would draw noise the run itself drew): races with gradient noise run each
racer through ``minimize`` instead.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from descend.callbacks import CallbackList
from descend.engine import Engine
from descend.engine.rows_feed import RowsFeed
from descend.monitors import monitors_for_run
from descend.monitors.monitor import NEVER
from descend.objective import Objective
from descend.result import HISTORY_COLUMNS, History, OptimizeResult, Status

__all__ = ["replay_monitors"]

#: the learning rate's place in a history row
LR = HISTORY_COLUMNS.index("lr")


def replay_monitors(
    fn: Callable[[Tensor], Tensor],
    result: OptimizeResult,
    optimizer: torch.optim.Optimizer,
    feed: RowsFeed,
) -> None:
    """Give ``result`` (a row of ``feed``, recorded with its iterates) the diagnoses, and
    the status at a saddle, of ``minimize``'s default monitors.

    Args:
        fn: f of one point, as the run minimized it.
        result: the row's result; its ``history`` holds the iterates.
        optimizer: the row's optimizer (the monitors read its learning rate).
        feed: the feed the row ran in (for the engine's end of a run).
    """
    recorded = result.history
    points = recorded["x"]
    x = torch.tensor(points[0], dtype=torch.float64, requires_grad=True)
    objective = Objective.from_autograd([x], lambda: fn(x).reshape(()))
    group = CallbackList(monitors_for_run("default"))
    group.bind(objective=objective, optimizer=optimizer)
    history = History(record_x=True)
    rows = recorded.rows()
    history.append(rows[0], points[0])
    objective.closure()
    at_start = OptimizeResult(
        x=points[0].copy(), fun=rows[0][1], grad_norm=rows[0][2], nit=0, nfev=1, njev=1,
        status=Status.RUNNING, message="starting", history=history, method=result.method,
    )  # fmt: skip
    _set_lr(optimizer, rows[0][LR])
    group.on_begin(at_start)
    monitors = group.callbacks
    wake = 1
    for k in range(1, len(rows)):
        history.append(rows[k], points[k])
        _set_lr(optimizer, rows[k][LR])
        if k >= wake:
            _move(x, points[k])
            objective.closure()
            for monitor in monitors:
                monitor.on_iteration(k)
            wake = min((getattr(m, "wake", k + 1) for m in monitors), default=NEVER)
    _move(x, np.asarray(result.x))
    objective.closure()
    Engine(feed, optimizer, feed.stopping, group).end(result)


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Put the recorded learning rate back where the rule keeps a number (not a tensor)."""
    for group in optimizer.param_groups:
        held = group.get("lr")
        if isinstance(held, (int, float)) and not isinstance(held, bool):
            group["lr"] = lr


def _move(x: Tensor, point: np.ndarray) -> None:
    with torch.no_grad():
        x.copy_(torch.from_numpy(point))
