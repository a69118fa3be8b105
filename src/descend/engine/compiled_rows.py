"""Rows stepped by one compiled kernel: several steps of every block's rule per call.

On a small problem (the playground's two coordinates) a step of a row is nothing but
per-call cost: one forward and backward pass through autograd's engine (~130 us however
few the numbers) and, per rule, a ``step()`` of a dozen tensor ops (~25 us). The rows
feed (:mod:`descend.engine.rows_feed`) already shares the forward and backward pass
between the rows; this feed also removes the calls. :class:`RaceKernel` is one function,
compiled by ``torch.compile`` (Inductor's C++ loop), that runs ``chunk`` steps of the whole
race::

    for k in range(chunk):
        X_k = stack(x_1, ..., x_K)                       # the iterate of every row
        f_k, G_k = F(X_k), grad F(X_k)                   # F(X) = sum_i f(x_i): one pass
        x_i <- rule_i(x_i, G_k[i], state_i, scalars_i[k])   for every row i

where ``rule_i`` is the kernel of the row's optimizer (:meth:`Optimizer.fused_rule
<descend.optim.optimizer.Optimizer.fused_rule>`, the same function its ``fused=True``
step compiles) and ``scalars_i[k]`` the numbers of step k that the rule computes from
its options and the step count (bias corrections), passed as data so that moving a
learning rate does not compile again. The kernel returns every iterate, f, gradient and
state; :class:`CompiledRowsFeed` hands them to the engine one step at a time, so the loop,
its trackers, tests, messages and the best-state rule are the rows feed's. A row that
stopped is not frozen: the kernel keeps stepping it, the loop reads no more of it, and
the end puts back its iterate and state at its stop.

What it costs: a compile per landscape, set of rules and number of rows, tens of seconds
the first time (Inductor keeps it on disk: seconds in a later process); then about 2.5 us
per row and step, the per-call cost included. Rows take this feed when
their rules have kernels and nothing runs around their steps (:func:`compilable`).
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from descend.engine.feed import Measure, learning_rate
from descend.engine.loop import Engine
from descend.engine.rows_feed import RowBlock, RowsFeed
from descend.optim.flat import FusedRule, Kernel, own_code
from descend.optim.optimizer import Optimizer
from descend.result import OptimizeResult

__all__ = ["CHUNK", "CompiledRowsFeed", "RaceKernel", "compilable", "race_kernel"]

#: steps per call of a race kernel: the call's fixed cost (~60 us: guards, buffers) spread
#: over 8 steps (measured on 6 racers x 1,000 steps: 4 steps a call ~15 ms slower a race;
#: the compile takes 27 s cold at 4, 34 s at 8, and longer chunks waste more steps past a
#: stop)
CHUNK = 8

#: compiled race kernels kept, the least recently used dropped first
KEPT = 16

#: Inductor's options for race kernels: scalar C++ loops (``simdlen`` 1). A race's arrays
#: hold a few numbers, which vector registers would not speed up; and with torch's baseline
#: kernels (``ATEN_CPU_CAPABILITY=default``) Inductor 2.13 writes vector code without the
#: header that declares it, and the compile fails
_OPTIONS: dict[str, Any] = {"cpp.simdlen": 1}

_KERNELS: OrderedDict[tuple[Any, ...], RaceKernel] = OrderedDict()
_LOCK = threading.Lock()
_NAMES = itertools.count()


def compilable(blocks: Sequence[RowBlock]) -> bool:
    """Whether rows can run on a race kernel: every block one row (shape (n,)) of one
    floating dtype, stepped by a descend rule that has a kernel, with no clipping or
    schedule around its steps."""
    dtypes = {b.x.dtype for b in blocks}
    return len(dtypes) == 1 and all(_has_rule(b) for b in blocks)


def _has_rule(block: RowBlock) -> bool:
    """Whether the block's optimizer steps its one row alone, by a rule with a kernel."""
    opt = block.optimizer
    if not (isinstance(opt, Optimizer) and block.x.dim() == 1 and block.controls is None):
        return False
    groups = opt.param_groups
    if len(groups) != 1 or len(groups[0]["params"]) != 1 or groups[0]["params"][0] is not block.x:
        return False
    return opt.fused_rule(groups[0], 1) is not None


