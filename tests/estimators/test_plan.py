"""The planning of a fit: default rates from the method table, the 1/L step, the L2 term
as coupled weight decay read from the rules' capabilities, and the batch size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descend.optim
from descend.estimators import LinearRegression, LogisticRegression, MLPClassifier
from descend.estimators.plan import plan_optimizer, resolve_batch_size
from descend.methods import METHODS
from descend.optim.step_size import lipschitz_constant

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def data(n: int = 120, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X @ [1.0, -2.0, 0.5] + 0.3 * rng.normal(size=n) > 0).astype(int)
    return X, y


@pytest.mark.parametrize("method", ["gd", "momentum", "adagrad", "rmsprop", "adam", "adamw"])
def test_a_method_by_name_starts_from_the_tables_training_rate(method):
    X, y = data()
    for make in (LogisticRegression, lambda **kw: MLPClassifier((4,), **kw)):
        model = make(optimizer=method, batch_size=32, max_epochs=1, random_state=0).fit(X, y)
        lr = model._optimizer.param_groups[0]["lr"]
        assert lr == METHODS[method].default_lr(training=True)
        assert lr == (METHODS[method].train_defaults or METHODS[method].defaults)["lr"]


def test_proximal_gradient_steps_by_one_over_L_from_the_table():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 4)) * [1.0, 3.0, 0.5, 2.0]
    y = X @ [1.0, 0.0, 0.0, -1.0] + 0.1 * rng.normal(size=80)
    model = LinearRegression(penalty="l1", alpha=0.1, max_epochs=3).fit(X, y)
    L = lipschitz_constant(torch.from_numpy(X), fit_intercept=True)
    assert model._optimizer_label == "gd"
    assert model._optimizer.param_groups[0]["lr"] == pytest.approx(1.0 / L, rel=1e-12)
    assert METHODS["gd"].default_lr(training=True, lipschitz=L) == 1.0 / L
    # a user's rate wins
    given = LinearRegression(penalty="l1", alpha=0.1, lr=0.01, max_epochs=3).fit(X, y)
    assert given._optimizer.param_groups[0]["lr"] == 0.01


@pytest.mark.parametrize(
    ("optimizer", "groups"),
    [
        ("adam", 2),  # coupled: the L2 gradient is the weights' weight decay
        ("adamw", 1),  # decoupled decay is another rule: fit's penalty term adds L2
        (descend.optim.Adam, 2),
        (torch.optim.SGD, 2),
        (torch.optim.AdamW, 1),
    ],
    ids=["adam", "adamw", "descend.Adam", "torch.SGD", "torch.AdamW"],
)
def test_l2_becomes_weight_decay_where_the_rule_couples_it(optimizer, groups):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(100, 3))
    y = X @ [1.0, -1.0, 2.0] + 0.1 * rng.normal(size=100)
    model = LinearRegression(
        penalty="l2", alpha=0.2, optimizer=optimizer, lr=0.01, batch_size=16, max_epochs=2
    ).fit(X, y)
    param_groups = model._optimizer.param_groups
    assert len(param_groups) == groups
    if groups == 2:
        assert param_groups[0]["weight_decay"] == 0.2
        assert param_groups[0]["params"] == [model._module.weight]
        assert param_groups[1]["weight_decay"] == 0.0  # the intercept is not penalized


def test_batch_size_from_the_rules_capabilities():
    by_name = plan_optimizer("lbfgs", method=lambda: "unused", lr=None, options={})
    first_order = plan_optimizer("adam", method=lambda: "unused", lr=None, options={})
    by_class = plan_optimizer(torch.optim.LBFGS, method=lambda: "unused", lr=None, options={})
    auto = dict(auto_full=False, auto_size=200)
    assert resolve_batch_size("auto", by_name, 500, **auto) == "full"
    assert resolve_batch_size("auto", by_class, 500, **auto) == "full"
    assert resolve_batch_size("auto", first_order, 500, **auto) == 200
    assert resolve_batch_size("auto", first_order, 50, **auto) == 50
    assert resolve_batch_size("auto", first_order, 500, auto_full=True, auto_size=200) == "full"
    assert resolve_batch_size(600, by_name, 500, **auto) == "full"  # all rows: one batch
    assert resolve_batch_size(32, first_order, 500, **auto) == 32
    assert resolve_batch_size("full", first_order, 500, **auto) == "full"
    with pytest.raises(ValueError, match="needs batch_size='full', got batch_size=32"):
        resolve_batch_size(32, by_class, 500, **auto)


def test_a_named_method_that_needs_the_full_batch_trains_on_it():
    X, y = data()
    model = LogisticRegression(optimizer="trust-region", max_epochs=5).fit(X, y)
    assert model._fit_result.epoch_history["loss"] is not None
    assert model.t_ == model.n_iter_  # one step per epoch: the full batch
