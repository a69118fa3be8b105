"""Racers as the rows of one feed: every racer whose rule steps without a closure runs in
one engine loop, so each step of the race is one forward and one backward pass for all of
them, then one step of each racer's own optimizer.

Each racer is a leaf of shape (2,), as in its own ``minimize`` run, with the optimizer,
options and stopping rule that ``minimize`` builds for its method
(:func:`descend.scipy_form.translate`), and its gradient clipping and learning-rate
schedule as ``minimize`` builds them (:func:`descend.minimize.step_controls`), so its
iterates, statuses and messages are ``minimize``'s; the health monitors are replayed
afterwards along each racer's recorded iterates (:mod:`descend.playground.monitor_replay`).

Rules that evaluate f more than once per step (line searches, trust regions,
second-order methods) cannot share a step with others; a race runs them through
``minimize`` one by one (:func:`batchable`).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from descend.engine import StoppingCriteria
from descend.engine.compiled_rows import CompiledRowsFeed, RaceKernel, compilable, race_kernel
from descend.engine.rows_feed import RowBlock, RowsFeed, run_rows
from descend.methods import get_method
from descend.minimize import KEYWORDS, step_controls
from descend.optim import capabilities
from descend.playground.monitor_replay import replay_monitors
from descend.result import OptimizeResult
from descend.scipy_form import translate

__all__ = [
    "FIRST_MOMENT",
    "SECOND_MOMENT",
    "Racer",
    "batchable",
    "compile_races",
    "compiling",
    "minimize_call",
    "run_rows_race",
    "wait_for_compiles",
]

#: the optimizer state that is a racer's velocity: the momentum buffer or first moment
FIRST_MOMENT = ("momentum_buffer", "exp_avg")
#: the state that scales each coordinate's gradient by :math:`1 / (\sqrt{v} + \epsilon)`
SECOND_MOMENT = ("exp_avg_sq", "square_avg", "sum")


@dataclass(frozen=True)
class Racer:
    """One runner: a method name of ``descend.methods.METHODS``, its options, and the
    learning-rate schedule and gradient clipping around its steps (``descend.minimize``'s
    ``schedule=`` and ``clip_grad_norm=``; None: none)."""

    method: str
    options: dict[str, Any] = field(default_factory=dict)
    schedule: str | None = None
    clip_grad_norm: float | None = None

    def step_keywords(self) -> dict[str, Any]:
        """The racer's ``minimize`` keywords besides the optimizer's options."""
        given = {"schedule": self.schedule, "clip_grad_norm": self.clip_grad_norm}
        return {k: v for k, v in given.items() if v is not None}


def batchable(method: str) -> bool:
    """Whether a racer of ``method`` can run as a row: one gradient per step, no closure,
    no proximal step (whose stationarity test reads the step, not the gradient)."""
    caps = capabilities(get_method(method).optimizer)
    return not (caps.needs_fixed_batch or caps.second_order or caps.proximal)


def minimize_call(method: str, options: dict[str, Any], steps: int, max_time: float) -> Any:
    """What ``descend.minimize(f, x0, method, max_iter=steps, max_time=max_time,
    **options)`` runs: the method's optimizer options and stopping rule."""
    given = dict(
        max_iter=steps, gtol=None, ftol=None, xtol=None, patience=None, max_time=max_time,
        target=None, divergence_factor=1e6,
    )  # fmt: skip
    return translate(method, None, None, given=given, extra=options, n=2, keywords=KEYWORDS)


def run_rows_race(
    fn: Callable[[Tensor], Tensor],
    start: Sequence[float],
    racers: Sequence[Racer],
    *,
    steps: int,
    max_time: float,
    on_refused: Callable[[int, Exception], Exception],
    monitors: bool = True,
) -> list[tuple[OptimizeResult, dict[str, np.ndarray]]]:
    r"""Run ``racers`` from ``start`` as rows of one feed; per racer its
    result, with its recorded iterates and (``monitors``) its monitors' diagnoses, and its
    motion: ``velocity`` (the momentum buffer or first moment after each step, shape
    (nit, 2)) and ``scale`` (:math:`1/(\sqrt{v} + \epsilon)` per coordinate, from the
    second moment v after each step), where the rule keeps them.

    ``on_refused(i, error)`` turns a racer's refused method or options into the error to
    raise.
    """
    blocks = []
    for i, racer in enumerate(racers):
        try:
            spec = get_method(racer.method)
            call = minimize_call(spec.name, racer.options, steps, max_time)
            x = torch.tensor(list(start), dtype=torch.float64, requires_grad=True)
            optimizer = spec.build([x], call.options)
            controls = step_controls(
                racer.method, racer.schedule, racer.clip_grad_norm, None,
                call.stopping["max_iter"], method=spec.name,
            )  # fmt: skip
            stopping = StoppingCriteria(**call.stopping)
            around = None if controls is None else controls(optimizer)
            blocks.append(RowBlock(x, optimizer, stopping, spec.name, controls=around))
        except (TypeError, ValueError) as exc:
            raise on_refused(i, exc) from None
    kernel, later = _kernel_for(fn, blocks)
    feed = (
        RowsFeed(fn, None, None, record=True, present=_as_array, blocks=blocks, record_state=True)
        if kernel is None
        else CompiledRowsFeed(fn, blocks, kernel, record=True, present=_as_array, record_state=True)
    )
    results = run_rows(feed)
    for result, block in zip(results, blocks if monitors else []):
        assert block.optimizer is not None
        replay_monitors(fn, result, block.optimizer, feed)
    motions = [
        _motion(feed.state_trace(k), keys, block)
        for k, (keys, block) in enumerate(zip(feed.state_keys, blocks))
    ]
    if later is not None:  # after this race's work, which the compiler would slow down
        _compile_later(later)
    return list(zip(results, motions))


