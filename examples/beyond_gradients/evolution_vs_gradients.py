"""Beyond gradients (2): CMA-ES and a genetic algorithm against L-BFGS with random
restarts, on problems chosen to show where gradients win and where they cannot be used.

* Rosenbrock in 30 dimensions (smooth, one valley): a gradient carries n numbers of
  information per evaluation; L-BFGS reaches the minimum in a few hundred evaluations,
  where the derivative-free methods, learning the landscape from f values alone, are
  still far after a hundred times more.
* Rastrigin, f(x) = 10 n + sum(x_i^2 - 10 cos(2 pi x_i)) on [-5.12, 5.12]^n (smooth but
  with ~10^n local minima): a gradient method finds the global minimum only if a start
  falls in its basin, so restarts work in 2 dimensions and fail in 10; CMA-ES's
  population sees the big bowl under the ripples.
* A staircase, f(x) = sum floor(2 |x_i - 1|) (piecewise constant): the gradient is zero
  almost everywhere (autodiff returns 0, and L-BFGS stops where it started); only
  methods that compare f values can descend it.

Every method gets the same box and seed; CMA-ES is the ``cmaes`` package (the engine
behind Optuna's CmaEsSampler) with IPOP restarts (population doubled on each restart,
Auger & Hansen 2005); the genetic algorithm (tournament selection, blend crossover,
Gaussian mutation, one elite) is written below in NumPy; the restarts are
``descend.multistart`` (what ``descend.minimize(..., restarts=K)`` runs).

Run: python examples/beyond_gradients/evolution_vs_gradients.py [--quick] [--plot evo.png]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cmaes
import numpy as np
import torch

import descend

#: full mode and quick mode: evaluation budget of CMA-ES and the GA, restarts of L-BFGS
FULL = {"budget": 60_000, "restarts": 64}
QUICK = {"budget": 5_000, "restarts": 8}


def rosenbrock(x: torch.Tensor) -> torch.Tensor:
    """sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2; minimum 0 at (1, ..., 1)."""
    return (100 * (x[..., 1:] - x[..., :-1] ** 2) ** 2 + (1 - x[..., :-1]) ** 2).sum(-1)


def rastrigin(x: torch.Tensor) -> torch.Tensor:
    """10 n + sum_i x_i^2 - 10 cos(2 pi x_i); minimum 0 at the origin."""
    return 10 * x.shape[-1] + (x**2 - 10 * torch.cos(2 * math.pi * x)).sum(-1)


def staircase(x: torch.Tensor) -> torch.Tensor:
    """sum_i floor(2 |x_i - 1|): flat steps, minimum 0 on the cube |x_i - 1| < 1/2."""
    return torch.floor(2 * (x - 1).abs()).sum(-1)


@dataclass
class Problem:
    name: str
    function: Callable[[torch.Tensor], torch.Tensor]
    dimension: int
    bound: float

    @property
    def box(self) -> list[tuple[float, float]]:
        return [(-self.bound, self.bound)] * self.dimension


PROBLEMS = (
    Problem("Rosenbrock 30-D", rosenbrock, 30, 2.0),
    Problem("Rastrigin 2-D", rastrigin, 2, 5.12),
    Problem("Rastrigin 10-D", rastrigin, 10, 5.12),
    Problem("staircase 10-D", staircase, 10, 5.0),
)


@dataclass
class Outcome:
    """A method's best f, its evaluations of f, and the best f after each evaluation."""

    best: float
    evaluations: int
    curve: list[tuple[int, float]] = field(default_factory=list)

    def evaluations_to(self, level: float) -> int | None:
        """Evaluations spent when the best f first fell below ``level`` (None: never)."""
        return next((used for used, best in self.curve if best < level), None)


def evaluate(problem: Problem, X: np.ndarray) -> np.ndarray:
    """f on each row of X (one batched torch call)."""
    return problem.function(torch.as_tensor(X)).numpy()


def lbfgs_restarts(problem: Problem, restarts: int, seed: int) -> Outcome:
    """L-BFGS from ``restarts`` uniform starts in the box, autodiff gradients."""
    runs = descend.multistart(
        problem.function, method="lbfgs", bounds=problem.box, k=restarts, seed=seed, monitors=None
    )
    curve, best, used = [], math.inf, 0
    for run in runs.results:
        used += run.nfev
        best = min(best, float(run.fun))
        curve.append((used, best))
    return Outcome(best, used, curve)


