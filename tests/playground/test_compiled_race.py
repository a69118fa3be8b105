"""A race on a compiled race kernel (several steps of every racer per call) gives every
racer its own ``descend.minimize`` run, as the step-by-step rows feed does: iterates, f,
gradient norms, velocity, status, message, diagnoses, and the optimizer's state at the
stop; and the server's policies (compile and wait, compile in the background, a kernel
that cannot compile) each answer with those numbers."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

import descend
from descend.engine import StoppingCriteria
from descend.engine.compiled_rows import CompiledRowsFeed, compilable, race_kernel
from descend.engine.rows_feed import RowBlock, RowsFeed, run_rows
from descend.engine.step_controls import StepControls
from descend.methods import get_method
from descend.playground import rows_race
from descend.playground.landscape import get_landscape
from descend.playground.race import Racer, race
from descend.train.regularization import GradientClipper

# on Himmelblau from (0, 0) in 150 steps: the gradient test (nesterov, adagrad), divergence
# with the best iterate restored (gd at 0.06), the budget (the others)
RACERS = [
    Racer("gd", {"lr": 1e-3}),
    Racer("momentum", {"lr": 0.02, "dampening": 0.1}),
    Racer("nesterov", {"weight_decay": 1e-3}),
    Racer("adagrad", {"lr_decay": 1e-3}),
    Racer("rmsprop", {"lr": 0.01, "centered": True, "momentum": 0.5}),
    Racer("adam", {"lr": 0.05, "betas": [0.8, 0.99], "amsgrad": True}),
    Racer("gd", {"lr": 0.06}),
]
START = (0.0, 0.0)
STEPS = 150


@pytest.fixture
def policy():
    """Set the race policy for a test; the default ("never") again after it."""
    yield rows_race.compile_races
    rows_race.compile_races("never")


@pytest.fixture
def compiled_feeds(monkeypatch):
    """The races that ran to their end on a compiled kernel (a race whose kernel failed
    falls back to ``minimize`` and is not counted)."""
    finished = []

    class Counted(CompiledRowsFeed):
        def results(self, loop):
            finished.append(self)
            return super().results(loop)

    monkeypatch.setattr(rows_race, "CompiledRowsFeed", Counted)
    return finished


def _same_as_minimize(land, runs):
    statuses = set()
    for racer, run in zip(RACERS, runs, strict=True):
        options = {k: tuple(v) if isinstance(v, list) else v for k, v in racer.options.items()}
        res = descend.minimize(
            land.fn, list(START), racer.method, max_iter=STEPS, record=True, max_time=5.0,
            **options,
        )  # fmt: skip
        where = f"{racer.method}: {run['message']}"
        # to 1e-12, or to rounding where a diverging racer's numbers grow to 1e4 and beyond
        close = dict(rtol=1e-13, atol=1e-12, err_msg=where)
        np.testing.assert_allclose(np.array(run["x"], dtype=float), res.history["x"], **close)
        np.testing.assert_allclose(run["f"], res.history["f"], **close)
        np.testing.assert_allclose(run["grad_norm"], res.history["grad_norm"], **close)
        assert (run["status"], run["message"], run["nit"]) == (
            res.status.value, res.message, res.nit
        ), where  # fmt: skip
        assert [(d["kind"], d["step"], d["message"]) for d in run["diagnoses"]] == [
            (d.kind, d.step, d.message) for d in res.diagnoses
        ], where
        statuses.add(run["status"])
    assert {"gtol", "diverged", "max_iter"} <= statuses  # every way a row ends


def test_a_compiled_race_is_every_racers_own_minimize_run(policy, compiled_feeds):
    land = get_landscape(problem="himmelblau")
    step_by_step = race(land, START, RACERS, steps=STEPS)
    policy("wait")
    runs = race(land, START, RACERS, steps=STEPS)
    with torch.compiler.set_stance("fail_on_recompile"):  # a new start, and other rates
        moved = race(
            land,
            (0.5, -0.5),
            [Racer(r.method, {**r.options, "lr": 0.01}) for r in RACERS],
            steps=20,
        )
    assert len(compiled_feeds) == 2 and all(r["nit"] > 0 for r in moved)
    _same_as_minimize(land, runs)
    for eager, run in zip(step_by_step, runs):  # the motion the page draws
        for name in ("velocity", "scale"):
            if eager[name] is None:
                assert run[name] is None
            else:
                np.testing.assert_allclose(run[name], eager[name], rtol=1e-12, atol=1e-12)


def _blocks(fn, lr_of_last):
    blocks = []
    for racer in RACERS:
        options = {k: tuple(v) if isinstance(v, list) else v for k, v in racer.options.items()}
        if racer is RACERS[-1]:
            options["lr"] = lr_of_last
        x = torch.tensor(START, dtype=torch.float64, requires_grad=True)
        optimizer = get_method(racer.method).build([x], options)
        blocks.append(RowBlock(x, optimizer, StoppingCriteria(max_iter=STEPS), racer.method))
    return blocks


def test_the_compiled_feed_leaves_each_row_and_its_state_at_its_stop():
    fn = get_landscape(problem="himmelblau").fn
    eager_blocks, blocks = _blocks(fn, 0.06), _blocks(fn, 0.06)
    eager = run_rows(RowsFeed(fn, None, None, blocks=eager_blocks))
    feed = CompiledRowsFeed(fn, blocks, race_kernel(fn, blocks))
    compiled = run_rows(feed)
    assert feed.done > max(r.nit for r in compiled)  # the kernel stepped past every stop
    for a, b, block_a, block_b in zip(eager, compiled, eager_blocks, blocks, strict=True):
        assert (a.status, a.nit, a.message) == (b.status, b.nit, b.message)
        torch.testing.assert_close(block_b.x, block_a.x, rtol=1e-13, atol=1e-12)
        state_a = block_a.optimizer.state[block_a.x]
        state_b = block_b.optimizer.state[block_b.x]
        assert state_a.keys() == state_b.keys() and state_a["step"] == state_b["step"]
        for key, value in state_a.items():
            if isinstance(value, torch.Tensor):
                torch.testing.assert_close(state_b[key], value, rtol=1e-12, atol=1e-12)
    assert {r.status.value for r in compiled} >= {"diverged", "max_iter"}


def test_only_rules_with_kernels_and_nothing_around_their_steps_compile():
    def block(method, controls=None, **options):
        x = torch.tensor(START, dtype=torch.float64, requires_grad=True)
        opt = get_method(method).build([x], options)
        return RowBlock(x, opt, StoppingCriteria(), method, controls=controls)

    assert compilable([block("adam"), block("gd"), block("rmsprop"), block("adagrad")])
    assert not compilable([block("adam"), block("lion")])  # Lion has no fused rule
    clipped = StepControls(clip=GradientClipper(clip_norm=1.0))
    assert not compilable([block("adam", controls=clipped)])


def test_in_the_background_a_race_runs_step_by_step_until_its_kernel_is_compiled(
    policy, compiled_feeds
):
    land = get_landscape(formula="(x - 1)**2 + 5*(y + 0.5)**2 + sin(3*x)")
    reference = race(land, START, RACERS, steps=60)
    policy("background")
    first = race(land, START, RACERS, steps=60)  # asks for the kernel, does not wait
    assert not compiled_feeds
    blocks = _blocks(land.fn, RACERS[-1].options["lr"])
    kernel = race_kernel(land.fn, blocks)
    deadline = time.monotonic() + 300
    while not kernel.ready and kernel.broken is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert kernel.ready, kernel.broken
    # compiled in another thread, the kernel serves this one as it is: no second compile
    with torch.compiler.set_stance("fail_on_recompile"):
        later = race(land, START, RACERS, steps=60)
    assert len(compiled_feeds) == 1
    for a, b, c in zip(reference, first, later, strict=True):
        assert a["x"] == b["x"], (a["method"], a["status"], b["status"], b["message"])
        np.testing.assert_allclose(np.array(c["x"], dtype=float), a["x"], rtol=0, atol=1e-12)
        assert (a["status"], a["message"]) == (c["status"], c["message"])


def test_a_kernel_that_cannot_compile_leaves_the_race_to_the_rows_feed(policy, monkeypatch):
    land = get_landscape(formula="x**2 + 3*y**2 + x*y")
    blocks = _blocks(land.fn, RACERS[-1].options["lr"])
    kernel = race_kernel(land.fn, blocks)

    def no_compiler(*args):
        raise OSError("g++ not found")

    monkeypatch.setattr(torch, "compile", lambda *args, **kwargs: no_compiler)
    reference = race(land, START, RACERS, steps=40)
    policy("wait")
    for _ in range(2):  # the failure, then a race that does not try again
        runs = race(land, START, RACERS, steps=40)
        for a, b in zip(reference, runs, strict=True):
            np.testing.assert_allclose(np.array(b["x"], dtype=float), a["x"], rtol=0, atol=1e-12)
            assert (a["status"], a["message"]) == (b["status"], b["message"])
    assert kernel.broken is not None and "g++ not found" in str(kernel.broken)
