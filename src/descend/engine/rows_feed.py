"""The rows feed: K independent problems as the rows of one (K, n) tensor.

For an elementwise rule (``capabilities(optimizer).elementwise``) one optimizer over a
(K, n) tensor X with objective :math:`F(X) = \\sum_k f(x_k)` moves every row exactly as it
would move alone, since :math:`\\partial F / \\partial x_k = \\nabla f(x_k)`. Each row has
its own tracker in the loop; a row that stopped is frozen (its gradient zeroed before the
step and its value put back after it) while the others go on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from descend.engine.feed import Measure
from descend.engine.loop import Engine
from descend.engine.stopping import StoppingCriteria
from descend.result import History, OptimizeResult, Status


class RowsFeed:
    """Measures all K rows at once (an exact feed); keeps each row's best point."""

    exact = True

    def __init__(
        self,
        batch_fn: Callable[[Tensor], Tensor],
        x: Tensor,
        stopping: StoppingCriteria,
        *,
        record: bool = False,
        present: Callable[[Tensor], Any] = lambda t: t.detach().clone(),
        method: str = "",
    ) -> None:
        self.fn, self.x, self.stopping = batch_fn, x, stopping
        self.rows = x.shape[0]
        self.record, self.present, self.method = record, present, method
        self.prev = x.detach().clone()
        self.best_x = x.detach().clone()
        self.table: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, float, float]] = []
        self.snapshots: list[np.ndarray] = []

    def measure(self, loop: Engine) -> Measure:
        x, s = self.x, self.stopping
        x.grad = None
        with torch.enable_grad():
            values = self.fn(x)
            values.sum().backward()
        grad = x.grad
        columns = [values.detach(), torch.linalg.vector_norm(grad, dim=-1)]
        columns.append(torch.linalg.vector_norm(grad, ord=s.gtol_norm, dim=-1))
        diff = x.detach() - self.prev
        columns.append(torch.linalg.vector_norm(diff, dim=-1))
        if s.xtol_rule == "mean_abs":
            columns += [diff.abs().mean(dim=-1), torch.ones_like(columns[0])]
        else:
            columns += [
                diff.norm(dim=-1),
                torch.linalg.vector_norm(x.detach(), dim=-1).clamp(min=1),
            ]
        f, g, g_test, step_norm, step, x_scale = (
            torch.stack([c.to(torch.float64) for c in columns]).cpu().numpy()
        )
        if loop.nit == 0:
            step_norm = step = np.full(self.rows, np.nan)
            if not np.isfinite(f).all():
                i = int(np.flatnonzero(~np.isfinite(f))[0])
                raise ValueError(
                    f"fun is {f[i]} at start {i} (x = {x[i].detach().cpu().tolist()}); "
                    "start from points where f is finite"
                )
        self.table.append((loop.nit, f, g, step_norm, loop.lr(), loop.elapsed()))
        if self.record:
            self.snapshots.append(x.detach().cpu().numpy().copy())
        return Measure(f.tolist(), g.tolist(), g_test.tolist(), step.tolist(), x_scale.tolist())

    def exhausted(self, loop: Engine) -> None:
        return None

    def step(self, optimizer: torch.optim.Optimizer, active: list[int]) -> None:
        x = self.x
        done = torch.ones(self.rows, dtype=torch.bool, device=x.device)
        done[active] = False
        with torch.no_grad():
            x.grad[done] = 0.0
            self.prev.copy_(x)
        optimizer.step()
        with torch.no_grad():
            x.copy_(torch.where(done[:, None], self.prev, x))

    def after_step(self, loop: Engine) -> None:
        return None

    def epoch_end(self, loop: Engine) -> None:
        return None

    def keep_best(self, rows: list[int]) -> None:
        self.best_x[rows] = self.x.detach()[rows]

    def restore_best(self, rows: list[int]) -> None:
        with torch.no_grad():
            self.x[rows] = self.best_x[rows]
        return None

    def intermediate(self, loop: Engine, status: Status, message: str) -> None:
        return None

    def results(self, loop: Engine) -> list[OptimizeResult]:
        """One result per row, each with its own history up to where it stopped."""
        return [self._result(loop, i) for i in range(self.rows)]

    def _result(self, loop: Engine, i: int) -> OptimizeResult:
        nit = loop.stopped_at[i]
        status, message = loop.outcomes[i]  # type: ignore[misc]
        history = History(record_x=self.record)
        for j, (it, f, g, s, lr, t) in enumerate(self.table[: nit + 1]):
            row = (it, float(f[i]), float(g[i]), float(s[i]), lr, t, it + 1, it + 1)
            history.append(row, self.snapshots[j][i] if self.record else None)
        tracker = loop.trackers[i]
        f, g = (
            (tracker.best_f, tracker.best_g)
            if loop.restored[i]
            else (float(self.table[nit][1][i]), float(self.table[nit][2][i]))
        )
        return OptimizeResult(
            x=self.present(self.x.detach()[i]), fun=f, grad_norm=g, nit=nit, nfev=nit + 1,
            njev=nit + 1, status=status, message=message, history=history, method=self.method,
            time=self.table[nit][5],
        )  # fmt: skip
