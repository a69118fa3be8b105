"""descend.minimize on a torch function and on a NumPy function with its gradient.

Run: .venv/bin/python examples/minimize_function.py
"""

from __future__ import annotations

import numpy as np
import torch

import descend


def rosenbrock(x: torch.Tensor) -> torch.Tensor:
    return ((1 - x[:-1]) ** 2 + 100 * (x[1:] - x[:-1] ** 2) ** 2).sum()


def main() -> None:
    # autodiff: fun takes a tensor; x0 is a list, so res.x is a NumPy array
    res = descend.minimize(rosenbrock, [-1.2, 1.0], method="adam", lr=0.02, max_iter=20_000)
    print(res)

    # a NumPy function with its gradient, as with scipy.optimize.minimize
    A = np.diag(np.logspace(0, 2, 5))
    res = descend.minimize(
        lambda x: 0.5 * x @ A @ x, np.ones(5), method="nesterov", jac=lambda x: A @ x, lr=0.005
    )
    print(f"{res.method}: f = {res.fun:.2e} after {res.nit} iterations ({res.status})")

    # a learning rate that is too large stops cleanly, keeps the best point, and says why
    res = descend.minimize(rosenbrock, [-1.2, 1.0], method="gd", lr=0.01)
    print(res.status, "-", res.message)

    # the history is a table
    res = descend.minimize(rosenbrock, [-1.2, 1.0], method="momentum", max_iter=2_000)
    print(res.history.to_pandas().iloc[::400])


if __name__ == "__main__":
    main()
