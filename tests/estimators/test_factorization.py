"""MatrixFactorization: recovery of low-rank ratings, recommendations, unseen ids, online
updates with new users, ids of any kind."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from descend.estimators import MatrixFactorization


def ratings(n_users=60, n_items=40, k=3, density=0.5, noise=0.05, seed=0):
    """Ratings r = mu + b_u + c_i + p_u . q_i + noise on a random subset of the pairs."""
    rng = np.random.default_rng(seed)
    P, Q = rng.normal(size=(n_users, k)), rng.normal(size=(n_items, k))
    b, c = rng.normal(scale=0.5, size=n_users), rng.normal(scale=0.5, size=n_items)
    users, items = np.nonzero(rng.random((n_users, n_items)) < density)
    full = 3.0 + b[:, None] + c[None, :] + P @ Q.T
    y = full[users, items] + noise * rng.normal(size=len(users))
    return np.column_stack([users, items]), y, full


def test_recovers_a_low_rank_rating_matrix():
    X, y, _ = ratings()
    rng = np.random.default_rng(1)
    test = rng.random(len(y)) < 0.2
    model = MatrixFactorization(
        n_components=3, alpha=1e-5, lr=0.02, max_epochs=300, batch_size=64, random_state=0
    )
    model.fit(X[~test], y[~test])
    rmse = np.sqrt(np.mean((model.predict(X[test]) - y[test]) ** 2))
    baseline = np.sqrt(np.mean((y[~test].mean() - y[test]) ** 2))
    assert rmse < 0.2 * baseline, (rmse, baseline)
    assert model.user_factors_.shape == (60, 3) and model.item_factors_.shape == (40, 3)
    assert model.global_mean_ == pytest.approx(y[~test].mean())
    by_hand = (
        model.global_mean_
        + model.user_bias_[X[test, 0]]
        + model.item_bias_[X[test, 1]]
        + np.sum(model.user_factors_[X[test, 0]] * model.item_factors_[X[test, 1]], axis=1)
    )
    np.testing.assert_allclose(model.predict(X[test]), by_hand)


def test_recommend_ranks_unrated_items_by_predicted_rating():
    X, y, _ = ratings(n_users=20, n_items=15, seed=2)
    model = MatrixFactorization(n_components=3, max_epochs=30, random_state=0).fit(X, y)
    user = 4
    rated = set(X[X[:, 0] == user, 1])
    items, scores = model.recommend(user, k=5, return_scores=True)
    assert len(items) == 5 and not rated & set(items)
    assert np.all(np.diff(scores) <= 0)
    unrated = np.array(sorted(set(range(15)) - rated))
    predicted = model.predict(np.column_stack([np.full(len(unrated), user), unrated]))
    np.testing.assert_array_equal(items, unrated[np.argsort(-predicted, kind="stable")[:5]])
    everything = model.recommend(user, k=100, exclude_rated=False)
    assert len(everything) == 15 and rated <= set(everything)


def test_unknown_ids_fall_back_to_what_is_known():
    X, y, _ = ratings(n_users=10, n_items=8, seed=3)
    model = MatrixFactorization(n_components=2, max_epochs=10, random_state=0).fit(X, y)
    item = 2
    unknown_user = model.predict([[999, item]])[0]
    assert unknown_user == pytest.approx(model.global_mean_ + model.item_bias_[item])
    assert model.predict([[999, 999]])[0] == pytest.approx(model.global_mean_)
    popular = model.recommend(999, k=3)
    np.testing.assert_array_equal(popular, np.argsort(-model.item_bias_, kind="stable")[:3])


def test_string_ids_in_a_data_frame_and_online_updates_with_new_users():
    frame = pd.DataFrame(
        {"user": ["ann", "bob", "ann", "cid", "bob", "cid"], "item": ["x", "y", "y", "x", "z", "z"]}
    )
    y = np.array([5.0, 3.0, 4.0, 1.0, 2.0, 4.5])
    model = MatrixFactorization(n_components=2, max_epochs=50, lr=0.05, random_state=0)
    model.fit(frame, y)
    assert list(model.users_) == ["ann", "bob", "cid"] and list(model.items_) == ["x", "y", "z"]
    assert list(model.feature_names_in_) == ["user", "item"]
    before = model.predict(frame)
    bob = model.user_factors_[1].copy()
    model.partial_fit(pd.DataFrame({"user": ["dan"], "item": ["x"]}), [4.0])
    assert list(model.users_) == ["ann", "bob", "cid", "dan"]
    assert model.user_factors_.shape == (4, 2)
    np.testing.assert_allclose(model.user_factors_[1], bob, atol=0.05)  # one small step
    assert np.abs(model.predict(frame) - before).max() < 0.2
    assert "x" not in model.recommend("dan", k=3)


def test_integer_weights_equal_repeated_ratings():
    X, y, _ = ratings(n_users=12, n_items=9, seed=4)
    weights = np.random.default_rng(5).integers(1, 4, size=len(y))
    params = dict(n_components=2, batch_size="full", max_epochs=40, random_state=0)
    weighted = MatrixFactorization(**params).fit(X, y, sample_weight=weights)
    repeated = MatrixFactorization(**params).fit(X.repeat(weights, 0), y.repeat(weights))
    assert weighted.global_mean_ == pytest.approx(np.average(y, weights=weights))
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-10)
    unweighted = MatrixFactorization(**params).fit(X, y)
    assert np.abs(unweighted.predict(X) - weighted.predict(X)).max() > 1e-3


def test_errors_name_the_problem():
    model = MatrixFactorization(max_epochs=2)
    with pytest.raises(ValueError, match="2 columns"):
        model.fit(np.zeros((4, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        model.fit(np.array([[1.0, np.nan], [2.0, 3.0]]), [1.0, 2.0])
    with pytest.raises(ValueError, match="numeric"):
        model.fit(np.array([[1, 2], [2, 3]]), ["a", "b"])
    assert not hasattr(model, "users_")
    model.fit(np.array([[1, 2], [2, 3]]), [1.0, 2.0])
    with pytest.raises(ValueError, match="k must be"):
        model.recommend(1, k=0)
