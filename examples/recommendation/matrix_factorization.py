"""Recommendation: matrix factorization of a ratings table, on synthetic ratings with a
known truth (or your MovieLens file), against the baselines a practitioner reaches for.

Synthetic ratings are r_ui = 3 + b_u + c_i + p_u . q_i + sigma e_ui with rank-4 factors
and e ~ N(0, 1), seen on a random share of the (user, item) pairs; a fifth of them is held
out. No model predicts held-out ratings better than the truth itself, whose RMSE is the
noise floor (about sigma). A model with p free parameters fitted to n ratings by least
squares fits its own ratings to RMSE sigma sqrt(1 - p / n) (it absorbs p of the n noise
dimensions) and misses new ratings by sigma sqrt(1 + p / (n - p)) (the estimation error;
Gaussian-design least squares: sigma^2 (1 + p / (n - p - 1))); the quick mode is tested
against both.

Compared in the same run, on the same split:
  * descend.estimators.MatrixFactorization: biases and factors by full-batch L-BFGS,
    and by mini-batch Adam (the choice when the ratings do not fit in memory), each
    stopped when its training loss no longer falls;
  * alternating least squares (ALS) in NumPy, rank 4 + 2 (two more columns carry the
    biases), each half-step an exact ridge regression per user or per item;
  * scikit-learn's TruncatedSVD of the mean-filled table, the off-the-shelf answer;
  * predicting the training mean.

Run: python examples/recommendation/matrix_factorization.py [--quick] [--plot mf.png]
     python examples/recommendation/matrix_factorization.py --movielens ml-100k/u.data
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch._dynamo  # noqa: F401  torch.optim loads it on first use: out of the timings
from movielens import read_movielens
from scipy import sparse
from sklearn.decomposition import TruncatedSVD

from descend.estimators import MatrixFactorization

RANK = 4
NOISE = 0.3
#: L2 strengths tried on a validation share for a ratings file (no truth to set it by)
ALPHAS = (1e-5, 1e-4, 1e-3, 1e-2)
#: synthetic table sizes: (users, items, share of pairs rated)
FULL = {"n_users": 1500, "n_items": 800, "density": 0.08, "max_epochs": 200}
QUICK = {"n_users": 300, "n_items": 200, "density": 0.2, "max_epochs": 200}


def low_rank_ratings(n_users: int, n_items: int, density: float, seed: int):
    """Ratings of a rank-4 model with biases plus N(0, NOISE^2) noise on a random share
    ``density`` of the pairs: (pairs (n, 2), ratings (n,), noise-free ratings (n,))."""
    rng = np.random.default_rng(seed)
    P = rng.normal(scale=0.6, size=(n_users, RANK))
    Q = rng.normal(scale=0.6, size=(n_items, RANK))
    b, c = rng.normal(scale=0.4, size=n_users), rng.normal(scale=0.4, size=n_items)
    users, items = np.nonzero(rng.random((n_users, n_items)) < density)
    truth = 3.0 + b[users] + c[items] + np.sum(P[users] * Q[items], axis=1)
    return np.column_stack([users, items]), truth + NOISE * rng.normal(size=len(truth)), truth


def rmse(prediction: np.ndarray, target: np.ndarray) -> float:
    return float(np.sqrt(np.mean((prediction - target) ** 2)))


def alternating_least_squares(
    pairs: np.ndarray, ratings: np.ndarray, shape: tuple[int, int], rank: int,
    ridge: float = 1.0, sweeps: int = 15,
):  # fmt: skip
    """ALS on r - mean: users' rows U_u = argmin sum_i (r_ui - U_u . V_i)^2 + ridge |U_u|^2
    (one small linear system per user, solved in a batch), then items' rows likewise.
    Ids are row indices of a (users, items) = ``shape`` table.
    Returns ``predict(pairs) -> ratings``."""
    mean = ratings.mean()
    users, items = pairs[:, 0], pairs[:, 1]
    rng = np.random.default_rng(0)
    U = rng.normal(scale=0.1, size=(shape[0], rank))
    V = rng.normal(scale=0.1, size=(shape[1], rank))

    def solve_rows(rows: np.ndarray, n_rows: int, other: np.ndarray) -> np.ndarray:
        gram = np.zeros((n_rows, rank, rank))
        np.add.at(gram, rows, other[:, :, None] * other[:, None, :])
        gram += ridge * np.eye(rank)
        right = np.zeros((n_rows, rank))
        np.add.at(right, rows, other * (ratings - mean)[:, None])
        return np.linalg.solve(gram, right[:, :, None])[:, :, 0]

    for _ in range(sweeps):
        U = solve_rows(users, len(U), V[items])
        V = solve_rows(items, len(V), U[users])

    def predict(test_pairs: np.ndarray) -> np.ndarray:
        return mean + np.sum(U[test_pairs[:, 0]] * V[test_pairs[:, 1]], axis=1)

    return predict


def truncated_svd(pairs: np.ndarray, ratings: np.ndarray, shape: tuple[int, int], rank: int):
    """The (users, items) = ``shape`` table with unrated cells at the mean (0 after
    centering), its best rank-``rank`` approximation by scikit-learn's TruncatedSVD."""
    mean = ratings.mean()
    table = sparse.csr_matrix((ratings - mean, (pairs[:, 0], pairs[:, 1])), shape=shape)
    svd = TruncatedSVD(n_components=rank, random_state=0)
    scores = svd.fit_transform(table)

    def predict(test_pairs: np.ndarray) -> np.ndarray:
        rows = scores[test_pairs[:, 0]]
        return mean + np.sum(rows * svd.components_[:, test_pairs[:, 1]].T, axis=1)

    return predict


