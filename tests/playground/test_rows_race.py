"""A race as rows of one feed gives every racer exactly its own ``descend.minimize`` run:
iterates, f, gradient norms, status, message and the monitors' diagnoses, whatever the
other racers do (stop early, diverge, run to the budget)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descend
from descend.engine import StoppingCriteria
from descend.engine.rows_feed import RowBlock, RowsFeed, run_rows
from descend.engine.step_controls import StepControls
from descend.methods import get_method
from descend.playground.landscape import get_landscape
from descend.playground.race import Racer, StartError, race
from descend.playground.rows_race import batchable
from descend.problems import get_problem
from descend.train.regularization import GradientClipper

# on Himmelblau from (0, 0) in 150 steps these end every way a row can: the gradient test
# (nesterov, adagrad, adafactor), divergence with the best iterate restored (lars, and gd
# once its warmup reaches lr 0.05, diagnosed at the scheduled lr), the budget (gd, adam,
# rmsprop, ...), each with its own tolerances, patience, schedule and clipping
RACERS = [
    Racer("gd", {"lr": 0.05}, schedule="warmup_cosine"),
    Racer("adam", {"lr": 0.05}, schedule="cosine", clip_grad_norm=1.0),
    Racer("momentum", {"lr": 0.02}, schedule="one_cycle", clip_grad_norm=5.0),
    Racer("gd", {"lr": 1e-3}),
    Racer("nesterov", {}),
    Racer("adagrad", {}),
    Racer("lbfgs", {}),
    Racer("rmsprop", {"lr": 0.01, "centered": True}),
    Racer("adam", {"lr": 0.05, "betas": [0.8, 0.99]}),
    Racer("lars", {}),
    Racer("adafactor", {}),
    Racer("lion", {"lr": 0.01}),
    Racer("prodigy", {}),
]


def test_every_racer_of_a_race_is_its_own_minimize_run():
    land = get_landscape(problem="himmelblau")
    runs = race(land, (0.0, 0.0), RACERS, steps=150)
    statuses = set()
    for racer, run in zip(RACERS, runs, strict=True):
        options = {k: tuple(v) if isinstance(v, list) else v for k, v in racer.options.items()}
        res = descend.minimize(
            land.fn, [0.0, 0.0], racer.method, max_iter=150, record=True, max_time=5.0,
            **options, **racer.step_keywords(),
        )  # fmt: skip
        where = f"{racer.method}: {run['message']}"
        np.testing.assert_allclose(
            np.array(run["x"], dtype=float), res.history["x"], rtol=0, atol=1e-12, err_msg=where
        )
        np.testing.assert_allclose(run["f"], res.history["f"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(run["grad_norm"], res.history["grad_norm"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(run["lr"], res.history["lr"], rtol=0, atol=0)
        assert (run["status"], run["message"], run["nit"]) == (
            res.status.value, res.message, res.nit
        ), where  # fmt: skip
        assert run["fun"] == pytest.approx(res.fun, abs=1e-12)
        assert [
            (d["kind"], d["step"], d["message"], d["suggestion"]) for d in run["diagnoses"]
        ] == [(d.kind, d.step, d.message, d.suggestion) for d in res.diagnoses], where
        statuses.add(run["status"])
    assert {"gtol", "diverged", "max_iter"} <= statuses  # the race covered each way to end
    assert runs[0]["status"] == "diverged" and runs[0]["diagnoses"][0]["kind"] == "divergence"
    for run in runs[:3]:  # the schedules moved the rate
        assert len(set(run["lr"])) > 2, run["method"]
    rows = [r.method for r in RACERS if r.method != "lbfgs"]
    assert not batchable("lbfgs") and all(batchable(m) for m in rows)


def _block(x0, method, **options):
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    optimizer = get_method(method).build([x], options)
    return RowBlock(x, optimizer, StoppingCriteria(max_iter=400), method)


def test_blocks_of_several_rows_freeze_the_rows_that_stopped():
    """A block of 3 rows under one Adam and a single-row block under gd: rows that converge
    early (the first two start at the minimum's doorstep) stay where they stopped while the
    others go on, and each row equals a run of its own."""
    f = get_problem("himmelblau").fn
    starts = [[3.0, 2.0 + 1e-7], [-2.805, 3.131], [0.0, 0.0]]
    blocks = [_block(starts, "adam", lr=0.05), _block([1.0, 1.0], "gd", lr=0.01)]
    results = run_rows(RowsFeed(f, None, None, blocks=blocks, record=True))
    assert results[0].nit < results[2].nit  # the first row stopped early
    for (start, method, lr), res in zip(
        [(starts[0], "adam", 0.05), (starts[1], "adam", 0.05), (starts[2], "adam", 0.05),
         ([1.0, 1.0], "gd", 0.01)],
        results,
        strict=True,
    ):  # fmt: skip
        alone = descend.minimize(
            f, start, method, lr=lr, max_iter=400, gtol=1e-5, ftol=2.2e-9, patience=1,
            record=True, monitors=None,
        )  # fmt: skip
        np.testing.assert_allclose(res.history["x"], alone.history["x"], rtol=0, atol=1e-12)
        assert (res.status, res.nit) == (alone.status, alone.nit)
        np.testing.assert_allclose(res.x, alone.x, rtol=0, atol=1e-12)


def test_blocks_must_share_the_budget():
    x = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    optimizer = get_method("gd").build([x], {})
    blocks = [RowBlock(x, optimizer, StoppingCriteria(max_iter=10)),
              RowBlock(x, optimizer, StoppingCriteria(max_iter=20))]  # fmt: skip
    with pytest.raises(ValueError, match=r"blocks\[1\].stopping.max_iter is 20"):
        RowsFeed(get_problem("himmelblau").fn, None, None, blocks=blocks)


def test_clipping_and_schedules_take_one_row_blocks():
    """A clipping norm is a row's own: a block of several rows under one optimizer would
    clip them together, so it is refused."""
    x = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)
    optimizer = get_method("gd").build([x], {})
    controls = StepControls(clip=GradientClipper(clip_norm=1.0))
    block = RowBlock(x, optimizer, StoppingCriteria(max_iter=5), controls=controls)
    with pytest.raises(ValueError, match=r"blocks\[0\] has controls and 3 rows; clipping"):
        RowsFeed(get_problem("himmelblau").fn, None, None, blocks=[block])


def _torch_states(optimizer_class, steps, **options):
    """torch.optim's own run on Rosenbrock from (-1.2, 1): its state after each step."""
    f = get_problem("rosenbrock").fn
    x = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    optimizer = optimizer_class([x], **options)
    kept = []
    for _ in range(steps):
        optimizer.zero_grad()
        f(x).backward()
        optimizer.step()
        kept.append({k: v.clone() for k, v in optimizer.state[x].items() if v.dim() == 1})
    return kept


def test_velocity_and_scale_are_the_rules_state_after_each_step():
    """The arrows' velocity is the momentum buffer (SGD) or first moment (Adam), the scale
    1 / (sqrt(v) + eps) from the second moment: as torch.optim holds them step by step."""
    land = get_landscape(problem="rosenbrock")
    racers = [Racer("momentum", {"lr": 1e-3, "momentum": 0.8}), Racer("adam", {"lr": 0.02}),
              Racer("gd", {"lr": 1e-3})]  # fmt: skip
    momentum, adam, gd = race(land, (-1.2, 1.0), racers, steps=40)
    sgd = _torch_states(torch.optim.SGD, 40, lr=1e-3, momentum=0.8)
    np.testing.assert_allclose(
        momentum["velocity"], [s["momentum_buffer"] for s in sgd], rtol=1e-12, atol=0
    )
    assert momentum["scale"] is None and gd["velocity"] is None and gd["scale"] is None
    ref = _torch_states(torch.optim.Adam, 40, lr=0.02)
    np.testing.assert_allclose(adam["velocity"], [s["exp_avg"] for s in ref], rtol=1e-12)
    scale = [1 / (s["exp_avg_sq"].sqrt() + 1e-8) for s in ref]
    np.testing.assert_allclose(adam["scale"], scale, rtol=1e-12)
    assert len(adam["velocity"]) == adam["nit"] == 40


def test_a_shared_run_that_fails_falls_back_to_minimize_per_racer(monkeypatch):
    """A rule that raises inside the shared loop must not take the race down: each racer
    then runs alone through minimize, whose error (if any) names its racer."""
    import descend.playground.race as race_module

    def broken(*args, **kwargs):
        raise RuntimeError("a rule failed in a shared step")

    land = get_landscape(problem="himmelblau")
    racers = [Racer("adam", {"lr": 0.05}), Racer("gd", {"lr": 0.01})]
    shared = race(land, (0.0, 0.0), racers, steps=30)
    monkeypatch.setattr(race_module, "run_rows_race", broken)
    alone = race(land, (0.0, 0.0), racers, steps=30)
    for a, b in zip(shared, alone, strict=True):
        np.testing.assert_allclose(np.array(a["x"]), np.array(b["x"]), rtol=0, atol=1e-12)
        assert (a["status"], a["message"]) == (b["status"], b["message"])
        assert b["velocity"] is None  # minimize keeps no optimizer state for the arrows


def test_a_start_where_f_is_not_finite_is_refused_naming_the_start():
    land = get_landscape(formula="log(x) + y**2")
    with pytest.raises(StartError, match=r"not finite at the start \[-1.0, 1.0\]"):
        race(land, (-1.0, 1.0), [Racer("adam", {})], steps=5)
