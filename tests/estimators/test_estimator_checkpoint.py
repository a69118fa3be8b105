"""``fit(X, y, checkpoint=PATH, resume=True)``: a fit stopped after some epochs and resumed
from its checkpoint ends bit-identical to one never stopped (mini-batch Adam with held-out
rows, full-batch L-BFGS), a missing file starts afresh, and the arguments are checked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from descend.estimators import LogisticRegression, MLPClassifier


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(150, 4))
    return X, (X[:, 0] - 0.5 * X[:, 2] + 0.3 * rng.normal(size=150) > 0).astype(int)


def mlp(epochs: int) -> MLPClassifier:
    return MLPClassifier(
        hidden_layer_sizes=(8,), batch_size=16, max_epochs=epochs, tol=0.0, random_state=0
    )


def logistic(epochs: int) -> LogisticRegression:
    return LogisticRegression(max_epochs=epochs, tol=0.0, random_state=0)


def parameters(estimator) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in estimator._module.parameters()])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(("make", "stop", "end"), [(mlp, 2, 5), (logistic, 3, 8)])
def test_a_resumed_fit_ends_bit_identical_to_one_never_stopped(make, stop, end, tmp_path):
    X, y = data()
    held_out = (X[:30], y[:30])
    straight = make(end).fit(X, y, validation=held_out)
    checkpoint = tmp_path / "fit.pt"
    make(stop).fit(X, y, validation=held_out, checkpoint=checkpoint)
    resumed = make(end).fit(X, y, validation=held_out, checkpoint=checkpoint, resume=True)
    assert torch.equal(parameters(resumed), parameters(straight))
    assert resumed.loss_curve_ == straight.loss_curve_
    assert resumed.validation_loss_curve_ == straight.validation_loss_curve_
    assert (resumed.t_, resumed.n_iter_) == (straight.t_, straight.n_iter_)
    # the checkpoint was read: its run's seed differs from another random_state's
    with pytest.raises(ValueError, match="seed"):
        make(end).set_params(random_state=1).fit(X, y, checkpoint=checkpoint, resume=True)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_resume_without_a_file_yet_starts_afresh(tmp_path) -> None:
    X, y = data()
    fresh = mlp(2).fit(X, y, checkpoint=tmp_path / "new.pt", resume=True)
    assert (tmp_path / "new.pt").is_file()
    assert torch.equal(parameters(fresh), parameters(mlp(2).fit(X, y)))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"resume": True}, ValueError, "resume=True needs checkpoint="),
        ({"resume": "yes", "checkpoint": "a.pt"}, TypeError, "resume must be True or False"),
        ({"checkpoint": 3}, TypeError, "checkpoint must be a file path, got int"),
    ],
)
def test_checkpoint_arguments_are_checked(kwargs, error, match) -> None:
    X, y = data()
    with pytest.raises(error, match=match):
        mlp(1).fit(X, y, **kwargs)
