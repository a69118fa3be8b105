"""Saved estimators are plain data that torch's safe loader reads, and predict the same."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from descend.estimators import (
    LinearRegression,
    LinearSVC,
    LogisticRegression,
    MatrixFactorization,
    MLPClassifier,
    MLPRegressor,
)
from descend.estimators.persist import load, save

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

rng = np.random.default_rng(0)
X = pd.DataFrame(rng.normal(size=(60, 3)), columns=["p", "q", "r"])
LABELS = np.where(X["p"] > 0, "up", np.where(X["q"] > 0, "flat", "down"))
PAIRS = np.column_stack([rng.integers(0, 6, 60), rng.integers(0, 5, 60)])

CASES = [
    (lambda: LogisticRegression(), X, LABELS),
    (lambda: LinearSVC(), X.to_numpy(), LABELS),
    (lambda: MLPClassifier((5,), batch_norm=True, dropout=0.2, max_epochs=3), X, LABELS),
    (lambda: LinearRegression(), X.to_numpy(), X.to_numpy()[:, :2]),
    (lambda: MLPRegressor((4,), max_epochs=3), X, X["r"].to_numpy()),
    (lambda: MatrixFactorization(n_components=2, max_epochs=3), PAIRS, X["p"].to_numpy()),
]


@pytest.mark.parametrize(("make", "features", "target"), CASES)
def test_round_trip_predicts_the_same(tmp_path, make, features, target):
    model = make().set_params(random_state=0).fit(features, target)
    path = tmp_path / "model.pt"
    save(model, path, target="y", note=("kept", 1))
    raw = torch.load(path, weights_only=True)
    assert raw["estimator"]["class"] == type(model).__name__
    back, extra = load(path)
    assert extra == {"target": "y", "note": ("kept", 1)}
    np.testing.assert_array_equal(back.predict(features), model.predict(features))
    assert back.get_params() == model.get_params()
    assert back.n_iter_ == model.n_iter_ and back.loss_curve_ == model.loss_curve_
    if hasattr(model, "feature_names_in_"):
        np.testing.assert_array_equal(back.feature_names_in_, model.feature_names_in_)
    back.partial_fit(
        features, target, **({"classes": model.classes_} if hasattr(model, "classes_") else {})
    )


def test_refuses_what_is_not_data(tmp_path):
    model = LogisticRegression(optimizer=lambda params: torch.optim.SGD(params, lr=0.1))
    model.fit(X, LABELS)
    with pytest.raises(TypeError, match="non-data hyperparameters \\['optimizer'\\]"):
        save(model, tmp_path / "m.pt")
    torch.save({"estimator": {"format": "other"}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a saved descend estimator"):
        load(tmp_path / "other.pt")
