"""Matrix factorization on a synthetic ratings table: fit, predict, recommend, and update
online when new ratings (and a new user) arrive.

Ratings follow r = 3 + b_u + c_i + p_u . q_i + noise with rank-4 factors; a fifth of the
observed ratings are held out.

Run: .venv/bin/python examples/matrix_factorization.py
"""

from __future__ import annotations

import numpy as np

from descend.estimators import MatrixFactorization


def ratings(n_users: int = 300, n_items: int = 200, rank: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    P = rng.normal(scale=0.7, size=(n_users, rank))
    Q = rng.normal(scale=0.7, size=(n_items, rank))
    b = rng.normal(scale=0.4, size=n_users)
    c = rng.normal(scale=0.4, size=n_items)
    users, items = np.nonzero(rng.random((n_users, n_items)) < 0.15)
    r = 3.0 + b[users] + c[items] + np.sum(P[users] * Q[items], axis=1)
    r += 0.2 * rng.normal(size=len(r))
    return np.column_stack([users, items]), np.clip(r, 0.5, 5.5)


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def main() -> None:
    X, y = ratings()
    rng = np.random.default_rng(1)
    test = rng.random(len(y)) < 0.2
    X_train, y_train, X_test, y_test = X[~test], y[~test], X[test], y[test]
    print(f"{len(y_train)} training ratings, {len(y_test)} held out")

    model = MatrixFactorization(
        n_components=4, alpha=1e-4, lr=0.01, max_epochs=300, early_stopping=True,
        random_state=0,
    )  # fmt: skip
    model.fit(X_train, y_train)
    print(
        f"after {model.n_iter_} epochs: test RMSE {rmse(model.predict(X_test), y_test):.3f} "
        f"(predicting the mean: {rmse(np.full(len(y_test), y_train.mean()), y_test):.3f})"
    )

    user = 7
    items, scores = model.recommend(user, k=5, return_scores=True)
    rated = np.sum(X_train[:, 0] == user)
    print(f"user {user} rated {rated} items; top 5 unrated: {items.tolist()}")
    print(f"  predicted ratings {np.round(scores, 2).tolist()}")

    # a new user arrives with three ratings: partial_fit adds a row and takes a few steps
    new_user = 10_000
    favourites = items[:3]
    for _ in range(20):
        model.partial_fit(np.column_stack([np.full(3, new_user), favourites]), [5.0, 5.0, 4.5])
    print(
        f"new user {new_user}: {len(model.users_)} users now; recommended "
        f"{model.recommend(new_user, k=5).tolist()} (not the 3 items already rated)"
    )


if __name__ == "__main__":
    main()