class RaceKernel:
    """``chunk`` steps of a race, compiled for one landscape ``fn``, one sequence of
    rules (kernel, flags, number of state tensors, number of scalars), one shape and
    dtype. Calling it before :attr:`ready` compiles it (seconds).

    The rows, their states and their step numbers each travel packed in one tensor, so a
    call checks three inputs, not one per row and state.
    """

    def __init__(
        self,
        fn: Callable[[Tensor], Tensor],
        rules: tuple[tuple[Kernel, tuple[bool, ...], int, int], ...],
        n: int,
        dtype: torch.dtype,
        chunk: int,
    ) -> None:
        self.rules, self.n, self.dtype, self.chunk = rules, n, dtype, chunk
        #: where each row's state tensors and step numbers start in the packed tensors
        self.state_at = _offsets([s for _, _, s, _ in rules])
        self.scalars_at = _offsets([m for _, _, _, m in rules])
        self.ready = False
        #: why compiling failed (it is not tried again), or None
        self.broken: RuntimeError | None = None
        self._lock = threading.Lock()
        self._steps = own_code(
            _race_steps(fn, rules, self.state_at, self.scalars_at, chunk), f"race{next(_NAMES)}"
        )
        # made on the first call, by whoever compiles: torch.compile's first use imports
        # the compiler (seconds), which a race that only asks for the kernel should not pay
        self._compiled: Callable[..., tuple[Tensor, ...]] | None = None

    def __call__(self, x: Tensor, states: Tensor, scalars: Tensor) -> tuple[Tensor, ...]:
        """Run ``chunk`` steps from the rows ``x`` (K, n) and their ``states`` (S, n), both
        updated in place, with the steps' numbers ``scalars`` (chunk, M): the iterates
        (chunk, K, n), f (chunk, K), the gradients (chunk, K, n) and the states after each
        step (chunk, S, n)."""
        # always without autograd: the compiled code is specialized on the grad mode, which
        # is the calling thread's (a compile in a background thread would otherwise not
        # serve a race that calls it under no_grad, and compile again inside the race)
        with torch.no_grad():
            return self._call(x, states, scalars)

    def _call(self, x: Tensor, states: Tensor, scalars: Tensor) -> tuple[Tensor, ...]:
        if self.ready:
            return cast(Callable[..., tuple[Tensor, ...]], self._compiled)(x, states, scalars)
        with self._lock:  # one compile, whoever asks first
            if self.broken is not None:
                raise self.broken
            try:
                if self._compiled is None:
                    self._compiled = torch.compile(
                        self._steps, fullgraph=True, dynamic=False, options=_OPTIONS
                    )
                out = self._compiled(x, states, scalars)
            except Exception as exc:  # no compiler, a landscape the compiler cannot trace
                self.broken = RuntimeError(
                    f"this race cannot be compiled here: {type(exc).__name__}: "
                    f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                )
                raise self.broken from exc
            self.ready = True
        return out

    def warm(self) -> None:
        """Compile now, on zeros of the kernel's shapes (nothing of a run is touched)."""
        if not self.ready:
            zeros = partial(torch.zeros, dtype=self.dtype)
            self(
                zeros(len(self.rules), self.n),
                zeros(self.state_at[-1], self.n),
                zeros(self.chunk, self.scalars_at[-1]),
            )


def _offsets(sizes: Sequence[int]) -> list[int]:
    """Where each of consecutive pieces of ``sizes`` starts, and the total last."""
    return [0, *itertools.accumulate(sizes)]


def race_kernel(
    fn: Callable[[Tensor], Tensor], blocks: Sequence[RowBlock], chunk: int = CHUNK
) -> RaceKernel:
    """The race kernel of ``blocks`` (which must be :func:`compilable`) on ``fn``: the
    one already made for the same landscape, rules, shape and dtype, or a new one (not
    yet compiled)."""
    rules = []
    for block in blocks:
        opt = cast(Optimizer, block.own_optimizer())
        rule = cast(FusedRule, opt.fused_rule(opt.param_groups[0], 1))
        states = len(opt.kernel_state(block.x)[1])
        rules.append((rule.kernel, rule.flags, states, len(rule.scalars)))
    n, dtype = blocks[0].x.shape[0], blocks[0].x.dtype
    key = (fn, tuple(rules), n, dtype, chunk)
    with _LOCK:
        kernel = _KERNELS.get(key)
        if kernel is None:
            kernel = _KERNELS[key] = RaceKernel(fn, tuple(rules), n, dtype, chunk)
            while len(_KERNELS) > KEPT:
                _KERNELS.popitem(last=False)
        _KERNELS.move_to_end(key)
    return kernel


def _race_steps(
    fn: Callable[[Tensor], Tensor],
    rules: tuple[tuple[Kernel, tuple[bool, ...], int, int], ...],
    state_at: list[int],
    scalars_at: list[int],
    chunk: int,
) -> Callable[[Tensor, Tensor, Tensor], tuple[Tensor, ...]]:
    """The function a :class:`RaceKernel` compiles: ``chunk`` steps of every row."""

    def total_and_values(points: Tensor) -> tuple[Tensor, Tensor]:
        values = fn(points)
        return values.sum(), values

    def race_steps(x: Tensor, states: Tensor, scalars: Tensor) -> tuple[Tensor, ...]:
        points, values, grads, kept = [], [], [], []
        for k in range(chunk):
            at = x.clone()
            grad, f = torch.func.grad(total_and_values, has_aux=True)(at)
            points.append(at)
            values.append(f)
            grads.append(grad)
            for i, (kernel, flags, _, _) in enumerate(rules):
                # the step's numbers as 0-d tensors: data to the compiled code, not constants
                numbers = scalars[k, scalars_at[i] : scalars_at[i + 1]].unbind()
                own = states[state_at[i] : state_at[i + 1]].unbind()
                kernel([x[i], grad[i], *own], cast(tuple[float, ...], numbers), flags)
            kept.append(states.clone())
        return torch.stack(points), torch.stack(values), torch.stack(grads), torch.stack(kept)

    return race_steps


