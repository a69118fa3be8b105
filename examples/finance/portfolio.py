"""Finance: the long-only mean-variance portfolio, by projected gradient descent on the
simplex and by a softmax parametrization, against SciPy's SLSQP; and the efficient
frontier they trace over risk aversions.

Returns of n assets follow a factor model r = B f + e (K market factors f with variances
F, idiosyncratic noise e with variances D, all drawn from a seed), so their covariance is
Sigma = B diag(F) B^T + diag(D) and their expected returns mu = B m + a. A long-only
investor with budget 1 and risk aversion gamma holds

    w* = argmin_w  f(w) = (gamma / 2) w^T Sigma w - mu^T w   subject to  w >= 0, sum w = 1,

a convex quadratic program on the probability simplex. Solved three ways with descend:

  * projected gradient descent, ``minimize(f, w0, "gd", bounds="simplex", lr=1/L)``:
    w <- P(w - grad f(w) / L), P the Euclidean projection onto the simplex and
    L = gamma lambda_max(Sigma) the gradient's Lipschitz constant, which makes every step
    a descent step (f falls by at least |P(w - g/L) - w|^2 L / 2);
  * ``minimize(f, w0, "lbfgs", bounds="simplex")``: the spectral projected gradient
    (Barzilai-Borwein steps, nonmonotone line search);
  * the softmax parametrization w = softmax(z), unconstrained in z by L-BFGS: every z is
    feasible, but a weight reaches 0 only as z -> -inf, so assets the optimum drops keep a
    sliver, and the flat directions of softmax slow the end of the run.

The reference is SciPy's SLSQP with the budget as an equality constraint and [0, 1]
bounds (ftol 1e-15), what a practitioner without a QP solver reaches for. Figures: the
largest weight difference from SLSQP, the objective gap f(w) - f(w_SLSQP), assets held.

Run: python examples/finance/portfolio.py [--quick] [--plot frontier.png]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.optimize
import torch
import torch._dynamo  # torch.optim loads it on first use: out of the timings

import descend

#: assets, market factors, risk aversions on the frontier
FULL = {"assets": 100, "factors": 4, "frontier": 30}
QUICK = {"assets": 25, "factors": 3, "frontier": 6}
GAMMA = 5.0  # the risk aversion of the table's portfolio
HELD = 1e-6  # a weight above this counts as held


def factor_model(assets: int, factors: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(Sigma (n, n), mu (n,)) of a K-factor model with annualized-looking scales:
    factor volatilities 10-20%, idiosyncratic 10-30%, expected returns 2-12%."""
    rng = np.random.default_rng(seed)
    loadings = rng.normal(1.0 / np.sqrt(factors), 0.5, size=(assets, factors))
    factor_var = rng.uniform(0.10, 0.20, size=factors) ** 2
    noise_var = rng.uniform(0.10, 0.30, size=assets) ** 2
    sigma = loadings @ np.diag(factor_var) @ loadings.T + np.diag(noise_var)
    mu = loadings @ rng.uniform(0.01, 0.05, size=factors) + rng.normal(0.03, 0.02, assets)
    return sigma, mu


def objective(sigma: np.ndarray, mu: np.ndarray, gamma: float):
    """f(w) = (gamma / 2) w^T Sigma w - mu^T w, on tensors."""
    S, m = torch.from_numpy(sigma), torch.from_numpy(mu)
    return lambda w: 0.5 * gamma * (w @ S @ w) - m @ w


def projected_gradient(sigma, mu, gamma):
    lipschitz = gamma * np.linalg.eigvalsh(sigma)[-1]
    w0 = np.full(len(mu), 1.0 / len(mu))
    res = descend.minimize(objective(sigma, mu, gamma), w0, "gd", bounds="simplex",
                           lr=1.0 / lipschitz, gtol=1e-10, max_iter=100_000)  # fmt: skip
    return res.x, res.nit


def spectral_projected_gradient(sigma, mu, gamma):
    w0 = np.full(len(mu), 1.0 / len(mu))
    res = descend.minimize(objective(sigma, mu, gamma), w0, "lbfgs", bounds="simplex",
                           gtol=1e-10, max_iter=10_000)  # fmt: skip
    return res.x, res.nit


def softmax_parametrization(sigma, mu, gamma):
    f = objective(sigma, mu, gamma)
    res = descend.minimize(lambda z: f(torch.softmax(z, dim=0)), np.zeros(len(mu)), "lbfgs",
                           gtol=1e-10, max_iter=10_000)  # fmt: skip
    return torch.softmax(torch.from_numpy(res.x), dim=0).numpy(), res.nit