def compile_races(policy: str) -> None:
    """How races use compiled race kernels (:mod:`descend.engine.compiled_rows`), for the
    whole process: ``"never"`` (the rows feed, step by step: the default), ``"wait"``
    (compile a race's kernel when it first runs, which takes seconds, then reuse it) or
    ``"background"`` (a race whose kernel is compiled uses it; any other runs step by step,
    then one background thread compiles its kernel for the races after it, which run step
    by step, about 3x slower, until it is ready: the server's choice, so that no request
    waits on a compiler)."""
    global _policy
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    _policy = policy


POLICIES = ("never", "wait", "background")
_policy = "never"
_compiling: set[RaceKernel] = set()  # queued or compiling in the background
# not a daemon: a compile stopped halfway by the interpreter's exit aborts the process
# ("terminate called without an active exception"), so an exit waits for it to finish
_compiler = ThreadPoolExecutor(max_workers=1, thread_name_prefix="descend-race-compile")
_pending: list[Future[None]] = []


def _kernel_for(
    fn: Callable[[Tensor], Tensor], blocks: list[RowBlock]
) -> tuple[RaceKernel | None, RaceKernel | None]:
    """The compiled kernel for ``blocks`` on ``fn`` that the policy lets this race use,
    and the kernel to compile in the background once the race is run, if any."""
    if _policy == "never" or not compilable(blocks):
        return None, None
    kernel = race_kernel(fn, blocks)
    if kernel.broken is not None:
        return None, None
    if _policy == "wait":
        try:
            _compile(kernel)  # before the run: its clock (max_time) starts after the compile
        except RuntimeError:  # kernel.broken says why; it is not tried again
            return None, None
        return kernel, None
    if kernel.ready:
        return kernel, None
    return None, (None if kernel in _compiling else kernel)


def _compile_later(kernel: RaceKernel) -> None:
    """Queue ``kernel`` for the background compiler thread (once)."""
    if kernel not in _compiling:
        _compiling.add(kernel)
        _pending.append(_compiler.submit(_compile_queued, kernel))


def _compile_queued(kernel: RaceKernel) -> None:
    try:
        _compile(kernel)
    finally:  # ready or broken now: the kernel says which, and the set holds no more of it
        _compiling.discard(kernel)


def compiling() -> bool:
    """Whether a background compile is running or queued (an exit waits for it)."""
    _pending[:] = [f for f in _pending if not f.done()]
    return bool(_pending)


def wait_for_compiles() -> None:
    """Wait until the background compiles asked for so far have finished."""
    for future in list(_pending):
        future.exception()  # waits; a failed compile is the kernel's ``broken``


def _compile(kernel: RaceKernel) -> None:
    """Compile ``kernel``, then take the compiler's objects, which live as long as the
    process, out of the garbage collector's full passes (``gc.freeze``): a race makes
    some 10^5 short-lived objects, a full pass follows every few races, and it would
    otherwise walk all of the compiler's too (~120 ms, doubling that race's answer)."""
    if kernel.ready:
        return
    kernel.warm()
    gc.collect()  # what is garbage now is freed, not frozen
    gc.freeze()


def _motion(
    held: Tensor | None, keys: tuple[str, ...] | None, block: RowBlock
) -> dict[str, np.ndarray]:
    """A racer's velocity and per-coordinate scale after each of its steps, from its
    state after each step ``held``, shape (steps, keys, 2)."""
    if held is None or not keys:
        return {}
    motion = {}
    first = next((k for k in FIRST_MOMENT if k in keys), None)
    if first is not None:
        motion["velocity"] = held[:, keys.index(first)].numpy()
    second = next((k for k in SECOND_MOMENT if k in keys), None)
    if second is not None:
        assert block.optimizer is not None
        eps = block.optimizer.param_groups[0].get("eps", 0.0)
        motion["scale"] = (1.0 / (held[:, keys.index(second)].sqrt() + eps)).numpy()
    return motion


def _as_array(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64, copy=True)