class CompiledRowsFeed(RowsFeed):
    """A rows feed of :func:`compilable` one-row blocks whose steps a :class:`RaceKernel`
    takes, ``kernel.chunk`` at a time; the loop sees each step as the rows feed gives it.

    Args:
        batch_fn: f of every row of a (K, n) tensor, as for :class:`RowsFeed`.
        blocks: the rows, each with its optimizer and tolerances.
        kernel: :func:`race_kernel` of ``blocks`` on ``batch_fn``.
        record, present, record_state: as for :class:`RowsFeed`.
    """

    def __init__(
        self,
        batch_fn: Callable[[Tensor], Tensor],
        blocks: Sequence[RowBlock],
        kernel: RaceKernel,
        *,
        record: bool = False,
        present: Callable[[Tensor], Any] = lambda t: t.detach().clone(),
        record_state: bool = False,
    ) -> None:
        super().__init__(
            batch_fn, None, None, record=record, present=present, blocks=blocks,
            record_state=record_state,
        )  # fmt: skip
        self.kernel = kernel
        self.rules = [cast(Optimizer, b.own_optimizer()) for b in self.blocks]
        kernel_states = [opt.kernel_state(b.x) for opt, b in zip(self.rules, self.blocks)]
        self.state_keys = [keys or None for keys, _ in kernel_states]
        #: the optimizers' own state tensors, written back at the end
        self.rule_states = [tensors for _, tensors in kernel_states]
        self.first_step = [int(opt.state[b.x]["step"]) for opt, b in zip(self.rules, self.blocks)]
        # what the kernel steps: the rows and every row's state, each packed in one tensor
        self.rows_now = self.at.clone()
        every = [t for tensors in self.rule_states for t in tensors]
        self.packed_states = torch.stack(every) if every else self.at.new_zeros(0, self.n)
        self.start_states = self.packed_states.clone()
        self.rates = [learning_rate(opt) for opt in self.rules]
        self.done = 0  # steps the kernel has taken
        #: per call of the kernel: the iterates, the tests' columns and the states
        self.chunks: list[tuple[Tensor, np.ndarray, Tensor]] = []
        self.stopped_at: list[int] = []  # each row's steps, known at the end

    def measure(self, loop: Engine) -> Measure:
        k = loop.nit
        if k >= self.done:
            self._advance()
        points, table, _ = self.chunks[k // self.kernel.chunk]
        j = k % self.kernel.chunk
        self.at = points[j]
        return self.measured(loop, table[:, j])

    def _advance(self) -> None:
        """The next ``chunk`` steps of every row, through the kernel."""
        chunk, start = self.kernel.chunk, self.done
        rules = [
            (opt.fused_rule, opt.param_groups[0], first)
            for opt, first in zip(self.rules, self.first_step)
        ]
        numbers = [
            [
                v
                for rule, group, first in rules
                for v in cast(FusedRule, rule(group, first + step)).scalars
            ]
            for step in range(start + 1, start + chunk + 1)
        ]
        scalars = torch.tensor(numbers, dtype=torch.float64)
        previous = self.chunks[-1][0][-1] if self.chunks else self.at
        points, values, grads, states = self.kernel(self.rows_now, self.packed_states, scalars)
        before = torch.cat([previous[None], points[:-1]])
        self.chunks.append((points, self.columns(values, grads, points, before), states))
        self.done += chunk

    def step(self, optimizer: torch.optim.Optimizer, active: list[int]) -> None:
        return None  # the kernel has taken the step: measure reads it

    def _rates(self, loop: Engine) -> list[float]:
        return self.rates  # nothing moves them: no schedule runs around a kernel's steps

    def state_trace(self, k: int) -> Tensor | None:
        if not (self.record_state and self.state_keys[k] and self.stopped_at):
            return None
        at = self.kernel.state_at
        every = torch.cat([states[:, at[k] : at[k + 1]] for _, _, states in self.chunks])
        return every[: self.stopped_at[k]]

    def results(self, loop: Engine) -> list[OptimizeResult]:
        """Each row's iterate and state back at its stop (the best iterate where the loop
        restored it), then the rows feed's results."""
        at = self.kernel.state_at
        with torch.no_grad():
            for i, (block, opt) in enumerate(zip(self.blocks, self.rules)):
                steps = loop.stopped_at[i]
                if not loop.restored[i]:
                    k, j = divmod(steps, self.kernel.chunk)
                    block.x.copy_(self.chunks[k][0][j, i])
                if steps == 0:
                    states = self.start_states
                else:
                    k, j = divmod(steps - 1, self.kernel.chunk)
                    states = self.chunks[k][2][j]
                for tensor, value in zip(self.rule_states[i], states[at[i] : at[i + 1]]):
                    tensor.copy_(value)
                opt.state[block.x]["step"] = self.first_step[i] + steps
        self.stopped_at = list(loop.stopped_at)
        return super().results(loop)