def cma_es(problem: Problem, budget: int, seed: int) -> Outcome:
    """CMA-ES from a uniform start, sigma a quarter of the box; IPOP: when a run stops
    (``should_stop``), restart from a new point with twice the population."""
    rng = np.random.default_rng(seed)
    bounds = np.array(problem.box)
    population, used, best, curve = None, 0, math.inf, []
    while used < budget:
        optimizer = cmaes.CMA(
            mean=rng.uniform(-problem.bound, problem.bound, problem.dimension),
            sigma=problem.bound / 2, bounds=bounds, seed=int(rng.integers(2**31)),
            population_size=population,
        )  # fmt: skip
        population = optimizer.population_size
        while used < budget and not optimizer.should_stop():
            X = np.stack([optimizer.ask() for _ in range(population)])
            values = evaluate(problem, X)
            optimizer.tell(list(zip(X, values)))
            used += population
            best = min(best, float(values.min()))
            curve.append((used, best))
        population *= 2
    return Outcome(best, used, curve)


def genetic_algorithm(problem: Problem, budget: int, seed: int, population: int = 100):
    """A real-coded GA: binary tournaments pick parents, blend crossover (BLX-0.5) mixes
    them, Gaussian mutation (5% of the box, each gene with probability 1/n) perturbs the
    children, and the best individual survives unchanged (elitism)."""
    rng = np.random.default_rng(seed)
    n, lo, hi = problem.dimension, -problem.bound, problem.bound
    X = rng.uniform(lo, hi, (population, n))
    values = evaluate(problem, X)
    used, curve = population, [(population, float(values.min()))]
    while used + population - 1 <= budget:
        contest = rng.integers(population, size=(2, population - 1, 2))
        winners = np.where(values[contest[..., 0]] <= values[contest[..., 1]],
                           contest[..., 0], contest[..., 1])  # fmt: skip
        mother, father = X[winners[0]], X[winners[1]]
        low, high = np.minimum(mother, father), np.maximum(mother, father)
        spread = high - low
        children = rng.uniform(low - 0.5 * spread, high + 0.5 * spread)
        mutate = rng.random(children.shape) < 1 / n
        children += mutate * rng.normal(0, 0.05 * (hi - lo), children.shape)
        children = np.clip(children, lo, hi)
        elite = int(values.argmin())
        X = np.vstack([X[elite], children])
        values = np.concatenate([values[elite : elite + 1], evaluate(problem, children)])
        used += population - 1
        curve.append((used, float(values.min())))
    return Outcome(float(values.min()), used, curve)


def plot(path: str, outcomes: dict[str, dict[str, Outcome]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(outcomes), figsize=(3.4 * len(outcomes), 3.2))
    for ax, (problem, by_method) in zip(axes, outcomes.items()):
        for name, outcome in by_method.items():
            used, best = zip(*outcome.curve)
            ax.step(used, np.maximum(best, 1e-10), where="post", label=name)
        ax.set(title=problem, xscale="log", yscale="log", xlabel="evaluations of f")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("best f so far")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Race the three methods on each problem; print the table; return best f values."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller budgets (seconds)")
    parser.add_argument("--plot", metavar="PATH", help="save best-f curves (PNG)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    budget = QUICK if args.quick else FULL
    methods = {
        f"L-BFGS x {budget['restarts']}": lambda p: lbfgs_restarts(
            p, budget["restarts"], args.seed
        ),
        "CMA-ES (IPOP)": lambda p: cma_es(p, budget["budget"], args.seed),
        "genetic algorithm": lambda p: genetic_algorithm(p, budget["budget"], args.seed),
    }
    print(f"{'problem':<17}{'method':<19}{'best f':>10}{'evaluations':>12}{'to 1e-6':>10}"
          f"{'seconds':>9}")  # fmt: skip
    outcomes: dict[str, dict[str, Outcome]] = {}
    figures = {}
    for problem in PROBLEMS:
        outcomes[problem.name] = {}
        for name, run in methods.items():
            start = time.perf_counter()
            outcome = run(problem)
            seconds = time.perf_counter() - start
            outcomes[problem.name][name] = outcome
            reached = outcome.evaluations_to(1e-6)
            print(f"{problem.name:<17}{name:<19}{outcome.best:>10.3g}{outcome.evaluations:>12}"
                  f"{'-' if reached is None else reached:>10}{seconds:>9.2f}")  # fmt: skip
            key = f"{problem.name} {name.split()[0]}".replace(" ", "_").lower()
            figures[key] = outcome.best
            figures[key + "_evaluations"] = outcome.evaluations
            figures[key + "_evaluations_to_1e-6"] = reached
    if args.plot:
        plot(args.plot, outcomes)
    return figures


if __name__ == "__main__":
    main()
