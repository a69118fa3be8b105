"""The rows feed: K independent problems as the rows of one (K, n) tensor.

For an elementwise rule (``capabilities(optimizer).elementwise``) one optimizer over a
(K, n) tensor X with objective :math:`F(X) = \\sum_k f(x_k)` moves every row exactly as it
would move alone, since :math:`\\partial F / \\partial x_k = \\nabla f(x_k)`. Each row has
its own tracker in the loop; a row that stopped is frozen (its gradient zeroed before the
step and its value put back after it) while the others go on.

Rows may also come in blocks (:class:`RowBlock`), each a leaf tensor with its own
optimizer and its own tolerances: a race of different methods. F is then evaluated once
on the rows of all blocks stacked, so one forward and one backward pass serve every
block, and each block's optimizer steps its own leaf, as it would in a run of its own.
A block whose leaf is one row of shape (n,) holds state of the same shape as a
``minimize`` run, so any rule that steps without a closure (not only elementwise ones)
follows its own iterates there, and may bring its gradient clipping and learning-rate
schedule (:class:`~descend.engine.step_controls.StepControls`), applied around its steps as
the function feed applies them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from descend.engine.feed import Measure, learning_rate
from descend.engine.loop import Engine
from descend.engine.step_controls import StepControls
from descend.engine.stopping import StoppingCriteria, Tracker, describe
from descend.result import History, OptimizeResult, Status

#: what every block of one feed must share: the loop's budget and what the feed measures
SHARED = ("max_iter", "max_time", "max_fev", "gtol_norm", "xtol_rule")


@dataclass
class RowBlock:
    """Rows of a feed stepped by their own optimizer under their own tolerances.

    Attributes:
        x: the leaf tensor the optimizer steps: one row, shape (n,), or k rows, (k, n).
        optimizer: steps ``x`` (None: the engine's optimizer, the single-block form).
        stopping: the rows' tests (gtol, ftol, xtol, patience, target, divergence); the
            fields of :data:`SHARED` must be the same in every block of a feed.
        method: the method name the rows' results carry.
        controls: gradient clipping before each step and a schedule after it (one-row
            blocks only: a clipping norm is the row's own); None: neither.
    """

    x: Tensor
    optimizer: torch.optim.Optimizer | None
    stopping: StoppingCriteria
    method: str = ""
    controls: StepControls | None = None

    def own_optimizer(self) -> torch.optim.Optimizer:
        """``optimizer`` where the blocks' form runs: there every block brings one
        (:func:`run_rows` checks)."""
        return cast(torch.optim.Optimizer, self.optimizer)


class RowTracker(Tracker):
    """A row's tracker whose divergence message advises on its own block's learning rate
    (the loop's ``lr`` reads the first optimizer only)."""

    def __init__(self, stopping: StoppingCriteria, lr: Callable[[], float]) -> None:
        super().__init__(stopping)
        self.own_lr = lr

    def observe(
        self, f: float, g: float, nit: int, lr: Callable[[], float | None]
    ) -> tuple[Any, bool]:
        return super().observe(f, g, nit, self.own_lr)


class RowsFeed:
    """Measures all K rows at once (an exact feed); keeps each row's best point.

    Args:
        batch_fn: ``F(X) -> (K,)``, f of every row of a (K, n) tensor.
        x: the (K, n) leaf the engine's optimizer steps; None when ``blocks`` are given.
        stopping: the tests of every row (the single-block form); with ``blocks``, None
            (each block brings its own).
        record: keep each row's iterates in its history.
        present: turns a row (a tensor) into the result's ``x``.
        method: the method name of the single-block form.
        blocks: the rows as :class:`RowBlock` leaves, each with its optimizer, stacked in
            order; run them with :func:`run_rows`.
        record_state: with ``blocks``, keep after each step the optimizer state of every
            one-row block (its tensors shaped like the row: momentum buffers, moments) in
            :attr:`states`.
    """

    exact = True

    def __init__(
        self,
        batch_fn: Callable[[Tensor], Tensor],
        x: Tensor | None,
        stopping: StoppingCriteria | None,
        *,
        record: bool = False,
        present: Callable[[Tensor], Any] = lambda t: t.detach().clone(),
        method: str = "",
        blocks: Sequence[RowBlock] | None = None,
        record_state: bool = False,
    ) -> None:
        if blocks is None:
            if x is None or stopping is None:
                raise ValueError("give x and stopping, or blocks")
            blocks = [RowBlock(x, None, stopping, method)]
        self.blocks = _checked(blocks)
        self.controls = [block.controls or StepControls() for block in self.blocks]
        self.fn, self.stopping = batch_fn, self.blocks[0].stopping
        self.n = self.blocks[0].x.shape[-1]
        self.spans: list[tuple[int, int]] = []
        for block in self.blocks:
            start = self.spans[-1][1] if self.spans else 0
            self.spans.append((start, start + _rows_of(block.x)))
        self.rows = self.spans[-1][1]
        self.record, self.present = record, present
        # one (K, n) leaf: measured as it is; otherwise the blocks' rows stacked
        self.single = len(self.blocks) == 1 and self.blocks[0].x.dim() == 2
        self.x = self.blocks[0].x if self.single else None
        self.flat_rows = all(b.x.dim() == 1 for b in self.blocks)
        self.xtol = any(b.stopping.xtol > 0 for b in self.blocks)
        self.at = self._stacked().detach()
        self.prev = self.at.clone()
        self.best_x = self.at.clone()  # the single-block form's best rows
        self.best_of = [self.at] * self.rows  # the blocks' form: each row's best measurement
        #: per block, its state after each step, shape (len(state_keys), n) (one-row blocks,
        #: ``record_state``); the names of the rows in ``state_keys``
        self.states: list[list[Tensor]] = [[] for _ in self.blocks]
        self.state_keys: list[tuple[str, ...] | None] = [None] * len(self.blocks)
        self.record_state = record_state
        self.unit_scale = [1.0] * self.rows  # what xtol multiplies when it is off
        self.table: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, list[float], float]] = []
        self.snapshots: list[np.ndarray] = []

    def _stacked(self) -> Tensor:
        if self.single:
            return self.blocks[0].x
        if self.flat_rows:
            return torch.stack([b.x for b in self.blocks])
        return torch.cat([b.x.view(-1, self.n) for b in self.blocks])

    def trackers(self) -> list[Tracker]:
        """One tracker per row, with its block's tolerances and learning rate."""
        return [
            RowTracker(block.stopping, partial(learning_rate, block.own_optimizer()))
            for block, (start, stop) in zip(self.blocks, self.spans)
            for _ in range(start, stop)
        ]

    def measure(self, loop: Engine) -> Measure:
        for block in self.blocks:
            block.x.grad = None
        with torch.enable_grad():
            x = self._stacked()
            values = self.fn(x)
            values.sum().backward()
        grad = x.grad if self.single else self._stacked_grads()
        at = x.detach()
        table = self.columns(values.detach(), cast(Tensor, grad), at, self.prev)
        self.at = at
        return self.measured(loop, table)

    def columns(self, values: Tensor, grad: Tensor, at: Tensor, prev: Tensor) -> np.ndarray:
        """What the tests read, one row of a table per column: f, the gradient's 2-norm,
        the step's 2-norm, then the gradient's ``gtol_norm`` norm, the step by
        ``xtol_rule`` and the scale xtol multiplies, where the tolerances need them. Each
        column has the shape of ``values``: (K,) for the K rows, or (T, K) for T steps."""
        s = self.stopping
        diff = at - prev
        columns = [
            values,
            torch.linalg.vector_norm(grad, dim=-1),
            torch.linalg.vector_norm(diff, dim=-1),
        ]
        if s.gtol_norm != 2.0:
            columns.append(torch.linalg.vector_norm(grad, ord=s.gtol_norm, dim=-1))
        if s.xtol_rule == "mean_abs":
            columns.append(diff.abs().mean(dim=-1))
        elif self.xtol:  # the scale the relative xtol test multiplies
            columns.append(torch.linalg.vector_norm(at, dim=-1).clamp(min=1))
        return torch.stack([c.to(torch.float64) for c in columns]).cpu().numpy()

    def measured(self, loop: Engine, table: np.ndarray) -> Measure:
        """Keep the measurement at ``self.at`` (its :meth:`columns`, shape (c, K)) in the
        rows' record and hand the loop what its tests read."""
        s = self.stopping
        f, g_2, step_norm_2 = table[0], table[1], table[2]
        rest = iter(table[3:])
        g_test = next(rest) if s.gtol_norm != 2.0 else g_2
        step = next(rest) if s.xtol_rule == "mean_abs" else step_norm_2
        x_scale = (
            next(rest).tolist() if s.xtol_rule != "mean_abs" and self.xtol else self.unit_scale
        )
        if loop.nit == 0:
            step_norm_2 = step = np.full(self.rows, np.nan)
            if not np.isfinite(f).all():
                i = int(np.flatnonzero(~np.isfinite(f))[0])
                raise ValueError(
                    f"fun is {f[i]} at start {i} (x = {self.at[i].cpu().tolist()}); "
                    "start from points where f is finite"
                )
        self.table.append((loop.nit, f, g_2, step_norm_2, self._rates(loop), loop.elapsed()))
        if self.record:
            self.snapshots.append(self.at.cpu().numpy().copy())
        return Measure(f.tolist(), g_2.tolist(), g_test.tolist(), step.tolist(), x_scale)

    def _stacked_grads(self) -> Tensor:
        grads = [_grad_of(b.x) for b in self.blocks]
        if self.flat_rows:
            return torch.stack(grads)
        return torch.cat([g.view(-1, self.n) for g in grads])

    def _rates(self, loop: Engine) -> list[float]:
        """Each block's learning rate (the engine's optimizer's for the single-block form)."""
        if self.single:
            return [loop.lr()]
        return [learning_rate(b.own_optimizer()) for b in self.blocks]

    def exhausted(self, loop: Engine) -> None:
        return None

    def step(self, optimizer: torch.optim.Optimizer, active: list[int]) -> None:
        if self.single:
            self._step_masked(optimizer, self.blocks[0].x, active)
            return
        self.prev = self.at  # a fresh tensor each measure: nothing writes it in place
        running = set(active)
        for k, (block, (start, stop)) in enumerate(zip(self.blocks, self.spans)):
            if stop - start == 1:
                if start in running:  # the step is taken from f(x_k), the row's last f
                    f = float(self.table[-1][1][start])
                    self.controls[k].step(block.own_optimizer(), [block.x], f)
                    if self.record_state:
                        self._keep_state(k)
                continue
            frozen = [i - start for i in range(start, stop) if i not in running]
            if len(frozen) == stop - start:
                continue
            with torch.no_grad():
                rows, before = block.x.view(-1, self.n), self.prev[start:stop]
                _grad_of(block.x).view(-1, self.n)[frozen] = 0.0
            block.own_optimizer().step()
            with torch.no_grad():
                rows[frozen] = before[frozen]

    def state_trace(self, k: int) -> Tensor | None:
        """Block k's state after each of its steps, shape (steps, len(state_keys[k]), n);
        None where it kept none (``record_state``, one-row blocks)."""
        kept = self.states[k]
        return torch.stack(kept) if kept and self.state_keys[k] else None

    def _keep_state(self, k: int) -> None:
        """A copy of block k's optimizer state tensors shaped like its row, stacked."""
        block = self.blocks[k]
        state = block.own_optimizer().state[block.x]
        keys = self.state_keys[k]
        if keys is None:  # the names are known after the first step
            keys = self.state_keys[k] = tuple(
                name
                for name, v in state.items()
                if isinstance(v, Tensor) and v.shape == block.x.shape
            )
        if keys:
            self.states[k].append(torch.stack([state[name] for name in keys]))

    def _step_masked(self, optimizer: torch.optim.Optimizer, x: Tensor, active: list[int]) -> None:
        """One step of a (K, n) leaf, its stopped rows frozen."""
        done = torch.ones(self.rows, dtype=torch.bool, device=x.device)
        done[active] = False
        with torch.no_grad():
            _grad_of(x)[done] = 0.0
            self.prev.copy_(x)
        optimizer.step()
        with torch.no_grad():
            x.copy_(torch.where(done[:, None], self.prev, x))

    def after_step(self, loop: Engine) -> None:
        return None

    def epoch_end(self, loop: Engine) -> None:
        return None

    def keep_best(self, rows: list[int]) -> None:
        if self.single:
            self.best_x[rows] = self.at[rows]
            return
        for i in rows:  # ``at`` is never written in place: holding it is the copy
            self.best_of[i] = self.at

    def restore_best(self, rows: list[int]) -> None:
        with torch.no_grad():
            if self.single:
                self.blocks[0].x[rows] = self.best_x[rows]  # the single form's leaf, self.x
                return None
            for i in rows:
                k, start = self._locate(i)
                self.blocks[k].x.view(-1, self.n)[i - start] = self.best_of[i][i]
        return None

    def intermediate(self, loop: Engine, status: Status, message: str) -> None:
        return None

    def results(self, loop: Engine) -> list[OptimizeResult]:
        """One result per row, each with its own history up to where it stopped."""
        final = self._stacked().detach()
        table = self._history_table()
        return [self._result(loop, i, final[i], table) for i in range(self.rows)]

    def _history_table(self) -> dict[str, Any]:
        """The record as arrays: iteration, f, gradient and step norms (steps, K), each
        block's learning rate (steps, blocks), time, and the iterates (steps, K, n)."""
        columns = list(zip(*self.table))
        return {
            "iteration": list(columns[0]),
            "f": np.stack(columns[1]),
            "grad_norm": np.stack(columns[2]),
            "step_norm": np.stack(columns[3]),
            "lr": np.asarray(columns[4], dtype=np.float64),
            "time": list(columns[5]),
            "x": np.stack(self.snapshots) if self.record else None,
        }

    def _locate(self, i: int) -> tuple[int, int]:
        """The index of the block that holds row ``i``, and the block's first row."""
        return next((k, start) for k, (start, stop) in enumerate(self.spans) if start <= i < stop)

    def _result(self, loop: Engine, i: int, x: Tensor, table: dict[str, Any]) -> OptimizeResult:
        nit = loop.stopped_at[i]
        block, _ = self._locate(i)
        status, message = loop.outcome(i)
        history = History(record_x=self.record)
        taken = slice(0, nit + 1)
        counts = [it + 1 for it in table["iteration"][taken]]
        history.extend(
            list(
                zip(
                    table["iteration"][taken],
                    table["f"][taken, i].tolist(),
                    table["grad_norm"][taken, i].tolist(),
                    table["step_norm"][taken, i].tolist(),
                    table["lr"][taken, 0 if self.single else block].tolist(),
                    table["time"][taken],
                    counts,
                    counts,
                )
            ),
            list(table["x"][taken, i]) if self.record else None,
        )
        tracker = loop.trackers[i]
        fun, grad_norm = (
            (tracker.best_f, tracker.best_g)
            if loop.restored[i]
            else (float(self.table[nit][1][i]), float(self.table[nit][2][i]))
        )
        return OptimizeResult(
            x=self.present(x), fun=fun, grad_norm=grad_norm, nit=nit, nfev=nit + 1, njev=nit + 1,
            status=status, message=self._own_words(loop, i, status, message), history=history,
            method=self.blocks[block].method, time=self.table[nit][5],
        )  # fmt: skip

    def _own_words(self, loop: Engine, i: int, status: Status, message: str) -> str:
        """The loop words a budget stop once for all the rows it ends, quoting the first
        row's gradient norm (and tolerance); each row's message quotes its own."""
        s, first, own = self.stopping, loop.trackers[0], loop.trackers[i]
        if i == 0 or s.max_fev is not None:
            return message
        if status is Status.MAX_ITER:
            said = describe(status, max_iter=s.max_iter, g=first.last_g, gtol=s.gtol)
            meant = describe(status, max_iter=s.max_iter, g=own.last_g, gtol=own.stopping.gtol)
        elif status is Status.MAX_TIME:
            nit = loop.stopped_at[i]
            said = describe(status, max_time=s.max_time, nit=nit, g=first.last_g)
            meant = describe(status, max_time=s.max_time, nit=nit, g=own.last_g)
        else:
            return message
        return message.replace(said, meant, 1)


def run_rows(feed: RowsFeed) -> list[OptimizeResult]:
    """Run a feed of :class:`RowBlock` rows on the engine: each row under its block's
    tolerances, the loop's budget the blocks' shared one; one result per row."""
    if any(block.optimizer is None for block in feed.blocks):
        raise ValueError(
            "run_rows needs blocks that bring their optimizers; a feed of one (K, n) leaf "
            "runs as Engine(feed, optimizer, stopping).run()"
        )
    engine = Engine(feed, feed.blocks[0].own_optimizer(), feed.stopping)
    engine.trackers = feed.trackers()
    engine.run()
    return feed.results(engine)


def _grad_of(x: Tensor) -> Tensor:
    """``x.grad``, which measuring the rows has filled."""
    return cast(Tensor, x.grad)


def _rows_of(x: Tensor) -> int:
    return 1 if x.dim() == 1 else x.shape[0]


def _checked(blocks: Sequence[RowBlock]) -> list[RowBlock]:
    blocks = list(blocks)
    if not blocks:
        raise ValueError("blocks is empty; give at least one RowBlock")
    first = blocks[0]
    for k, block in enumerate(blocks):
        if block.controls is not None and block.x.dim() != 1:
            raise ValueError(
                f"blocks[{k}] has controls and {block.x.shape[0]} rows; clipping and "
                "schedules take one-row blocks (x of shape (n,))"
            )
        if block.x.dim() not in (1, 2) or block.x.shape[-1] != first.x.shape[-1]:
            raise ValueError(
                f"blocks[{k}].x must have shape (n,) or (k, n) with n = {first.x.shape[-1]}, "
                f"got {tuple(block.x.shape)}"
            )
        for name in SHARED:
            if getattr(block.stopping, name) != getattr(first.stopping, name):
                raise ValueError(
                    f"blocks[{k}].stopping.{name} is {getattr(block.stopping, name)!r}, "
                    f"blocks[0]'s {getattr(first.stopping, name)!r}: the blocks of one feed "
                    f"share {', '.join(SHARED)}"
                )
    return blocks
