"""Bad input is refused with scikit-learn-style messages, and a failed fit changes nothing."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from descend.estimators import (
    LinearRegression,
    LinearSVC,
    LogisticRegression,
    MLPClassifier,
    MLPRegressor,
)
from descend.optim import NaturalGradient

CLASSIFIERS = [LogisticRegression, LinearSVC, lambda **kw: MLPClassifier((4,), **kw)]
REGRESSORS = [LinearRegression, lambda **kw: MLPRegressor((4,), **kw)]
ALL = CLASSIFIERS + REGRESSORS


def data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, 3))
    return X, (X[:, 0] > 0).astype(int)


def fitted_state(model):
    return {k: v for k, v in vars(model).items() if k.endswith("_")}


@pytest.mark.parametrize("make", ALL)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_X(make, bad):
    X, y = data()
    X[3, 1] = bad
    model = make(max_epochs=2)
    with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
        model.fit(X, y)
    assert not fitted_state(model)


@pytest.mark.parametrize("make", ALL)
def test_wrong_shapes(make):
    X, y = data()
    model = make(max_epochs=2)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        model.fit(X, y[:-1])
    with pytest.raises(ValueError, match="Expected 2D array"):
        model.fit(X[:, 0], y)
    model.fit(X, y)
    with pytest.raises(ValueError, match="X has 2 features, but .* is expecting 3"):
        model.predict(X[:, :2])


@pytest.mark.parametrize("make", ALL)
def test_predict_before_fit(make):
    with pytest.raises(NotFittedError):
        make().predict(np.zeros((2, 3)))


@pytest.mark.parametrize("make", CLASSIFIERS)
def test_a_single_class(make):
    X, _ = data()
    with pytest.raises(ValueError, match="at least 2 classes .* only one class: 1"):
        make(max_epochs=2).fit(X, np.ones(len(X), dtype=int))


@pytest.mark.parametrize("make", CLASSIFIERS)
def test_continuous_targets_for_a_classifier(make):
    X, _ = data()
    with pytest.raises(ValueError, match="Unknown label type"):
        make(max_epochs=2).fit(X, np.linspace(0, 1, len(X)))


@pytest.mark.parametrize("make", REGRESSORS)
def test_string_targets_for_a_regressor(make):
    X, y = data()
    with pytest.raises(ValueError, match="y must be numeric"):
        make(max_epochs=2).fit(X, np.where(y == 1, "yes", "no"))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (dict(alpha=-1.0), "'alpha' parameter .* must be a float in the range \\[0"),
        (dict(max_epochs=0), "'max_epochs' parameter"),
        (dict(batch_size="huge"), "'batch_size' parameter"),
        (dict(lr=0.0), "'lr' parameter"),
        (dict(penalty="l3"), "'penalty' parameter"),
        (dict(optimizer="sgdd"), "optimizer='sgdd' is not a descend method; valid: 'auto'"),
        (dict(optimizer=3), "'optimizer' parameter"),
        (dict(device="gpu0"), "device='gpu0' is not a torch device"),
    ],
)
def test_bad_hyperparameters(params, match):
    X, y = data()
    model = LogisticRegression(**params)
    with pytest.raises(ValueError, match=match):
        model.fit(X, y)
    assert not fitted_state(model)


def test_methods_that_do_not_fit_the_problem():
    X, y = data()
    with pytest.raises(ValueError, match="cannot take an L1 penalty"):
        LogisticRegression(penalty="l1", optimizer="lbfgs").fit(X, y)
    with pytest.raises(ValueError, match="needs batch_size='full'"):
        LogisticRegression(optimizer="newton", batch_size=8).fit(X, y)
    with pytest.raises(ValueError, match="NaturalGradient needs a closure"):
        LogisticRegression(optimizer=NaturalGradient).fit(X, y)
    with pytest.raises(TypeError, match="must return a torch.optim.Optimizer"):
        LogisticRegression(optimizer=lambda params: "sgd").fit(X, y)


@pytest.mark.parametrize("make", ALL)
def test_a_failed_refit_leaves_the_previous_model(make):
    X, y = data()
    model = make(max_epochs=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    before = {
        k: np.copy(v) if isinstance(v, np.ndarray) else v for k, v in fitted_state(model).items()
    }
    predictions = model.predict(X)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        model.fit(bad, y)
    with pytest.raises(ValueError):
        model.fit(np.hstack([X, X]), np.full(len(X), np.nan))
    assert set(fitted_state(model)) == set(before)
    np.testing.assert_array_equal(model.predict(X), predictions)
    assert model.n_features_in_ == 3


def test_a_failure_inside_training_leaves_the_previous_model():
    """An optimizer that raises mid-run: the refit is abandoned, the old model stays."""
    X, y = data()
    model = LogisticRegression().fit(X, y)
    coef = model.coef_.copy()

    class Broken(torch.optim.SGD):
        def step(self, closure=None):
            raise RuntimeError("broken optimizer")

    model.set_params(optimizer=lambda params: Broken(params, lr=0.1))
    with pytest.raises(RuntimeError, match="broken optimizer"):
        model.fit(X + 1.0, y)
    np.testing.assert_array_equal(model.coef_, coef)


def test_stopping_short_warns():
    X, y = data()
    with pytest.warns(ConvergenceWarning, match="did not converge in max_epochs=2: the grad"):
        LogisticRegression(max_epochs=2).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="the loss still improved by more than tol"):
        MLPClassifier((4,), max_epochs=2).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="proximal gradient mapping"):
        LinearRegression(penalty="l1", alpha=0.01, max_epochs=2).fit(X, X[:, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        LogisticRegression(alpha=1e-2).fit(X, y)  # converges: no warning


def test_partial_fit_with_other_features_or_labels():
    X, y = data()
    model = LogisticRegression().partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="X has 2 features"):
        model.partial_fit(X[:, :2], y)
    with pytest.raises(ValueError, match=r"y has labels \[7\] unseen in fit"):
        model.partial_fit(X, np.where(y == 1, 7, 0))
    with pytest.raises(ValueError, match="not in classes"):
        LogisticRegression().partial_fit(X, y + 5, classes=[0, 1])


def test_a_factory_building_a_line_search_gets_the_full_batch():
    X, y = data()
    factory = lambda params: torch.optim.LBFGS(params, line_search_fn="strong_wolfe")  # noqa: E731
    model = LogisticRegression(alpha=1e-2, optimizer=factory, max_epochs=20).fit(X, y)
    assert model.t_ == model.n_iter_  # one step per epoch: the full batch
    assert model.score(X, y) > 0.9
    with pytest.raises(ValueError, match="factory built LBFGS, which searches"):
        LogisticRegression(optimizer=factory, batch_size=8).fit(X, y)
