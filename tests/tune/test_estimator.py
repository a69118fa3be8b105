"""descend.tune.tune_estimator: trials fit clones of a descend estimator, the best is
refitted on all rows (scikit-learn's refit convention)."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from sklearn.datasets import load_digits

from descend.estimators import LogisticRegression
from descend.tune import default_space, estimator_parameters, tune_estimator

optuna.logging.set_verbosity(optuna.logging.WARNING)
# a budget of 10 epochs is short on purpose: trials stop before they converge
pytestmark = pytest.mark.filterwarnings("ignore:.*did not converge")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400] / 16.0, y[:400]


def test_the_best_estimator_is_refitted_with_the_best_parameters(digits):
    X, y = digits
    space = default_space(["adam", "momentum"], batch_sizes=(32, 128))
    params = {"alpha": FloatDistribution(1e-6, 1e-2, log=True)}
    found = tune_estimator(LogisticRegression(max_epochs=10), X, y, space=space,
                           params=params, trials=6, seed=0)  # fmt: skip
    best = found.best_estimator
    assert found.complete == 6 and 0.8 < found.best_value <= 1.0
    assert best.optimizer == found.best_params["optimizer"]
    assert best.lr == found.best_params["lr"] and best.alpha == found.best_params["alpha"]
    assert best.batch_size == found.best_params["batch_size"]
    assert best.random_state == found.best_seed
    assert best.n_features_in_ == 64 and best.score(X, y) > 0.8
    # the best trial, rerun, scores what it scored
    assert found.rerun().score == found.best_value
    again = tune_estimator(LogisticRegression(max_epochs=10), X, y, space=space,
                           params=params, trials=6, seed=0)  # fmt: skip
    assert again.best_params == found.best_params
    assert np.array_equal(again.best_estimator.coef_, best.coef_)


def test_estimator_parameters_put_method_options_in_optimizer_params():
    arguments = {"optimizer": "adam", "lr": 1e-3, "betas": (0.9, 0.99), "batch_size": 32}
    assert estimator_parameters({**arguments, "estimator": {"alpha": 1e-4}}) == {
        "optimizer": "adam", "lr": 1e-3, "batch_size": 32, "alpha": 1e-4,
        "optimizer_params": {"betas": (0.9, 0.99)},
    }  # fmt: skip
    with pytest.raises(ValueError, match="schedule"):
        estimator_parameters({"optimizer": "adam", "schedule": "cosine"})


def test_a_parameter_named_twice_is_refused(digits):
    with pytest.raises(ValueError, match="lr"):
        tune_estimator(LogisticRegression(), *digits, params={"lr": FloatDistribution(0.1, 1)})
