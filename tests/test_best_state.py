"""What a run hands back when it stops early: the best state, by one rule (issue 9's three
wrong results), and the statuses that tell a saddle and a refused method apart."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import descend
from descend import Status
from descend.callbacks import EarlyStopping


def line_data(n: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=g, dtype=torch.float64)
    y = X @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + 0.1 * torch.randn(
        n, generator=g, dtype=torch.float64
    )
    return X, y


def mse_of(model: nn.Module, X, y) -> float:
    with torch.no_grad():
        return nn.functional.mse_loss(model(X).squeeze(-1), y).item()


def test_full_batch_fit_that_diverges_returns_its_start_and_the_start_loss():
    X, y = line_data()
    model = nn.Linear(3, 1).double()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    f0 = mse_of(model, X, y)
    res = descend.fit(model, "mse", (X, y), optimizer="gd", lr=5.0, batch_size="full",
                      epochs=100, progress=False, monitors=None)  # fmt: skip
    assert res.status == Status.DIVERGED
    for k, v in model.state_dict().items():
        assert torch.equal(v, start[k])
    assert res.fun == pytest.approx(f0, rel=1e-12) == mse_of(model, X, y)


def test_minibatch_fit_that_diverges_returns_a_measured_state_and_its_loss():
    X, y = line_data(256)
    model = nn.Linear(3, 1).double()
    res = descend.fit(model, "mse", (X, y), optimizer="gd", lr=0.05, batch_size=16, epochs=30,
                      validation=(X[:64], y[:64]), progress=False, monitors=None,
                      schedule={"name": "exponential", "gamma": 1.6}, seed=0)  # fmt: skip
    assert res.status == Status.DIVERGED and "Returned the weights from the end of epoch" in (
        res.message
    )
    best = int(np.nanargmin(res.epoch_history["val_loss"]))
    assert res.fun == res.epoch_history["val_loss"][best]
    assert mse_of(model, X[:64], y[:64]) == pytest.approx(res.fun, rel=1e-12)


def test_early_stopping_on_the_training_loss_keeps_the_weights_that_loss_measured():
    """Each full-batch epoch's loss is measured before its step: the best epoch's loss
    belongs to the weights at that epoch's start, and those are what come back."""
    X, y = line_data()
    model = nn.Linear(3, 1).double()
    stopper = EarlyStopping(monitor="loss", patience=3)
    res = descend.fit(model, "mse", (X, y), optimizer="gd", lr=1.1, batch_size="full",
                      epochs=200, early_stopping=stopper, progress=False, monitors=None,
                      stopping=descend.StoppingCriteria(max_iter=10**6, gtol=0.0, ftol=0.0,
                                                        divergence_factor=1e300))  # fmt: skip
    assert res.status == Status.EARLY_STOPPING
    assert mse_of(model, X, y) == pytest.approx(stopper.best, rel=1e-9)


def test_maximize_returns_the_highest_point_when_it_stops_early():
    def bump(x):
        return -((x - 1.0) ** 2).sum()

    res = descend.minimize(bump, [0.0], "gd", lr=1.2, maximize=True, max_iter=30)
    assert res.status == Status.DIVERGED
    path = res.history["f"]
    assert res.fun == np.nanmax(path) == bump(torch.as_tensor(res.x)).item()
    res = descend.minimize(bump, [0.0], "adam", lr=0.1, maximize=True, target=-1e-8)
    assert res.status == Status.TARGET and res.fun >= -1e-8


def test_a_run_that_converges_at_a_saddle_says_so():
    def saddle(x):
        return x[0] ** 2 - x[1] ** 2 + 0.25 * x[1] ** 4

    res = descend.minimize(saddle, [1.0, 0.0], "gd", lr=0.1)  # y = 0 stays 0: the saddle
    assert res.status == Status.SADDLE and not res.success
    assert "saddle" in res.message and "negative-curvature direction" in res.message
    res = descend.minimize(saddle, [1.0, 0.1], "gd", lr=0.1)  # escapes to a minimum
    assert res.status == Status.GTOL
    res = descend.minimize(saddle, [0.0, 0.0], "gd")  # starts there: still not a minimum
    assert res.status == Status.SADDLE


def test_fit_refuses_a_line_search_method_on_mini_batches():
    X, y = line_data()
    with pytest.raises(ValueError, match=r"optimizer 'lbfgs' needs the same function.*"
                                         r"batch_size='full'"):  # fmt: skip
        descend.fit(nn.Linear(3, 1).double(), "mse", (X, y), optimizer="lbfgs", batch_size=8,
                    progress=False)  # fmt: skip
    res = descend.fit(nn.Linear(3, 1).double(), "mse", (X, y), optimizer="lbfgs",
                      batch_size="full", epochs=50, progress=False, monitors=None)  # fmt: skip
    assert np.isfinite(res.fun)


def test_l1_in_fit_is_a_proximal_step_and_gtol_reads_the_gradient_mapping():
    """With an L1 term the smooth gradient never vanishes at a sparse minimum; the proximal
    gradient mapping does, so a gtol run converges and lands on exact zeros."""
    X, y = line_data(200)
    X = torch.cat([X, torch.randn(200, 2, generator=torch.Generator().manual_seed(1),
                                  dtype=torch.float64)], 1)  # fmt: skip
    model = nn.Linear(5, 1).double()
    stopping = descend.StoppingCriteria(max_iter=10**6, gtol=1e-8, ftol=0.0)
    res = descend.fit(model, "mse", (X, y), optimizer="gd", lr=0.2, batch_size="full",
                      l1=0.05, epochs=5000, progress=False, monitors=None,
                      stopping=stopping)  # fmt: skip
    assert res.status == Status.GTOL
    assert (model.weight[0, 3:] == 0).all()  # the two noise features: exactly zero
