"""A playground race of six methods x 1,000 steps on Rosenbrock: the race against six
separate ``descend.minimize`` runs, and the floor that torch's per-call cost sets.

Systems, interleaved (race, minimize, race, ...) so that other processes' load hits both:

* ``race``: ``descend.playground.race.race`` as the API's ``POST /api/race`` runs it: the
  six racers as rows of one feed (one forward and backward pass per step for all, then
  each racer's optimizer), the health monitors replayed afterwards, the report (iterates,
  f, gradient norms, exact gradients, code) built;
* ``rows run``: the engine loop alone (``rows_race.run_rows_race`` without the report),
  and ``monitors``: the replay of the monitors alone;
* ``minimize x6``: six ``descend.minimize(..., record=True)`` runs, what a race was
  before, and what a user would run by hand.

The floor: the same 1,000 steps cannot cost less than 1,000 x (one forward and backward
pass of Rosenbrock on a (6, 2) tensor + one ``step()`` of each of the six optimizers),
each measured alone, with nothing recorded or tested; and one torch op on a 2-element
tensor gives the dispatch cost those are made of.

Run: ``python benchmarks/playground_race.py`` (about a minute) or ``--quick``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

import descend
from descend.methods import get_method
from descend.playground.landscape import get_landscape
from descend.playground.race import Racer, race
from descend.playground.rows_race import run_rows_race

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
    """The per-step pieces a race of RACERS cannot avoid, each timed alone."""
    f = get_landscape(problem="rosenbrock").fn
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
    return {
        "one torch op (us)": per_call(clock, lambda: one.add_(1.0), 5000) * 1e6,
        "forward+backward (us)": per_call(clock, forward_backward, 2000) * 1e6,
        "six optimizer steps (us)": steps_cost * 1e6,
        "floor per race (ms)": steps * (per_call(clock, forward_backward, 500) + steps_cost) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--clock", choices=CLOCK, default="cpu")
    parser.add_argument("--quick", action="store_true", help="3 repeats of 300 steps")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats = 300, 3
    torch.set_num_threads(1)
    clock = CLOCK[args.clock]
    land = get_landscape(problem="rosenbrock")
    rosen = land.fn
    steps = args.steps

    def the_race() -> None:
        runs = race(land, START, RACERS, steps=steps)
        assert all(r["nit"] == steps for r in runs), [r["message"] for r in runs]

    def rows_only() -> None:
        run_rows_race(
            rosen, START, RACERS, steps=steps, max_time=60.0, on_refused=lambda i, e: e,
            monitors=False,
        )  # fmt: skip

    def six_minimize() -> None:
        for r in RACERS:
            descend.minimize(rosen, list(START), r.method, max_iter=steps, record=True, **r.options)

    systems = {"race": the_race, "rows run": rows_only, "minimize x6": six_minimize}
    times: dict[str, list[float]] = {name: [] for name in systems}
    the_race()  # warm-up: imports, first-call costs
    for _ in range(args.repeats):
        for name, fn in systems.items():
            times[name].append(timed(clock, fn))
    medians = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    medians["monitors"] = medians["race"] - medians["rows run"]

    print(f"# playground race: {len(RACERS)} methods x {steps} steps on Rosenbrock from {START}")
    print(
        f"# torch {torch.__version__}, Python {platform.python_version()}, one thread, "
        f"clock {args.clock}, median of {args.repeats}"
    )
    print(f"{'system':<14}{'ms':>10}{'min-max':>20}")
    for name in systems:
        t = [v * 1e3 for v in times[name]]
        print(f"{name:<14}{medians[name]:>10.1f}{f'{min(t):.0f}-{max(t):.0f}':>20}")
    print(f"{'monitors':<14}{medians['monitors']:>10.1f}   (race - rows run: replay, report)")
    print(f"speed-up race vs minimize x6: {medians['minimize x6'] / medians['race']:.2f}x")
    print("floor:")
    for name, value in floor(clock, steps).items():
        print(f"  {name:<28}{value:>10.1f}")
    goal = 150.0 * steps / 1000
    print(f"goal: race <= {goal:.0f} ms: {'met' if medians['race'] <= goal else 'not met'}")


if __name__ == "__main__":
    main()
