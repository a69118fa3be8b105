"""MLPClassifier and MLPRegressor: accuracy against scikit-learn's networks of the same
architecture, batch size and optimizer; determinism; batch norm, dropout, early stopping,
online learning and pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import sklearn.neural_network as skn
import torch
from estimator_data import split
from sklearn.preprocessing import StandardScaler

from descend.estimators import MLPClassifier, MLPRegressor
from descend.estimators.mlp import BatchNorm

SEEDS = (0, 1, 2)

# most tests train for a few epochs on purpose; stopping short is then expected
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.mark.parametrize(
    ("name", "hidden", "epochs"),
    [("breast_cancer", (100,), 200), ("wine", (100,), 200), ("digits", (64,), 50)],
)
def test_accuracy_within_a_point_of_sklearn(name, hidden, epochs):
    """Mean test accuracy over three seeds (each library's own initialization), same
    architecture, Adam(lr=1e-3), batch 200; scikit-learn's alpha is per batch row."""
    X_train, X_test, y_train, y_test = split(name)
    ours, theirs = [], []
    for seed in SEEDS:
        model = MLPClassifier(hidden, alpha=1e-4 / 200, max_epochs=epochs, random_state=seed)
        ours.append(model.fit(X_train, y_train).score(X_test, y_test))
        reference = skn.MLPClassifier(hidden, alpha=1e-4, max_iter=epochs, random_state=seed)
        theirs.append(reference.fit(X_train, y_train).score(X_test, y_test))
    assert abs(np.mean(ours) - np.mean(theirs)) <= 0.01, (ours, theirs)


def test_regressor_r2_within_a_point_of_sklearn_on_diabetes():
    """Diabetes is small and noisy; a regularized (16,) network trained with batches of 32
    gives a stable R^2, compared as a mean over five seeds (targets standardized)."""
    X_train, X_test, y_train, y_test = split("diabetes")
    scaler = StandardScaler().fit(y_train[:, None])
    y_train, y_test = (scaler.transform(v[:, None])[:, 0] for v in (y_train, y_test))
    ours, theirs = [], []
    for seed in range(5):
        model = MLPRegressor((16,), alpha=10 / 32, batch_size=32, max_epochs=100, random_state=seed)
        ours.append(model.fit(X_train, y_train).score(X_test, y_test))
        reference = skn.MLPRegressor(
            hidden_layer_sizes=(16,), alpha=10, batch_size=32, max_iter=100, random_state=seed
        )
        theirs.append(reference.fit(X_train, y_train).score(X_test, y_test))
    assert abs(np.mean(ours) - np.mean(theirs)) <= 0.01, (ours, theirs)
    assert np.mean(ours) > 0.3


def test_same_random_state_same_network_and_different_state_different_network():
    X, _, y, _ = split("wine")
    a = MLPClassifier((8,), dropout=0.2, max_epochs=5, random_state=3).fit(X, y)
    b = MLPClassifier((8,), dropout=0.2, max_epochs=5, random_state=3).fit(X, y)
    c = MLPClassifier((8,), dropout=0.2, max_epochs=5, random_state=4).fit(X, y)
    for wa, wb, wc in zip(a.coefs_, b.coefs_, c.coefs_):
        np.testing.assert_array_equal(wa, wb)
        assert not np.array_equal(wa, wc)
    torch.manual_seed(0)
    before = torch.rand(3)
    torch.manual_seed(0)
    MLPClassifier((8,), dropout=0.5, max_epochs=2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(torch.rand(3), before)  # the global RNG is untouched


def test_architecture_follows_the_parameters():
    X, _, y, _ = split("wine")
    model = MLPClassifier(
        (16, 8), activation="tanh", batch_norm=True, dropout=0.25, max_epochs=3, random_state=0
    ).fit(X, y)
    kinds = [type(layer).__name__ for layer in model._module]
    assert kinds == [
        "Linear", "BatchNorm", "Tanh", "Dropout",
        "Linear", "BatchNorm", "Tanh", "Dropout",
        "Linear",
    ]  # fmt: skip
    assert [w.shape for w in model.coefs_] == [(13, 16), (16, 8), (8, 3)]
    assert model.n_layers_ == 4 and model.out_activation_ == "softmax"
    norm = model._module[1]
    assert not torch.equal(norm.running_mean, torch.zeros(16))  # statistics were tracked


def test_batch_norm_handles_a_last_batch_of_one_row():
    X, _, y, _ = split("wine")
    rows = 2 * 16 + 1
    model = MLPClassifier((8,), batch_norm=True, batch_size=16, max_epochs=2, random_state=0)
    model.fit(X[:rows], y[:rows])
    layer = BatchNorm(4).double()
    layer.train()
    one = torch.randn(1, 4, dtype=torch.float64)
    np.testing.assert_allclose(layer(one).detach(), one / np.sqrt(1 + 1e-5), rtol=1e-6)


def test_predictions_use_evaluation_mode_and_are_batch_independent():
    X, X_test, y, _ = split("breast_cancer")
    model = MLPClassifier((16,), batch_norm=True, dropout=0.5, max_epochs=5, random_state=0)
    model.fit(X, y)
    whole = model.predict_proba(X_test)
    one_by_one = np.vstack([model.predict_proba(X_test[i : i + 1]) for i in range(10)])
    np.testing.assert_allclose(whole[:10], one_by_one, rtol=1e-12)
    np.testing.assert_array_equal(whole, model.predict_proba(X_test))  # no dropout noise
    assert model._module.training is False


def test_early_stopping_keeps_the_best_validation_weights():
    X, X_test, y, y_test = split("digits")
    model = MLPClassifier(
        (32,), early_stopping=True, n_iter_no_change=3, max_epochs=200, random_state=0
    ).fit(X, y)
    curve = model.validation_loss_curve_
    assert len(curve) == model.n_iter_ < 200
    assert np.argmin(curve) == len(curve) - 1 - 3  # the best epoch, then 3 without gain
    assert model.score(X_test, y_test) > 0.9


def test_explicit_validation_set_is_scored_every_epoch():
    X, X_test, y, y_test = split("wine")
    model = MLPClassifier((8,), max_epochs=7, random_state=0)
    model.fit(X, y, validation=(X_test, y_test))
    assert len(model.validation_loss_curve_) == len(model.loss_curve_) == 7
    with pytest.raises(ValueError, match="validation X has 3 features"):
        model.fit(X, y, validation=(X_test[:, :3], y_test))


def test_partial_fit_continues_training_and_keeps_adam_moments():
    X, X_test, y, y_test = split("breast_cancer")
    model = MLPClassifier((16,), lr=1e-2, random_state=0)
    model.partial_fit(X, y, classes=np.unique(y))
    steps = model.t_
    first = model.loss_
    for _ in range(9):
        model.partial_fit(X, y)
    state = model._optimizer.state[model._module[0].weight]
    assert int(state["step"]) == model.t_ == 10 * steps
    assert model.loss_ < first and model.n_iter_ == 10
    assert len(model.loss_curve_) == 10
    assert model.score(X_test, y_test) > 0.9


def test_regressor_several_targets_and_pickle_round_trip():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    Y = np.column_stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]])
    model = MLPRegressor((32,), lr=1e-2, max_epochs=150, random_state=0).fit(X, Y)
    assert model.predict(X).shape == (200, 2) and model.n_outputs_ == 2
    assert model.score(X, Y) > 0.8
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.predict(X), model.predict(X))
    clone.partial_fit(X, Y)  # a fresh optimizer after unpickling, same weights to start
    assert clone.t_ == model.t_ + 1


def test_optimizer_by_name_instance_class_or_factory():
    X, _, y, _ = split("wine")
    by_name = MLPClassifier((8,), optimizer="rmsprop", lr=1e-2, max_epochs=20, random_state=0)
    template = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.05, momentum=0.9)
    by_instance = MLPClassifier((8,), optimizer=template, max_epochs=20, random_state=0)
    by_class = MLPClassifier(
        (8,), optimizer=torch.optim.Adagrad, lr=0.1, max_epochs=20, random_state=0
    )
    by_factory = MLPClassifier(
        (8,),
        optimizer=lambda params: torch.optim.Adam(params, lr=1e-2),
        max_epochs=20,
        random_state=0,
    )
    for model in (by_name, by_instance, by_class, by_factory):
        assert model.fit(X, y).score(X, y) > 0.9
    assert type(by_instance._optimizer) is torch.optim.SGD
    assert by_instance._optimizer.param_groups[0]["momentum"] == 0.9
    assert by_instance._optimizer is not template