def choose_alpha(pairs: np.ndarray, ratings: np.ndarray, seed: int) -> float:
    """The L2 strength of ``ALPHAS`` whose L-BFGS fit on 90% of the ratings predicts the
    other 10% best (real ratings are sparse and noisy: the penalty decides the error)."""
    validation = np.random.default_rng(seed).random(len(ratings)) < 0.1
    errors = [
        rmse(
            MatrixFactorization(
                n_components=RANK, alpha=alpha, optimizer="lbfgs", batch_size="full",
                max_epochs=300, tol=1e-4, random_state=seed,
            ).fit(pairs[~validation], ratings[~validation]).predict(pairs[validation]),
            ratings[validation],
        )
        for alpha in ALPHAS
    ]  # fmt: skip
    return ALPHAS[int(np.argmin(errors))]


def plot(path: str, models: dict, X_test, y_test, figures: dict) -> None:
    """Training loss per epoch against least-squares theory; held-out predictions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.4))
    for name, model in models.items():
        curve = model.loss_curve_
        left.semilogy(range(1, len(curve) + 1), curve, label=name)
    if "train bound" in figures:
        theory = figures["train bound"] ** 2 / 2
        left.axhline(theory, color="gray", ls="--", label="theory: sigma^2 (1 - p/n) / 2")
    left.set(xlabel="epoch (L-BFGS: iteration)", ylabel="training loss", title="training")
    # Adam's point for an epoch is the mean of its batch losses, taken while it moves
    left.legend(fontsize=8)
    name, model = next(iter(models.items()))
    right.scatter(y_test, model.predict(X_test), s=2, alpha=0.3)
    low, high = float(np.min(y_test)), float(np.max(y_test))
    right.plot([low, high], [low, high], color="gray", lw=1)
    right.set(xlabel="held-out rating", ylabel=f"predicted by {name}", title="held out")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Fit every model, print the table; returns test RMSEs by model name (``<name>
    train`` for training RMSEs) and, on synthetic data, ``noise floor``, ``test bound``
    sigma sqrt(1 + p / (n - p)) and ``train bound`` sigma sqrt(1 - p / n)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small table (seconds)")
    parser.add_argument("--plot", metavar="PATH", help="save loss curves and predictions")
    parser.add_argument("--movielens", metavar="U_DATA", help="a MovieLens u.data file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    if args.movielens:
        try:
            pairs, ratings, _ = read_movielens(args.movielens)
        except (OSError, ValueError) as error:  # a user's file: a message, no stack trace
            parser.error(f"--movielens: {error}")
        truth = None
    else:
        pairs, ratings, truth = low_rank_ratings(
            size["n_users"], size["n_items"], size["density"], args.seed
        )
    held_out = np.random.default_rng(args.seed + 1).random(len(ratings)) < 0.2
    X_train, y_train = pairs[~held_out], ratings[~held_out]
    X_test, y_test = pairs[held_out], ratings[held_out]
    print(f"{len(ratings)} ratings of {len(np.unique(pairs[:, 0]))} users on "
          f"{len(np.unique(pairs[:, 1]))} items; {len(y_test)} held out")  # fmt: skip

    # synthetic: nearly plain least squares, the theory's setting; a file: validated
    alpha = choose_alpha(X_train, y_train, args.seed) if args.movielens else 1e-5
    chosen = " (chosen on a validation share)" if args.movielens else ""
    print(f"L2 strength alpha = {alpha:g}{chosen}")
    common = {"n_components": RANK, "alpha": alpha, "tol": 1e-6, "random_state": args.seed}
    models = {
        "descend MF, L-BFGS": MatrixFactorization(
            optimizer="lbfgs", batch_size="full", max_epochs=3 * size["max_epochs"], **common
        ),
        "descend MF, Adam": MatrixFactorization(
            lr=0.01, batch_size=1024, max_epochs=size["max_epochs"], **common
        ),
    }
    shape = tuple(pairs.max(axis=0) + 1)  # ids as row indices (MovieLens' start at 1)
    fitters = {  # each fits, then returns its predict(pairs) -> ratings
        name: lambda m=model: m.fit(X_train, y_train).predict for name, model in models.items()
    }
    fitters["ALS (NumPy)"] = lambda: alternating_least_squares(X_train, y_train, shape, RANK + 2)
    fitters["TruncatedSVD"] = lambda: truncated_svd(X_train, y_train, shape, RANK + 2)
    fitters["training mean"] = lambda: lambda X: np.full(len(X), y_train.mean())
    figures: dict[str, float] = {}
    print(f"{'model':<24}{'test RMSE':>11}{'train RMSE':>12}{'seconds':>10}")
    for name, fitter in fitters.items():
        start = time.perf_counter()
        predict = fitter()
        seconds = time.perf_counter() - start
        figures[name] = rmse(predict(X_test), y_test)
        figures[name + " train"] = rmse(predict(X_train), y_train)
        print(f"{name:<24}{figures[name]:>11.4f}{figures[name + ' train']:>12.4f}{seconds:>10.1f}")
    if truth is not None:
        # free parameters: k + 1 per user and per item, less the k^2 of the factors'
        # invertible mixing P Q^T = (P A)(Q A^-T)^T and the one of the biases' shift
        n, p = len(y_train), (shape[0] + shape[1]) * (RANK + 1) - RANK**2 - 1
        # sigma as the noise of each set's own ratings: the truth's error on them
        sigma = figures["noise floor"] = rmse(truth[held_out], y_test)
        sigma_train = rmse(truth[~held_out], y_train)
        figures["test bound"] = sigma * np.sqrt(1 + p / (n - p))
        figures["train bound"] = sigma_train * np.sqrt(1 - p / n)
        print(f"{'truth (the noise floor)':<24}{sigma:>11.4f}{sigma_train:>12.4f}")
        print(f"{'least-squares theory':<24}{figures['test bound']:>11.4f}"
              f"{figures['train bound']:>12.4f}   p = {p}, n = {n}")  # fmt: skip
    for name, model in models.items():
        print(f"{name}: {model.n_iter_} epochs")

    if args.plot:
        plot(args.plot, models, X_test, y_test, figures)

    model = models["descend MF, L-BFGS"]
    user = X_train[0, 0]
    items, scores = model.recommend(user, k=5, return_scores=True)
    print(f"user {user}'s top 5 unrated items: {items.tolist()}")
    print(f"  predicted ratings: {np.round(scores, 2).tolist()}")
    # a new user arrives with three ratings: partial_fit adds a row and takes a few steps
    newcomer, liked = pairs[:, 0].max() + 1, items[:3]
    for _ in range(20):
        model.partial_fit(np.column_stack([np.full(3, newcomer), liked]), [5.0, 5.0, 4.5])
    print(f"new user {newcomer} rated {liked.tolist()}; recommended: "
          f"{model.recommend(newcomer, k=5).tolist()}")  # fmt: skip
    return figures


if __name__ == "__main__":
    main()