def slsqp(sigma, mu, gamma):
    n = len(mu)
    res = scipy.optimize.minimize(
        lambda w: 0.5 * gamma * w @ sigma @ w - mu @ w, np.full(n, 1.0 / n),
        jac=lambda w: gamma * sigma @ w - mu, method="SLSQP", bounds=[(0.0, 1.0)] * n,
        constraints={"type": "eq", "fun": lambda w: w.sum() - 1.0},
        options={"ftol": 1e-15, "maxiter": 1000},
    )  # fmt: skip
    return res.x, res.nit


SOLVERS = {
    "projected GD (descend)": projected_gradient,
    "projected L-BFGS (descend)": spectral_projected_gradient,
    "softmax + L-BFGS (descend)": softmax_parametrization,
    "SLSQP (SciPy)": slsqp,
}


#: the frontier's solvers: projected GD, at a thousand steps a portfolio, only in the table
FRONTIER_SOLVERS = [name for name in SOLVERS if name != "projected GD (descend)"]


def frontier(sigma, mu, gammas) -> dict[str, np.ndarray]:
    """(risk, return) of each solver's portfolio for each gamma: {name: (len(gammas), 2)}."""
    points = {}
    for name in FRONTIER_SOLVERS:
        solve = SOLVERS[name]
        weights = [solve(sigma, mu, gamma)[0] for gamma in gammas]
        points[name] = np.array([[np.sqrt(w @ sigma @ w), mu @ w] for w in weights])
    return points


def plot(path: str, sigma, mu, gammas, points, weights: np.ndarray) -> None:
    """The efficient frontier (each solver) over the assets; the table's portfolio."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), width_ratios=(3, 2))
    left.scatter(np.sqrt(np.diag(sigma)), mu, s=8, color="lightgray", label="single assets")
    for (name, xy), style in zip(points.items(), ("-", "--", "o")):
        left.plot(xy[:, 0], xy[:, 1], style, ms=3, label=name)
    left.set(xlabel="risk (standard deviation)", ylabel="expected return",
             title=f"efficient frontier, gamma {gammas[0]:g} to {gammas[-1]:g}")  # fmt: skip
    left.legend(fontsize=7)
    held = np.flatnonzero(weights > HELD)
    right.bar(range(len(held)), weights[held])
    right.set_xticks(range(len(held)), [str(i) for i in held], fontsize=7)
    right.set(xlabel="asset", ylabel="weight", title=f"the portfolio at gamma = {GAMMA:g}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Solve at GAMMA four ways and trace the frontier; returns {solver: {"distance"
    (largest weight difference from SLSQP), "gap" (f - f_SLSQP), "held", "sum", "min",
    "frontier distance" (largest (risk, return) difference from SLSQP's)}}."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few assets (seconds)")
    parser.add_argument("--plot", metavar="PATH", help="save the frontier (PNG)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    sigma, mu = factor_model(size["assets"], size["factors"], args.seed)
    f = objective(sigma, mu, GAMMA)
    print(f"{len(mu)} assets, {size['factors']}-factor covariance; risk aversion {GAMMA:g}")
    solutions = {}
    print(f"{'solver':<27}{'max |w - w_ref|':>16}{'f - f_ref':>11}{'held':>6}{'iters':>7}"
          f"{'s':>6}")  # fmt: skip
    for name, solve in SOLVERS.items():
        start = time.perf_counter()
        weights, iterations = solve(sigma, mu, GAMMA)
        solutions[name] = (weights, iterations, time.perf_counter() - start)
    reference = solutions["SLSQP (SciPy)"][0]
    f_reference = float(f(torch.from_numpy(reference)))
    figures: dict[str, dict[str, float]] = {}
    for name, (weights, iterations, seconds) in solutions.items():
        figures[name] = {
            "distance": float(np.abs(weights - reference).max()),
            "gap": float(f(torch.from_numpy(weights))) - f_reference,
            "held": int(np.sum(weights > HELD)),
            "sum": float(weights.sum()),
            "min": float(weights.min()),
        }
        row = figures[name]
        print(f"{name:<27}{row['distance']:>16.1e}{row['gap']:>11.1e}{row['held']:>6d}"
              f"{iterations:>7d}{seconds:>6.2f}")  # fmt: skip

    gammas = np.geomspace(0.1, 100.0, size["frontier"])
    points = frontier(sigma, mu, gammas)
    for name, xy in points.items():
        figures[name]["frontier distance"] = float(np.abs(xy - points["SLSQP (SciPy)"]).max())
    print(f"frontier over {len(gammas)} risk aversions in [0.1, 100]: the largest (risk, return)")
    print("difference from SLSQP's frontier")
    for name in FRONTIER_SOLVERS:
        print(f"  {name:<27}{figures[name]['frontier distance']:>10.1e}")
    if args.plot:
        plot(args.plot, sigma, mu, gammas, points, solutions["projected L-BFGS (descend)"][0])
    return figures


if __name__ == "__main__":
    main()
