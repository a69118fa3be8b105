"""Local minima by random restarts, a learning rate from the range test, and what the health
monitors say about a bad one.

Run: .venv/bin/python examples/restarts_and_diagnosis.py
"""

from __future__ import annotations

import descend
from descend.diagnostics import format_diagnoses, lr_range_test
from descend.problems import get_problem


def main() -> None:
    # Himmelblau has four minima: 32 seeded restarts, run as one batched computation
    himmelblau = get_problem("himmelblau")
    found = descend.multistart(himmelblau, method="adam", bounds=himmelblau.bounds, k=32, seed=0)
    for minimum in found.minima():
        print(f"minimum at {minimum.x.round(4)}  f = {minimum.fun:.1e}  ({minimum.count} runs)")

    # a learning rate for gd on Rosenbrock, from one exponential sweep
    rosenbrock = get_problem("rosenbrock")
    sweep = lr_range_test(rosenbrock, list(rosenbrock.start), method="gd", steps=200)
    print(f"suggested lr {sweep.suggested_lr:.2g}, divergence at {sweep.divergence_lr:.2g}")
    res = descend.minimize(rosenbrock, list(rosenbrock.start), "gd", lr=sweep.suggested_lr)
    print(f"gd at the suggested rate: f = {res.fun:.2e} after {res.nit} iterations")

    # a rate far too small: the monitors say so, with a number to try
    res = descend.minimize(rosenbrock, list(rosenbrock.start), "gd", lr=1e-7, max_iter=2000)
    print(format_diagnoses(res))


if __name__ == "__main__":
    main()
