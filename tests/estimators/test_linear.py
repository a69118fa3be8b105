"""LinearRegression against closed forms and scikit-learn: least squares, ridge, lasso,
elastic net, weights, several targets, online learning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sklearn.linear_model as sk
from estimator_data import split

from descend.estimators import LinearRegression


def lstsq(X, y, weights=None):
    """Closed-form (weighted) least squares with an intercept: (coef, intercept)."""
    A = np.column_stack([X, np.ones(len(X))])
    if weights is not None:
        root = np.sqrt(weights)
        A, y = A * root[:, None], y * (root if y.ndim == 1 else root[:, None])
    solution = np.linalg.lstsq(A, y, rcond=None)[0]
    return solution[:-1], solution[-1]


# L-BFGS cannot reach tol=1e-10 in floating point and says so; it stops where f stops
# changing, which is close enough
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("optimizer", ["auto", "newton", "lbfgs"])
@pytest.mark.parametrize("scaled", [True, False])
def test_equals_closed_form_least_squares(standardized, optimizer, scaled):
    X, y = standardized("diabetes")
    if not scaled:  # the raw features: tiny, correlated columns (condition number ~ 1e3)
        from sklearn.datasets import load_diabetes

        X, y = load_diabetes(return_X_y=True)
    model = LinearRegression(optimizer=optimizer, tol=1e-10).fit(X, y)
    coef, intercept = lstsq(X, y)
    np.testing.assert_allclose(model.coef_, coef, rtol=0, atol=1e-6 * max(1, np.abs(coef).max()))
    assert abs(model.intercept_ - intercept) <= 1e-6 * max(1, abs(intercept))
    assert model.coef_.shape == (X.shape[1],) and isinstance(model.intercept_, float)


def test_default_solves_least_squares_in_one_newton_step(standardized):
    X, y = standardized("diabetes")
    model = LinearRegression().fit(X, y)
    coef, _ = lstsq(X, y)
    np.testing.assert_allclose(model.coef_, coef, atol=1e-8)
    assert model._optimizer_label == "newton" and model.t_ <= 2


def test_sample_weight_is_weighted_least_squares_and_repetition():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = X @ [1.0, -2.0, 0.5, 3.0] + 0.3 * rng.normal(size=60)
    weights = rng.integers(0, 4, size=60).astype(float)
    model = LinearRegression().fit(X, y, sample_weight=weights)
    coef, intercept = lstsq(X, y, weights)
    np.testing.assert_allclose(model.coef_, coef, atol=1e-8)
    repeated = LinearRegression().fit(
        X.repeat(weights.astype(int), 0), y.repeat(weights.astype(int))
    )
    np.testing.assert_allclose(model.coef_, repeated.coef_, atol=1e-8)
    assert abs(model.intercept_ - intercept) < 1e-8


def test_several_targets_are_fitted_as_if_alone():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 5))
    Y = np.column_stack([X @ rng.normal(size=5), X @ rng.normal(size=5) + 2.0])
    model = LinearRegression(penalty="l2", alpha=0.1).fit(X, Y)
    assert model.coef_.shape == (2, 5) and model.intercept_.shape == (2,)
    for k in range(2):
        alone = LinearRegression(penalty="l2", alpha=0.1).fit(X, Y[:, k])
        np.testing.assert_allclose(model.coef_[k], alone.coef_, atol=1e-7)
    assert model.predict(X).shape == (80, 2)


def test_ridge_matches_sklearn_ridge_with_alpha_times_n(standardized):
    X, y = standardized("diabetes")
    n, alpha = len(X), 0.05
    ours = LinearRegression(penalty="l2", alpha=alpha, tol=1e-10).fit(X, y)
    theirs = sk.Ridge(alpha=alpha * n).fit(X, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-6)
    assert abs(ours.intercept_ - theirs.intercept_) < 1e-6


@pytest.mark.parametrize(("penalty", "l1_ratio"), [("l1", 1.0), ("elasticnet", 0.5)])
def test_lasso_and_elastic_net_match_sklearn_with_exact_zeros(standardized, penalty, l1_ratio):
    X, y = standardized("diabetes")
    alpha = 0.5
    ours = LinearRegression(
        penalty=penalty, alpha=alpha, l1_ratio=l1_ratio, tol=1e-8, max_epochs=10_000
    ).fit(X, y)
    theirs = sk.ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-12, max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-4)
    np.testing.assert_array_equal(ours.coef_ == 0.0, theirs.coef_ == 0.0)
    assert (ours.coef_ == 0.0).sum() >= (1 if penalty == "l1" else 0)
    assert ours._optimizer_label == "gd"  # proximal gradient, full batch


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (dict(), sk.LinearRegression()),
        (dict(penalty="l2", alpha=1.0 / 331), sk.Ridge(alpha=1.0)),
        (dict(penalty="l1", alpha=0.5, max_epochs=5000), sk.Lasso(alpha=0.5)),
    ],
    ids=["ols", "ridge", "lasso"],
)
def test_r2_within_a_point_of_sklearn_on_diabetes(ours, theirs):
    X_train, X_test, y_train, y_test = split("diabetes")
    assert len(X_train) == 331
    mine = LinearRegression(**ours).fit(X_train, y_train).score(X_test, y_test)
    reference = theirs.fit(X_train, y_train).score(X_test, y_test)
    assert abs(mine - reference) <= 0.01, (mine, reference)


def test_fit_intercept_false_fits_through_the_origin():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 3))
    y = X @ [1.0, 2.0, 3.0] + 5.0
    model = LinearRegression(fit_intercept=False).fit(X, y)
    coef = np.linalg.lstsq(X, y, rcond=None)[0]
    np.testing.assert_allclose(model.coef_, coef, atol=1e-8)
    assert model.intercept_ == 0.0


def test_float32_data_trains_and_stays_float32():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 4)).astype(np.float32)
    y = (X @ np.array([1, -1, 2, 0.5], dtype=np.float32) + 1).astype(np.float32)
    model = LinearRegression(optimizer="lbfgs", tol=1e-4).fit(X, y)
    assert model.coef_.dtype == np.float32
    np.testing.assert_allclose(model.coef_, [1, -1, 2, 0.5], atol=1e-4)


def test_pandas_frames_record_feature_names():
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(rng.normal(size=(30, 2)), columns=["height", "width"])
    target = pd.Series(frame["height"] * 2 - frame["width"])
    model = LinearRegression().fit(frame, target)
    assert list(model.feature_names_in_) == ["height", "width"]
    np.testing.assert_allclose(model.predict(frame), target, atol=1e-8)
    refit = model.fit(frame.to_numpy(), target.to_numpy())
    assert not hasattr(refit, "feature_names_in_")


def test_partial_fit_learns_online_and_keeps_adam_state():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 3))
    y = X @ [2.0, -1.0, 0.5] + 1.0
    model = LinearRegression(lr=0.05, random_state=0)
    losses = []
    for _ in range(30):
        for chunk in np.array_split(np.arange(400), 4):
            model.partial_fit(X[chunk], y[chunk])
        losses.append(model.loss_)
    assert model._optimizer_label == "adam" and model.n_iter_ == 120
    state = model._optimizer.state[model._module.weight]
    assert int(state["step"]) == model.t_ == 120 * 1  # one step per call: 100 rows < 200
    assert losses[-1] < 1e-3 * losses[0]
    np.testing.assert_allclose(model.coef_, [2.0, -1.0, 0.5], atol=0.02)


def test_partial_fit_continues_from_coefficients_set_by_hand():
    X = np.eye(3)
    y = np.array([1.0, 2.0, 3.0])
    model = LinearRegression().fit(X, y)
    model.coef_ = np.zeros(3)
    model.partial_fit(X, y)
    assert np.abs(model.coef_).max() < 0.1  # one Adam step from zero, not from the fit


def test_mini_batch_l2_as_weight_decay_is_the_same_penalty():
    """On mini-batches with Adam the L2 gradient is given as weight decay on the weights;
    with weight_decay given explicitly (0) fit's penalty term is used instead: same path."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(300, 4))
    y = X @ [1.0, -1.0, 2.0, 0.0] + 0.5 + 0.1 * rng.normal(size=300)
    params = dict(penalty="l2", alpha=0.3, optimizer="adam", batch_size=32, lr=0.01)
    params.update(max_epochs=40, random_state=0, tol=0.0, n_iter_no_change=100)
    decayed = LinearRegression(**params).fit(X, y)
    assert decayed._optimizer.param_groups[0]["weight_decay"] == 0.3
    assert decayed._optimizer.param_groups[1]["weight_decay"] == 0.0  # the intercept
    by_term = LinearRegression(**params, optimizer_params={"weight_decay": 0.0}).fit(X, y)
    assert len(by_term._optimizer.param_groups) == 1
    np.testing.assert_allclose(decayed.coef_, by_term.coef_, atol=1e-9)
    assert abs(decayed.intercept_ - by_term.intercept_) < 1e-9
    ridge = sk.Ridge(alpha=0.3 * 300).fit(X, y)  # what both approach
    np.testing.assert_allclose(decayed.coef_, ridge.coef_, atol=0.05)
