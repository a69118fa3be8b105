"""The ready-made callbacks, in fit and in minimize: one contract for both."""

import io
import json
import math
import os

import numpy as np
import pytest
import torch
from torch import nn

import descend
from descend import Status, fit
from descend.callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    HistoryLogger,
    ProgressBar,
    TerminateOnNaN,
    monitor_value,
)


def overfitting(seed=0):
    """Few noisy rows and many features: validation loss falls, then rises."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(30, 20, generator=g)
    y = X[:, 0] + 0.5 * torch.randn(30, generator=g)
    Xv = torch.randn(200, 20, generator=g)
    return (X, y), (Xv, Xv[:, 0])


class WeightsPerEpoch(Callback):
    def __init__(self):
        self.weights = {}

    def on_epoch_end(self, result):
        self.weights[result.epoch] = result.model.weight.detach().clone()


def net():
    torch.manual_seed(0)
    return nn.Linear(20, 1)


def test_early_stopping_fires_and_restores_the_best_epoch():
    data, val = overfitting()
    model, seen = net(), WeightsPerEpoch()
    stopper = EarlyStopping(patience=3)
    res = fit(
        model,
        "mse",
        data,
        optimizer="adam",
        lr=0.05,
        batch_size=10,
        epochs=200,
        validation=val,
        callbacks=[seen, stopper],
        seed=0,
        progress=False,
    )
    val_loss = res.epoch_history["val_loss"]
    best = int(np.argmin(val_loss)) + 1
    assert res.status == Status.EARLY_STOPPING and "EarlyStopping: val_loss" in res.message
    assert res.epoch == best + 3 < 200  # stopped patience epochs after the best
    assert stopper.best_epoch == best and stopper.best == val_loss[best - 1]
    assert torch.equal(model.weight, seen.weights[best])


def test_early_stopping_restores_the_best_weights_even_when_it_did_not_fire():
    data, val = overfitting()
    model, seen = net(), WeightsPerEpoch()
    res = fit(
        model,
        "mse",
        data,
        optimizer="adam",
        lr=0.05,
        batch_size=10,
        epochs=60,
        validation=val,
        callbacks=[seen],
        early_stopping=100,
        seed=0,
        progress=False,
    )
    assert res.status == Status.MAX_ITER
    best = int(np.argmin(res.epoch_history["val_loss"])) + 1
    assert best < 50
    assert torch.equal(model.weight, seen.weights[best])


def test_early_stopping_monitors_training_loss_without_validation_and_max_for_accuracy():
    data, _ = overfitting()
    stopper = EarlyStopping(patience=2, min_delta=10.0)  # nothing improves by 10
    res = fit(net(), "mse", data, epochs=50, callbacks=[stopper], seed=0, progress=False)
    assert res.epoch == 3 and "EarlyStopping: loss" in res.message
    g = torch.Generator().manual_seed(0)
    X = torch.randn(100, 2, generator=g)
    y = (X[:, 0] > 0).long()
    acc = EarlyStopping("val_accuracy", patience=2)
    fit(
        nn.Linear(2, 2),
        "cross_entropy",
        (X, y),
        validation=(X, y),
        metric="accuracy",
        epochs=3,
        callbacks=[acc],
        seed=0,
        init="xavier",
        progress=False,
    )
    assert acc._watch.mode == "max" and acc.best > 0.5


def test_early_stopping_in_minimize_watches_f_per_step():
    stopper = EarlyStopping(patience=5, min_delta=1e-3)
    res = descend.minimize(
        lambda x: (x**2).sum(), [1.0, 1.0], "gd", lr=0.1, callback=stopper, max_iter=10_000
    )
    assert res.status == Status.EARLY_STOPPING
    assert stopper._watch.interval == "step" and stopper.best_step == res.nit - 5


def test_terminate_on_nan_watches_validation_loss():
    data, val = overfitting()

    class NanInEval(nn.Linear):
        def forward(self, x):
            out = super().forward(x)
            return out if self.training else out * math.nan

    torch.manual_seed(0)
    model = NanInEval(20, 1)
    stop = TerminateOnNaN("val_loss")
    res = fit(model, "mse", data, epochs=5, validation=val, callbacks=[stop], progress=False)
    assert res.status == Status.CALLBACK and res.epoch == 1
    assert "TerminateOnNaN: val_loss became nan at epoch 1" in res.message
    fine = fit(
        net(), "mse", data, epochs=3, validation=val, callbacks=[TerminateOnNaN()], progress=False
    )
    assert fine.status == Status.MAX_ITER


def test_monitor_value_reads_logs_then_attributes_and_names_what_exists():
    class R:
        def __init__(self):
            self.logs = {"loss": 1.5, "val_loss": 2.0}
            self.fun = 9.0

    assert monitor_value(R(), "val_loss") == 2.0 and monitor_value(R(), "loss") == 1.5

    class M:
        fun, grad_norm, nit = 3.0, 0.1, 4

    assert monitor_value(M(), "loss") == 3.0 and monitor_value(M(), "grad_norm") == 0.1
    with pytest.raises(ValueError, match=r"monitor 'val_auc' is not recorded.*'val_loss'"):
        monitor_value(R(), "val_auc")
    with pytest.raises(ValueError, match="unknown mode 'up'"):
        EarlyStopping(mode="up").on_begin(R())
    with pytest.raises(ValueError, match="patience must be an integer >= 1, got 0"):
        EarlyStopping(patience=0)


def test_history_logger_writes_csv_and_jsonl_rows_that_match_the_history(tmp_path):
    data, val = overfitting()
    steps, epochs = tmp_path / "steps.csv", tmp_path / "epochs.jsonl"
    res = fit(
        net(),
        "mse",
        data,
        epochs=3,
        batch_size=10,
        validation=val,
        callbacks=[HistoryLogger(steps, every="step"), HistoryLogger(epochs)],
        progress=False,
    )
    lines = steps.read_text().splitlines()
    assert lines[0] == "step,epoch,loss,grad_norm,lr,time" and len(lines) == 1 + res.nit
    np.testing.assert_array_equal([float(r.split(",")[2]) for r in lines[1:]], res.history["loss"])
    rows = [json.loads(line) for line in epochs.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    np.testing.assert_array_equal([r["val_loss"] for r in rows], res.epoch_history["val_loss"])
    both = tmp_path / "both.csv"
    descend.minimize(
        lambda x: (x**2).sum(),
        [1.0],
        "gd",
        lr=0.1,
        max_iter=4,
        callback=HistoryLogger(both, every="step"),
    )
    assert both.read_text().splitlines()[0] == "iteration,f,grad_norm"


def test_checkpoint_writes_atomically_and_formats_names(tmp_path):
    data, _ = overfitting()
    every = Checkpoint(tmp_path / "e{epoch}.pt", every_epochs=2, save_last=False)
    fit(net(), "mse", data, epochs=5, callbacks=[every], progress=False)
    assert sorted(os.listdir(tmp_path)) == ["e2.pt", "e4.pt"]
    state = descend.train.load_checkpoint(tmp_path / "e4.pt")
    assert state["position"]["epoch"] == 4 and len(state["epoch_history"]["rows"]) == 4
    mini = Checkpoint(tmp_path / "min.pt", every_steps=2)
    res = descend.minimize(lambda x: (x**2).sum(), [1.0], "gd", lr=0.1, max_iter=5, callback=mini)
    saved = torch.load(tmp_path / "min.pt", weights_only=False)
    assert saved["nit"] == res.nit and mini.saves == 3
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_save_atomic_leaves_the_old_file_when_a_write_fails(tmp_path):
    from descend.callbacks import save_atomic

    path = tmp_path / "state.pt"
    save_atomic({"a": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        save_atomic({"a": Unpicklable()}, path)
    assert torch.load(path) == {"a": 1}
    assert os.listdir(tmp_path) == ["state.pt"]


def test_progress_bar_draws_epoch_loss_validation_and_lr_on_a_terminal():
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=160)
    data, val = overfitting()
    fit(
        net(),
        "mse",
        data,
        epochs=2,
        validation=val,
        lr=0.01,
        callbacks=[ProgressBar(console=console)],
        progress=True,
    )
    text = buffer.getvalue()
    for word in ("epoch 2/2", "loss", "val_loss", "lr 0.01", "steps/s", "2/2"):
        assert word in text, word


def test_callback_base_has_every_hook_and_an_empty_state():
    cb = Callback()
    assert cb.on_step(None) is None and cb.on_epoch_end(None) is None
    assert cb.state_dict() == {}
    cb.load_state_dict({})
