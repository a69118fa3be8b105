"""LogisticRegression and LinearSVC against scikit-learn: coefficients at the same penalty,
probabilities, accuracy on bundled data, L1 sparsity, labels of any kind."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.linear_model as skl
import sklearn.svm as sks
from estimator_data import split

from descend.estimators import LinearSVC, LogisticRegression

TIGHT = dict(tol=1e-10, max_epochs=5000)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    ("name", "optimizer"),
    [
        ("breast_cancer", "lbfgs"),
        ("breast_cancer", "newton"),
        ("wine", "lbfgs"),
        ("wine", "newton"),
        ("digits", "lbfgs"),
    ],
)
@pytest.mark.parametrize("C", [1.0, 0.05])
def test_coefficients_equal_sklearn_at_the_same_penalty(standardized, name, optimizer, C):
    X, y = standardized(name)
    n = len(X)
    theirs = skl.LogisticRegression(C=C, tol=1e-12, max_iter=20_000).fit(X, y)
    ours = LogisticRegression(alpha=1.0 / (C * n), optimizer=optimizer, **TIGHT).fit(X, y)
    assert ours.coef_.shape == theirs.coef_.shape
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=0, atol=1e-4)
    # multinomial intercepts are defined up to a shift: compare them centered
    np.testing.assert_allclose(
        ours.intercept_ - ours.intercept_.mean() * (len(ours.intercept_) > 1),
        theirs.intercept_ - theirs.intercept_.mean() * (len(theirs.intercept_) > 1),
        atol=1e-4,
    )
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-5)


def test_multinomial_intercepts_sum_to_zero(standardized):
    X, y = standardized("wine")
    model = LogisticRegression(alpha=1e-2).fit(X, y)
    assert model.coef_.shape == (3, 13)
    assert abs(model.intercept_.sum()) < 1e-10


@pytest.mark.parametrize("name", ["breast_cancer", "digits", "wine"])
def test_accuracy_within_a_point_of_sklearn(name):
    X_train, X_test, y_train, y_test = split(name)
    n = len(X_train)
    ours = LogisticRegression(alpha=1.0 / n).fit(X_train, y_train).score(X_test, y_test)
    theirs = skl.LogisticRegression(C=1.0).fit(X_train, y_train).score(X_test, y_test)
    assert abs(ours - theirs) <= 0.01, (ours, theirs)
    svm = LinearSVC(alpha=1.0 / n).fit(X_train, y_train).score(X_test, y_test)
    svm_theirs = sks.LinearSVC(C=1.0).fit(X_train, y_train).score(X_test, y_test)
    assert abs(svm - svm_theirs) <= 0.01, (svm, svm_theirs)


@pytest.mark.parametrize("name", ["breast_cancer", "wine"])
def test_hinge_accuracy_within_a_point_of_liblinear(name):
    X_train, X_test, y_train, y_test = split(name)
    n = len(X_train)
    ours = LinearSVC(loss="hinge", alpha=1.0 / n, random_state=0).fit(X_train, y_train)
    theirs = sks.LinearSVC(C=1.0, loss="hinge", max_iter=100_000).fit(X_train, y_train)
    assert ours._optimizer_label == "adam"
    assert abs(ours.score(X_test, y_test) - theirs.score(X_test, y_test)) <= 0.01


@pytest.mark.parametrize("name", ["breast_cancer", "wine"])
def test_squared_hinge_without_intercept_equals_liblinear(standardized, name):
    """Without an intercept the objectives are the same (LIBLINEAR penalizes the
    intercept), so the one-vs-rest coefficients must agree."""
    X, y = standardized(name)
    theirs = sks.LinearSVC(C=1.0, fit_intercept=False, tol=1e-10, max_iter=100_000).fit(X, y)
    ours = LinearSVC(alpha=1.0 / len(X), fit_intercept=False, tol=1e-10).fit(X, y)
    assert ours._optimizer_label == "newton-cg"
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-5)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_l1_logistic_matches_saga_with_the_same_zeros():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8))
    y = (X @ [2.0, -1.5, 0, 0, 1.0, 0, 0, 0] + 0.5 * rng.normal(size=300) > 0).astype(int)
    C = 0.05
    theirs = skl.LogisticRegression(
        l1_ratio=1.0, C=C, solver="saga", tol=1e-12, max_iter=100_000
    ).fit(X, y)
    ours = LogisticRegression(penalty="l1", alpha=1.0 / (C * len(X)), tol=1e-8).fit(X, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-4)
    np.testing.assert_array_equal(ours.coef_ == 0.0, theirs.coef_ == 0.0)
    assert (ours.coef_ == 0.0).sum() >= 3


def test_string_labels_and_label_order():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(90, 2))
    y = np.where(X[:, 0] > 0.3, "spam", np.where(X[:, 1] > 0, "eggs", "ham"))
    for model in (LogisticRegression(alpha=1e-3), LinearSVC(alpha=1e-3)):
        model.fit(X, y)
        assert list(model.classes_) == ["eggs", "ham", "spam"]
        assert model.score(X, y) > 0.9
        assert set(model.predict(X)) <= set(model.classes_)
    proba = LogisticRegression(alpha=1e-3).fit(X, y).predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_binary_decision_function_is_the_log_odds_of_the_second_class(standardized):
    X, y = standardized("breast_cancer")
    model = LogisticRegression(alpha=1e-3).fit(X, y)
    z = model.decision_function(X)
    assert z.shape == (len(X),)
    np.testing.assert_allclose(model.predict_proba(X)[:, 1], 1 / (1 + np.exp(-z)))
    np.testing.assert_array_equal(model.predict(X), (z > 0).astype(int))


def test_partial_fit_needs_classes_first_and_learns():
    X_train, X_test, y_train, y_test = split("breast_cancer")
    # Adam's training default (1e-3, the method table's) is a network's rate; 20 epochs of
    # a linear model from zero take the larger step this test was written with
    model = LogisticRegression(alpha=1e-4, lr=3e-2, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        model.partial_fit(X_train, y_train)
    assert not hasattr(model, "coef_")
    for _ in range(20):
        model.partial_fit(X_train, y_train, classes=[0, 1])
    assert model.score(X_test, y_test) > 0.93
    with pytest.raises(ValueError, match="differs from the classes"):
        model.partial_fit(X_train, y_train, classes=[0, 1, 2])


def test_full_batch_lbfgs_evaluates_about_once_per_iteration(standardized):
    X, y = standardized("breast_cancer")
    model = LogisticRegression(alpha=1e-3, optimizer="lbfgs").fit(X, y)
    assert model.t_ >= 10
    assert model.n_evaluations_ <= 1.3 * model.t_ + 2, (model.n_evaluations_, model.t_)
