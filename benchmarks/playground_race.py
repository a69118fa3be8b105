"""A playground race of six methods x 1,000 steps on Rosenbrock: the race as the server
answers it (on a compiled race kernel), the same race stepped through the engine one step
at a time, six separate ``descend.minimize`` runs, and the floors of each way.

Systems, interleaved (compiled, step by step, minimize, ...) so that other processes'
load hits all of them alike:

* ``POST /api/race``: the request to the app of ``descend playground`` (in this process,
  through FastAPI's TestClient: validation, the race, the JSON answer, without a socket);
* ``race, compiled``: ``descend.playground.race.race`` as ``descend playground`` answers
  ``POST /api/race`` once the race's kernel is compiled: the six racers as rows stepped
  by one compiled function, several steps per call (``descend.engine.compiled_rows``),
  the engine's loop and tests over each step, the health monitors replayed afterwards,
  the report (iterates, f, gradient norms, exact gradients, code) built;
* ``rows, compiled``: its engine run alone (no monitors, no report);
* ``race, step by step``: the same race with the policy ``never``: one forward and
  backward pass per step for all six, then each racer's optimizer;
* ``minimize x6``: six ``descend.minimize(..., record=True)`` runs, what a user would run
  by hand.

The floors: the compiled kernel's calls alone (the arithmetic of 1,000 steps of the six
rules and the gradient, and the per-call cost of a compiled function), and for stepping
one step at a time 1,000 x (one forward and backward pass on a (6, 2) tensor + one
``step()`` of each optimizer), each timed alone; one torch op on a 2-element tensor; and,
for scale, a hand-written NumPy loop of plain gradient descent on Rosenbrock.

The first race compiles the kernel (seconds; Inductor keeps it on disk, so a second
process spends less): the script prints that time too.

Run: ``python benchmarks/playground_race.py`` (about two minutes) or ``--quick``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

import descend
from descend.methods import get_method
from descend.playground.landscape import get_landscape
from descend.playground.race import Racer, race
from descend.playground.rows_race import compile_races, run_rows_race

START = (-1.2, 1.0)
RACERS = [
    Racer("gd", {"lr": 1e-3}),
    Racer("momentum", {"lr": 1e-3, "momentum": 0.9}),
    Racer("nesterov", {"lr": 1e-3, "momentum": 0.9}),
    Racer("adagrad", {"lr": 0.1}),
    Racer("rmsprop", {"lr": 1e-3}),
    Racer("adam", {"lr": 0.02}),
]
CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}


def timed(clock, fn) -> float:
    start = clock()
    fn()
    return clock() - start


def per_call(clock, fn, calls: int) -> float:
    """Seconds per call of ``fn``, after a warm-up."""
    for _ in range(20):
        fn()
    return timed(clock, lambda: [fn() for _ in range(calls)]) / calls


def floor(clock, steps: int) -> dict[str, float]:
    """The per-step pieces each way of racing RACERS cannot avoid, each timed alone."""
    land = get_landscape(problem="rosenbrock")
    f = land.fn
    x = torch.tensor([START] * len(RACERS), dtype=torch.float64, requires_grad=True)

    def forward_backward() -> None:
        x.grad = None
        f(x).sum().backward()

    steps_cost = 0.0
    for racer in RACERS:
        p = torch.tensor(START, dtype=torch.float64, requires_grad=True)
        p.grad = torch.zeros(2, dtype=torch.float64)  # a zero gradient: p stays put
        optimizer = get_method(racer.method).build([p], racer.options)
        steps_cost += per_call(clock, optimizer.step, 2000)
    one = torch.zeros(2, dtype=torch.float64)
    kernel, inputs = compiled_kernel(land)
    calls = -(-steps // kernel.chunk)
    return {
        "kernel calls per race (ms)": per_call(clock, lambda: kernel(*inputs), 500) * calls * 1e3,
        "one torch op (us)": per_call(clock, lambda: one.add_(1.0), 5000) * 1e6,
        "forward+backward (us)": per_call(clock, forward_backward, 2000) * 1e6,
        "six optimizer steps (us)": steps_cost * 1e6,
        "step-by-step floor per race (ms)": steps
        * (per_call(clock, forward_backward, 500) + steps_cost)
        * 1e3,
        "NumPy gd loop per race (ms)": numpy_gd(clock, steps) * len(RACERS) * 1e3,
    }


def compiled_kernel(land):
    """The race's compiled kernel, and inputs of its shapes (zeros: the cost is the same)."""
    from descend.engine.compiled_rows import race_kernel
    from descend.engine.rows_feed import RowBlock
    from descend.engine.stopping import StoppingCriteria

    blocks = []
    for racer in RACERS:
        p = torch.tensor(START, dtype=torch.float64, requires_grad=True)
        opt = get_method(racer.method).build([p], racer.options)
        blocks.append(RowBlock(p, opt, StoppingCriteria()))
    kernel = race_kernel(land.fn, blocks)
    kernel.warm()
    zeros = lambda *shape: torch.zeros(*shape, dtype=torch.float64)  # noqa: E731
    inputs = (
        zeros(len(RACERS), 2),
        zeros(kernel.state_at[-1], 2),
        zeros(kernel.chunk, kernel.scalars_at[-1]),
    )
    return kernel, inputs


