"""The overfitting monitor: the validation loss climbing while the training loss falls is
reported with the fix; a model that does not overfit, a run without validation data and a
run whose training loss climbs too are silent."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

import descend
from descend.monitors import FIT_MONITORS, OverfittingMonitor


def overfitting(result):
    return [d for d in result.diagnoses if d.kind == "overfitting"]


@pytest.fixture(scope="module")
def diabetes():
    datasets = pytest.importorskip("sklearn.datasets")
    Xn, yn = datasets.load_diabetes(return_X_y=True)
    X = torch.tensor((Xn - Xn.mean(0)) / Xn.std(0), dtype=torch.float32)
    y = torch.tensor((yn - yn.mean()) / yn.std(), dtype=torch.float32).unsqueeze(1)
    return X, y


def train(model, data, **kw):
    options = {"optimizer": "adam", "lr": 1e-3, "epochs": 40, "seed": 0, "progress": False}
    options.update(kw)
    return descend.fit(model, "mse", data, **options)


def wide_mlp():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(10, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 1)
    )


def test_wide_mlp_on_diabetes_is_reported_with_the_fix(diabetes):
    # 442 rows, 18k weights: the validation loss bottoms out within ~15 epochs, then climbs
    res = train(wide_mlp(), diabetes, validation=0.2)
    [d] = overfitting(res)
    e, p = d.evidence, d.evidence["window"]
    assert p == 10  # the default patience
    assert e["window_val_loss"] >= 1.01 * e["best_window_val_loss"]
    assert e["window_train_loss"] <= 0.99 * e["best_window_train_loss"]
    assert e["epoch"] - e["best_window_end"] >= p
    # the record agrees: window means, and the best epoch is the lowest validation loss
    val, loss = res.epoch_history["val_loss"], res.epoch_history["loss"]
    epoch = int(e["epoch"])
    assert e["window_val_loss"] == pytest.approx(float(val[epoch - p : epoch].mean()))
    assert e["window_train_loss"] == pytest.approx(float(loss[epoch - p : epoch].mean()))
    best = int(torch.as_tensor(list(val[:epoch])).argmin()) + 1
    assert e["best_epoch"] == best and d.suggested == {"epochs": best}
    assert f"stop at epoch {best}" in d.suggestion
    assert "early_stopping=True" in d.suggestion and "l2=" in d.suggestion
    assert "more training data" in d.suggestion


def test_no_validation_or_no_overfitting_is_silent(diabetes):
    assert overfitting(train(wide_mlp(), diabetes)) == []  # nothing held out
    torch.manual_seed(0)
    linear = train(nn.Linear(10, 1), diabetes, validation=0.2)  # too small to overfit
    assert overfitting(linear) == []


def test_overfitting_is_in_the_default_set_of_fit_only():
    assert FIT_MONITORS == ("overfitting",)
    res = descend.minimize(lambda x: (x**2).sum(), [1.0], "gd", lr=0.1)
    assert res.diagnoses == []


def epochs(monitor, rows):
    """Feed (training, validation) losses to ``monitor`` as epochs 1, 2, ...; the findings."""
    run = SimpleNamespace(history=descend.History(), nit=0, logs={}, diagnoses=[])
    monitor.on_begin(run)
    for epoch, (loss, val_loss) in enumerate(rows, 1):
        run.nit, run.logs = 10 * epoch, {"epoch": epoch, "loss": loss, "val_loss": val_loss}
        monitor.on_epoch_end(run)
    monitor.on_end(run)
    return run.diagnoses


def test_the_rule_compares_windows_of_patience_epochs():
    falling = [(1.0, 0.9), (0.9, 0.8), (0.8, 0.7)]
    climbing = [(0.6, 0.75), (0.55, 0.8), (0.5, 0.8), (0.45, 0.85)]
    # windows of 2 epochs: V = 0.85, 0.75, 0.725 (epochs 3-4, the best), 0.775, 0.8 (5-6)
    [d] = epochs(OverfittingMonitor(patience=2), falling + climbing)
    assert (d.step, d.evidence["best_window_end"], d.evidence["epoch"]) == (60, 4, 6)
    assert d.evidence["best_window_val_loss"] == pytest.approx(0.725)
    assert d.evidence["window_val_loss"] == pytest.approx(0.8)
    assert d.evidence["best_window_train_loss"] == pytest.approx(0.7)
    assert d.evidence["window_train_loss"] == pytest.approx(0.525)
    assert d.evidence["best_epoch"] == 3 and d.suggested == {"epochs": 3}  # lowest v
    # windows of 3: the best ends at epoch 4, so epoch 7 is the first one past it
    assert epochs(OverfittingMonitor(patience=3), falling + climbing[:3]) == []
    assert len(epochs(OverfittingMonitor(patience=3), falling + climbing)) == 1
    # both losses climbing is instability, not overfitting
    unstable = [(0.8 + 0.1 * k, 0.75 + 0.05 * k) for k in range(4)]
    assert epochs(OverfittingMonitor(patience=2), falling + unstable) == []
    # a flat training loss under a wandering validation loss is noise
    flat = [(0.8, 0.75), (0.8, 0.8), (0.8, 0.8), (0.8, 0.85)]
    assert epochs(OverfittingMonitor(patience=2), falling + flat) == []


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="patience must be an integer >= 1"):
        OverfittingMonitor(patience=0)
    for rise in (0.0, 1.0):
        with pytest.raises(ValueError, match=r"rise must be in \(0, 1\)"):
            OverfittingMonitor(rise=rise)
