"""The replay of the monitors after a race reads recorded values where the run knows them:
the gradients along the path from one batched call, the history shown up to the wake. A
monitor sees at each of its wakes what it sees in a ``minimize`` run of its own, and the
recorded answers equal real evaluations made in the same run."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import descend
from descend.monitors import Monitor, MonitorGroup, default_monitors
from descend.playground import monitor_replay
from descend.playground.landscape import get_landscape, problem_names
from descend.playground.monitor_replay import RecordedPrefix, path_gradients
from descend.playground.race import Racer, race
from descend.playground.rows_race import run_rows_race
from descend.result import History

#: the problems of two variables, and the slices through n-D problems (their other
#: coordinates held fixed): f of a slice sums and multiplies over more coordinates
PLANES = [n for n in problem_names() if not get_landscape(problem=n).rest]
SLICES = [n for n in problem_names() if get_landscape(problem=n).rest]


def _real_gradient(fn, point: torch.Tensor) -> torch.Tensor:
    x = point.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(x), x)
    return grad


def _points(n: int = 300) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return 2.0 * torch.randn(n, 2, generator=generator, dtype=torch.float64)


#: a formula with every function the formula language has
FORMULA = (
    "sin(x) * cos(y) + tan(x / 3) + arcsin(x / 9) + arccos(y / 9) + arctan(y) + sinh(y)"
    " + cosh(x) + tanh(x * y) + exp(-(x**2) - y**2) + log(1 + x**2 + y**2) + log1p(y**2)"
    " + sqrt(x**2 + 1) + abs(x) * y + sigmoid(x) + softplus(y) + atan2(y, x) + hypot(x, y)"
    " + minimum(x, y) + maximum(x, y) + x % 2"
)


@pytest.mark.parametrize("landscape", [*({"problem": n} for n in PLANES), {"formula": FORMULA}])
def test_path_gradients_on_a_plane_are_each_points_own_bit_for_bit(landscape):
    fn, path = get_landscape(**landscape).fn, _points()
    batched = path_gradients(fn, path)
    for k in range(len(path)):
        assert torch.equal(batched[k], _real_gradient(fn, path[k])), (landscape, k)


@pytest.mark.parametrize("name", SLICES)
def test_path_gradients_on_a_slice_differ_from_each_points_own_by_rounding_at_most(name):
    fn, path = get_landscape(problem=name).fn, _points()
    batched = path_gradients(fn, path)
    single = torch.stack([_real_gradient(fn, p) for p in path])
    torch.testing.assert_close(batched, single, rtol=1e-13, atol=0)


def test_a_recorded_prefix_slices_as_the_history_grown_row_by_row():
    rows = [(k, float(k) ** 0.5) for k in range(12)]
    full = History(columns=("iteration", "f"))
    for row in rows:
        full.append(row)
    prefix = RecordedPrefix(full)
    assert prefix.columns == full.columns
    for length in range(len(rows) + 1):
        prefix.length = length
        grown = History(columns=("iteration", "f"))
        for row in rows[:length]:
            grown.append(row)
        assert len(prefix) == len(grown)
        for start in range(-14, 15):
            assert prefix.rows(start) == grown.rows(start), (length, start)
            for stop in [None, *range(-14, 15)]:
                assert prefix.rows(start, stop) == grown.rows(start, stop), (length, start, stop)


class Spy(Monitor):
    """Wakes every ``every`` steps and keeps what it saw there: the iteration, the point, its
    gradient as the run left it and as a real evaluation gives it, the history rows and
    the learning rate."""

    kinds = ("spy",)

    def __init__(self, fn, every: int) -> None:
        super().__init__(every=every)
        self.fn = fn
        self.seen: list[dict[str, Any]] = []

    def watch(self, nit: int) -> int:
        (x,) = self.params()
        assert x.grad is not None
        self.seen.append(
            {
                "nit": nit,
                "x": x.detach().clone(),
                "grad": x.grad.clone(),
                "real_grad": _real_gradient(self.fn, x.detach()),
                "rows": list(self.view.rows()),
                "lr": self.lr(),
            }
        )
        return self.next_multiple(nit)

    def finish(self, result: Any) -> None:
        (x,) = self.params()
        assert x.grad is not None
        self.seen.append(
            {
                "end": result.nit,
                "x": x.detach().clone(),
                "grad": x.grad.clone(),
                "real_grad": _real_gradient(self.fn, x.detach()),
                "rows": len(self.view),
                "lr": self.lr(),
            }
        )


RACERS = [
    Racer("gd", {"lr": 1e-3}, schedule="warmup_cosine"),
    Racer("momentum", {"lr": 1e-3, "momentum": 0.9}),
    Racer("adam", {"lr": 0.02}, schedule="cosine", clip_grad_norm=10.0),
    Racer("rmsprop", {"lr": 1e-3}),
    Racer("gd", {"lr": 7e-3}),  # diverges: the run ends at its best iterate, not its last
]


@pytest.mark.parametrize("every", [1, 7])
def test_a_monitor_sees_in_the_replay_what_it_sees_in_its_own_minimize_run(monkeypatch, every):
    """At each wake: the same point, the gradient equal to a real evaluation there, the same
    history rows and learning rate; at the end the whole history and the last rate."""
    fn, start, steps = get_landscape(problem="rosenbrock").fn, (-1.2, 1.0), 120
    spies: list[Spy] = []

    def with_spy(monitors: Any, **run: Any) -> list[MonitorGroup]:
        spies.append(Spy(fn, every))
        return [MonitorGroup([*default_monitors(), spies[-1]])]

    monkeypatch.setattr(monitor_replay, "monitors_for_run", with_spy)
    runs = run_rows_race(fn, start, RACERS, steps=steps, max_time=60.0, on_refused=lambda i, e: e)
    assert len(spies) == len(RACERS)
    assert {r.status.value for r, _ in runs} == {"max_iter", "diverged"}
    for racer, spy, (replayed, _) in zip(RACERS, spies, runs, strict=True):
        own = Spy(fn, every)
        res = descend.minimize(
            fn, list(start), racer.method, max_iter=steps, record=True,
            monitors=[MonitorGroup([*default_monitors(), own])],
            **racer.options, **racer.step_keywords(),
        )  # fmt: skip
        wakes = [s["nit"] for s in own.seen[:-1]]
        assert wakes == [s["nit"] for s in spy.seen[:-1]], racer.method
        assert wakes == sorted({1, *range(every, replayed.nit + 1, every)})
        for mine, theirs in zip(spy.seen[:-1], own.seen[:-1]):
            where = (racer.method, mine["nit"])
            assert torch.equal(mine["grad"], mine["real_grad"]), where
            torch.testing.assert_close(mine["x"], theirs["x"], rtol=0, atol=1e-12)
            torch.testing.assert_close(mine["grad"], theirs["grad"], rtol=1e-12, atol=1e-12)
            assert len(mine["rows"]) == len(theirs["rows"]) == mine["nit"] + 1, where
            np.testing.assert_allclose(
                np.array(mine["rows"])[:, 1:3], np.array(theirs["rows"])[:, 1:3], rtol=1e-12
            )
            assert mine["lr"] == theirs["lr"], where
        mine, theirs = spy.seen[-1], own.seen[-1]
        assert torch.equal(mine["grad"], mine["real_grad"]), racer.method
        torch.testing.assert_close(mine["x"], theirs["x"], rtol=0, atol=1e-12)
        torch.testing.assert_close(mine["grad"], theirs["grad"], rtol=1e-12, atol=1e-12)
        assert (mine["end"], mine["rows"], mine["lr"]) == (
            theirs["end"],
            theirs["rows"],
            theirs["lr"],
        )
        assert mine["end"] == replayed.nit and mine["rows"] == replayed.nit + 1
        assert [(d.kind, d.step, d.message, d.evidence) for d in replayed.diagnoses] == [
            (d.kind, d.step, d.message, d.evidence) for d in res.diagnoses
        ]


def test_a_race_ending_at_a_saddle_says_so_as_minimize_does():
    """The saddle check at the end evaluates Hessian-vector products for real at the last
    iterate: the status, message and finding equal minimize's."""
    land = get_landscape(problem="saddle")
    racers = [Racer("gd", {"lr": 0.1}), Racer("momentum", {"lr": 0.05, "momentum": 0.5})]
    runs = race(land, (1.0, 0.0), racers, steps=400)
    for racer, run in zip(racers, runs, strict=True):
        res = descend.minimize(land.fn, [1.0, 0.0], racer.method, max_iter=400, **racer.options)
        assert run["status"] == res.status.value == "saddle"
        assert run["message"] == res.message
        assert [(d["kind"], d["step"], d["message"]) for d in run["diagnoses"]] == [
            (d.kind, d.step, d.message) for d in res.diagnoses
        ]
