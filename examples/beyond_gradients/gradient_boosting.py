"""Beyond gradients (1): gradient boosting is gradient descent in function space, here
with regression stumps, against scikit-learn's ``GradientBoostingRegressor(max_depth=1)``.

Boosting minimizes L(F) = sum_i l(y_i, F(x_i)) over functions F. Gradient descent on the
vector of predictions F = (F(x_1), ..., F(x_n)) would step along -dL/dF, but such a step
says nothing about a new x. Friedman (2001) projects the step onto a class of weak
learners: each round fits a regression stump h (one feature, one threshold, two values)
to the negative gradient by least squares, and steps

    F_{m+1} = F_m + nu h_m,       h_m = argmin_h sum_i (-dL/dF_i - h(x_i))^2,

from F_0 = the best constant. Here autodiff gives dL/dF (any loss would do), the stump is
fitted in NumPy, and ``descend.optim.SGD(lr=nu)`` takes the step with the projected
gradient -h_m(x_i) in place of the raw one. For the squared loss the negative gradient is
the residual and this is exactly scikit-learn's algorithm: the training-loss curves match.
Data: scikit-learn's bundled diabetes set (442 patients, 10 features).

Run: python examples/beyond_gradients/gradient_boosting.py [--quick] [--plot gb.png]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.model_selection import train_test_split

import descend

LEARNING_RATE = 0.1
FULL = {"rounds": 400}
QUICK = {"rounds": 60}


@dataclass
class Stump:
    """h(x) = left if x[feature] <= threshold else right."""

    feature: int
    threshold: float
    left: float
    right: float

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.where(X[:, self.feature] <= self.threshold, self.left, self.right)


def fit_stump(X: np.ndarray, target: np.ndarray) -> Stump:
    """The least-squares stump: over every feature and every cut between two distinct
    sorted values (threshold at the midpoint, as scikit-learn), the split that most
    reduces the squared error, i.e. maximizes S_l^2 / n_l + S_r^2 / n_r."""
    n = len(target)
    best, best_gain = None, -np.inf
    for feature in range(X.shape[1]):
        order = np.argsort(X[:, feature], kind="stable")
        x, t = X[order, feature], target[order]
        left_sum = np.cumsum(t)[:-1]
        left_count = np.arange(1, n)
        right_sum = t.sum() - left_sum
        gain = left_sum**2 / left_count + right_sum**2 / (n - left_count)
        gain[x[1:] == x[:-1]] = -np.inf  # no cut between equal values
        k = int(np.argmax(gain))
        if gain[k] > best_gain:
            best_gain = gain[k]
            threshold = (x[k] + x[k + 1]) / 2
            best = Stump(feature, threshold, left_sum[k] / left_count[k],
                         right_sum[k] / (n - left_count[k]))  # fmt: skip
    assert best is not None
    return best


def boost_with_descend(X, y, X_test, y_test, rounds: int):
    """Functional gradient descent: autodiff for dL/dF, a stump fitted to -dL/dF, a
    ``descend.optim.SGD`` step with the stump's values as the gradient. Returns the
    training and test mean squared errors after each round (round 0: the constant)."""
    target = torch.as_tensor(y)
    F = torch.full_like(target, float(y.mean()), requires_grad=True)  # F_0 = argmin_c L
    F_test = np.full(len(X_test), y.mean())
    opt = descend.optim.SGD([F], lr=LEARNING_RATE)
    train, test = [], []
    for m in range(rounds + 1):
        loss = 0.5 * ((target - F) ** 2).sum()  # l = (y - F)^2 / 2
        train.append(2 * float(loss.detach()) / len(y))
        test.append(float(np.mean((y_test - F_test) ** 2)))
        if m == rounds:
            break
        (gradient,) = torch.autograd.grad(loss, F)
        stump = fit_stump(X, -gradient.numpy())
        F.grad = -torch.as_tensor(stump.predict(X))  # the gradient projected onto stumps
        opt.step()
        F_test = F_test + LEARNING_RATE * stump.predict(X_test)
    return np.array(train), np.array(test)


def boost_with_sklearn(X, y, X_test, y_test, rounds: int):
    """scikit-learn's ``GradientBoostingRegressor``: squared error, stumps, the same
    learning rate and rounds; the errors after each round by ``staged_predict``."""
    model = GradientBoostingRegressor(
        loss="squared_error", learning_rate=LEARNING_RATE, n_estimators=rounds,
        max_depth=1, random_state=0,
    ).fit(X, y)  # fmt: skip
    first = np.full(len(y), y.mean())
    train = [np.mean((y - first) ** 2)] + [np.mean((y - p) ** 2) for p in model.staged_predict(X)]
    first_test = np.full(len(y_test), y.mean())
    test = [np.mean((y_test - first_test) ** 2)] + [
        np.mean((y_test - p) ** 2) for p in model.staged_predict(X_test)
    ]
    return np.array(train), np.array(test)


def plot(path: str, curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for (name, (train, test)), style in zip(curves.items(), ("-", "--")):
        ax.plot(train, "C0" + style, label=f"{name}, train")
        ax.plot(test, "C3" + style, label=f"{name}, test")
    ax.set(xlabel="boosting round", ylabel="mean squared error", yscale="log",
           title="Gradient boosting with stumps on diabetes")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Boost both ways, print the table, return how closely the curves agree."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (seconds)")
    parser.add_argument("--plot", metavar="PATH", help="save the loss curves (PNG)")
    args = parser.parse_args(argv)
    rounds = (QUICK if args.quick else FULL)["rounds"]
    X, y = load_diabetes(return_X_y=True)
    X, X_test, y, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    curves, seconds = {}, {}
    for name, boost in (("descend SGD + stumps", boost_with_descend),
                        ("sklearn GBR", boost_with_sklearn)):  # fmt: skip
        start = time.perf_counter()
        curves[name] = boost(X, y, X_test, y_test, rounds)
        seconds[name] = time.perf_counter() - start
    ours, theirs = curves["descend SGD + stumps"], curves["sklearn GBR"]
    print(f"diabetes: {len(y)} train, {len(y_test)} test rows; {rounds} rounds of stumps, "
          f"learning rate {LEARNING_RATE}")  # fmt: skip
    print(f"{'boosting':<22}{'train MSE':>11}{'test MSE':>10}{'seconds':>9}")
    for name, (train, test) in curves.items():
        print(f"{name:<22}{train[-1]:>11.2f}{test[-1]:>10.2f}{seconds[name]:>9.2f}")
    train_gap = float(np.max(np.abs(ours[0] - theirs[0]) / theirs[0]))
    test_gap = float(np.max(np.abs(ours[1] - theirs[1]) / theirs[1]))
    print(f"largest relative gap between the curves, any round: train {train_gap:.1e}, "
          f"test {test_gap:.1e}")  # fmt: skip
    if args.plot:
        plot(args.plot, curves)
    return {
        "train_curve_gap": train_gap,
        "test_curve_gap": test_gap,
        "train_mse_first": float(ours[0][0]),
        "train_mse_last": float(ours[0][-1]),
    }


if __name__ == "__main__":
    main()