def numpy_gd(clock, steps: int) -> float:
    """Seconds for ``steps`` of plain gradient descent on Rosenbrock written in NumPy."""
    x = np.array(START)

    def run() -> None:
        nonlocal x
        x = np.array(START)
        for _ in range(steps):
            a, b = x
            grad = np.array([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])
            x = x - 1e-3 * grad

    return per_call(clock, run, 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    # the goal is a latency ("answers in"): wall time, repeats interleaved against load;
    # process CPU time also counts the other threads (the test client's event loop)
    parser.add_argument("--clock", choices=CLOCK, default="wall")
    parser.add_argument("--quick", action="store_true", help="3 repeats of 300 steps")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats = 300, 3
    torch.set_num_threads(1)
    clock = CLOCK[args.clock]
    land = get_landscape(problem="rosenbrock")
    rosen = land.fn
    steps = args.steps

    def the_race(policy: str) -> None:
        compile_races(policy)
        runs = race(land, START, RACERS, steps=steps)
        assert all(r["nit"] == steps for r in runs), [r["message"] for r in runs]

    def rows_only() -> None:
        compile_races("wait")
        run_rows_race(
            rosen, START, RACERS, steps=steps, max_time=60.0, on_refused=lambda i, e: e,
            monitors=False,
        )  # fmt: skip

    def six_minimize() -> None:
        for r in RACERS:
            descend.minimize(rosen, list(START), r.method, max_iter=steps, record=True, **r.options)

    from fastapi.testclient import TestClient

    from descend.playground.api import create_app

    client = TestClient(create_app())
    body = {
        "problem": "rosenbrock", "start": list(START), "steps": steps,
        "racers": [{"method": r.method, "options": r.options} for r in RACERS],
    }  # fmt: skip

    def post() -> None:
        compile_races("wait")
        answer = client.post("/api/race", json=body)
        assert answer.status_code == 200 and len(answer.content) > steps, answer.text[:200]

    systems = {
        "POST /api/race": post,
        "race, compiled": lambda: the_race("wait"),
        "rows, compiled": rows_only,
        "race, step by step": lambda: the_race("never"),
        "minimize x6": six_minimize,
    }
    times: dict[str, list[float]] = {name: [] for name in systems}
    the_race("never")  # warm-up: imports, first-call costs
    compile_seconds = timed(time.perf_counter, lambda: the_race("wait"))  # compiles
    for _ in range(args.repeats):
        for name, fn in systems.items():
            times[name].append(timed(clock, fn))
    compile_races("never")
    medians = {name: statistics.median(t) * 1e3 for name, t in times.items()}

    print(f"# playground race: {len(RACERS)} methods x {steps} steps on Rosenbrock from {START}")
    print(
        f"# torch {torch.__version__}, Python {platform.python_version()}, one thread, "
        f"clock {args.clock}, median of {args.repeats}"
    )
    print(f"{'system':<22}{'ms':>10}{'min-max':>16}")
    for name in systems:
        t = [v * 1e3 for v in times[name]]
        print(f"{name:<22}{medians[name]:>10.1f}{f'{min(t):.0f}-{max(t):.0f}':>16}")
    after = medians["race, compiled"] - medians["rows, compiled"]
    print(f"{'monitors and report':<22}{after:>10.1f}   (race - rows, compiled)")
    print(f"first compiled race (compiles): {compile_seconds:.1f} s wall")
    speedup = medians["minimize x6"] / medians["race, compiled"]
    print(f"speed-up compiled race vs minimize x6: {speedup:.1f}x")
    print("floors:")
    for name, value in floor(clock, steps).items():
        print(f"  {name:<34}{value:>10.1f}")
    goal = 150.0 * steps / 1000
    met = medians["POST /api/race"] <= goal
    print(f"goal: POST /api/race <= {goal:.0f} ms: {'met' if met else 'not met'}")


if __name__ == "__main__":
    main()
