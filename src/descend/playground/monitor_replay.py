"""The health monitors of a run, replayed after it along its recorded iterates.

A race runs its racers as rows of one feed, without callbacks, so that one step of the
loop serves them all. What ``descend.minimize`` would have diagnosed comes afterwards: the
monitors see the same sequence of events as in a run of their own. At each iteration k a
monitor asks for (its ``wake``), the history holds rows 0..k, the parameter is
:math:`x_k` with its gradient :math:`\\nabla f(x_k)` in ``grad``, and the optimizer's
learning rate is the one recorded at k (a schedule moves it), so the monitor reads the
same point, gradient, history and learning rate as it would during the run. At the
end the final result goes through the engine's ``end`` (the monitors' last look, and a
"converged" status at a saddle point turned into ``saddle``).

What the run already knows is not computed again: the gradients at all iterates come
from one batched autodiff call (:func:`path_gradients`), the history is the recorded one
shown up to row k, and the replay jumps from one wake to the next. Whatever a monitor
asks beyond that (Hessian-vector products, the objective's ``loss_fn`` at the current
point) is evaluated for real.

The replay needs the objective to be deterministic (a monitor's extra evaluations of a
noisy gradient would draw noise the run itself drew): races with gradient noise run each
racer through ``minimize`` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

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

__all__ = ["RecordedPrefix", "path_gradients", "replay_monitors"]

#: the learning rate's place in a history row
LR = HISTORY_COLUMNS.index("lr")


def path_gradients(fn: Callable[[Tensor], Tensor], path: Tensor) -> Tensor:
    r"""The gradient of ``fn`` at every row of ``path`` (shape ``(T, n)``), in one batched
    autodiff call: :math:`\nabla_{x} \sum_k f(x_k)` has row k equal to
    :math:`\nabla f(x_k)`, as ``fn`` takes rows (shape ``(..., n)`` to ``(...)``).

    On the playground's 2-D problems and formulas this is, bit for bit, the gradient of
    ``fn`` at each point alone (tested). Where batched kernels round differently from
    single ones (a slice of an n-D problem reduces and multiplies over more coordinates)
    the two can differ in the last bits, as the race's own batched steps differ from
    ``minimize``'s: a monitor's evidence may then differ from the single evaluation's in
    its last bits.

    Example:
        >>> path_gradients(lambda x: (x**2).sum(-1), torch.tensor([[1.0, 2.0], [3.0, 0.0]]))
        tensor([[2., 4.],
                [6., 0.]])
    """
    x = path.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        fn(x).sum().backward()
    assert x.grad is not None
    return x.grad


class RecordedPrefix:
    """A recorded history as a monitor saw it during the run: its first ``length`` rows.

    The monitors read a history through ``len`` and ``rows(start, stop)``
    (:class:`descend.monitors.monitor.HistoryView`); this one shows rows
    ``0..length - 1`` of ``history``, so the replay moves to iteration k by setting
    ``length = k + 1`` instead of appending rows one by one.
    """

    def __init__(self, history: History) -> None:
        self.columns = history.columns
        self._rows = history.rows()
        self.length = 0

    def __len__(self) -> int:
        return self.length

    def rows(self, start: int = 0, stop: int | None = None) -> list[tuple[float, ...]]:
        """Rows ``start:stop`` of the first ``length`` rows, with a list's slice rules."""
        shown = range(self.length)[start:stop]
        return self._rows[shown.start : shown.stop]


def replay_monitors(
    fn: Callable[[Tensor], Tensor],
    result: OptimizeResult,
    optimizer: torch.optim.Optimizer,
    feed: RowsFeed,
) -> None:
    """Give ``result`` (a row of ``feed``, recorded with its iterates) the diagnoses, and
    the status at a saddle, of ``minimize``'s default monitors.

    Args:
        fn: f of points given as rows (shape ``(..., n)`` to ``(...)``), as the feed
            evaluated it.
        result: the row's result; its ``history`` holds the iterates.
        optimizer: the row's optimizer (the monitors read its learning rate).
        feed: the feed the row ran in (for the engine's end of a run).
    """
    recorded = result.history
    path = torch.from_numpy(np.concatenate(recorded.x).reshape(len(recorded.x), -1))
    grads = path_gradients(fn, path)
    rows = recorded.rows()
    x = path[0].clone().requires_grad_(True)
    point = x.detach()  # x's own storage: writing here moves x, outside autograd
    objective = Objective.from_autograd([x], lambda: fn(x).reshape(()))
    group = CallbackList(monitors_for_run("default"))
    group.bind(objective=objective, optimizer=optimizer)
    history = RecordedPrefix(recorded)
    history.length = 1
    x.grad = grads[0].clone()
    at_start = OptimizeResult(
        x=path[0].numpy().copy(), fun=rows[0][1], grad_norm=rows[0][2], nit=0, nfev=1,
        njev=1, status=Status.RUNNING, message="starting",
        history=cast("History", history),  # the monitors read it through len and rows only
        method=result.method,
    )  # fmt: skip
    _set_lr(optimizer, rows[0][LR])
    group.on_begin(at_start)
    monitors = group.callbacks
    k = 1
    while k < len(rows):
        history.length = k + 1
        _set_lr(optimizer, rows[k][LR])
        point.copy_(path[k])
        x.grad = grads[k].clone()
        for monitor in monitors:
            monitor.on_iteration(k)
        wake = min((getattr(m, "wake", k + 1) for m in monitors), default=NEVER)
        k = max(wake, k + 1)
    history.length = len(rows)
    _set_lr(optimizer, rows[-1][LR])
    final = torch.from_numpy(np.asarray(result.x, dtype=np.float64)).reshape(x.shape)
    point.copy_(final)
    if torch.equal(final, path[-1]):
        x.grad = grads[-1].clone()
    else:  # the best iterate, put back after a divergence
        objective.closure()
    Engine(feed, optimizer, feed.stopping, group).end(result)


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Put the recorded learning rate back where the rule keeps a number (not a tensor)."""
    for group in optimizer.param_groups:
        held = group.get("lr")
        if isinstance(held, (int, float)) and not isinstance(held, bool):
            group["lr"] = lr
