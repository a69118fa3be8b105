"""The health monitors across a checkpoint: a run resumed from any checkpoint reports the
same diagnoses, at the same steps, with the same numbers, as the run never interrupted,
and its monitors end in the same state."""

from __future__ import annotations

import math
from collections import deque

import pytest
import torch
from torch import nn

from descend import fit
from descend.callbacks import Checkpoint
from descend.monitors import Monitor, MonitorGroup, default_monitors
from descend.monitors.monitor import NEVER
from descend.train.checkpoint import load_checkpoint


def same(a, b):
    """Equal plain states: tensors bit for bit, NaN equal to NaN."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple, deque)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


def run_and_resume(tmp_path, build, data, resume_at, **kw):
    """The run uninterrupted, saving a checkpoint every epoch, and resumed from each of
    ``resume_at`` (epochs); both with the default monitors as one explicit group."""
    path = tmp_path / "c-{epoch}.pt"

    def one(resume=None):
        model = build()
        group = MonitorGroup(default_monitors(model=model))
        # resumed runs save nothing (the same callbacks, so the checkpoint fits them)
        saving = Checkpoint(path, every_epochs=1 if resume is None else None, save_last=False)
        res = fit(
            model,
            "mse",
            data,
            monitors=[group],
            checkpoint=saving,
            resume=resume,
            progress=False,
            **kw,
        )
        return res, group

    reference = one()
    resumed = [one(str(path).format(epoch=epoch)) for epoch in resume_at]
    return reference, resumed


def assert_same_diagnoses(reference, resumed):
    (ref, ref_group) = reference
    assert ref.diagnoses, "the scenario must find something"
    for res, group in resumed:
        assert res.diagnoses == ref.diagnoses
        assert same(group.state_dict(), ref_group.state_dict())


def deep_linear():
    torch.manual_seed(0)
    layers = [nn.Linear(5, 5, bias=False), nn.Linear(5, 5, bias=False), nn.Linear(5, 1, bias=False)]
    for layer in layers:
        nn.init.normal_(layer.weight, 0.0, 1e-3)
    return nn.Sequential(*layers)


def test_full_batch_plateau_and_step_monitors_resume_exactly(tmp_path):
    # one step per epoch: checkpoints before, inside and after the plateau is found (step
    # ~150) and mid-way through the step-size and oscillation probes
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(100, 5, generator=gen)
    y = X @ torch.randn(5, 1, generator=gen)
    reference, resumed = run_and_resume(
        tmp_path,
        deep_linear,
        (X, y),
        (99, 151, 203),
        optimizer="gd",
        lr=0.05,
        batch_size="full",
        epochs=300,
        seed=0,
    )
    assert "plateau" in [d.kind for d in reference[0].diagnoses]
    assert_same_diagnoses(reference, resumed)


def test_overfitting_and_network_monitors_resume_exactly(tmp_path):
    datasets = pytest.importorskip("sklearn.datasets")
    Xn, yn = datasets.load_diabetes(return_X_y=True)
    X = torch.tensor((Xn - Xn.mean(0)) / Xn.std(0), dtype=torch.float32)
    y = torch.tensor((yn - yn.mean()) / yn.std(), dtype=torch.float32).unsqueeze(1)

    def wide_mlp():
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Linear(10, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 1)
        )

    # resumed with the overfitting window half full, the noise monitor's pass under way
    reference, resumed = run_and_resume(
        tmp_path,
        wide_mlp,
        (X, y),
        (17,),
        optimizer="adam",
        lr=1e-3,
        validation=0.2,
        epochs=32,
        seed=0,
    )
    assert "overfitting" in [d.kind for d in reference[0].diagnoses]
    assert_same_diagnoses(reference, resumed)


def test_monitor_state_loads_with_weights_only(tmp_path):
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(100, 5, generator=gen)
    y = X @ torch.randn(5, 1, generator=gen)
    path = tmp_path / "run.pt"
    fit(
        deep_linear(),
        "mse",
        (X, y),
        optimizer="gd",
        lr=0.05,
        batch_size="full",
        epochs=160,
        seed=0,
        checkpoint=path,
        progress=False,
    )
    saved = dict(load_checkpoint(path)["callbacks"])["MonitorGroup"]  # weights_only=True
    names = [name for name, _ in saved["monitors"]]
    assert names[:4] == [
        "DivergenceMonitor",
        "OscillationMonitor",
        "SmallLearningRateMonitor",
        "PlateauMonitor",
    ]
    plateau = dict(saved["monitors"])["PlateauMonitor"]
    assert [f["diagnosis"]["kind"] for f in plateau["found"]] == ["plateau"]


def test_a_checkpoint_from_before_monitor_state_starts_the_monitors_fresh():
    group = MonitorGroup(default_monitors())
    group.load_state_dict({})  # what older checkpoints hold for the group
    assert all(m.failure is None for m in group.monitors)
    with pytest.raises(ValueError, match="saved with monitors"):
        group.load_state_dict({"monitors": [("PlateauMonitor", {})]})


class Unwritable(Monitor):
    kinds = ("unwritable",)
    state = ("hook",)

    def begin(self, result):
        self.hook = lambda: None  # not a value a checkpoint can hold


def test_a_state_that_cannot_be_saved_switches_the_monitor_off(tmp_path):
    X, y = torch.randn(40, 3), torch.randn(40, 1)
    path = tmp_path / "run.pt"
    monitor = Unwritable()
    res = fit(
        nn.Linear(3, 1),
        "mse",
        (X, y),
        epochs=2,
        checkpoint=path,
        monitors=[monitor],
        seed=0,
        progress=False,
    )
    [failure] = res.diagnoses
    assert failure.kind == "monitor_error" and "state_dict" in failure.message
    resumed = Unwritable()
    fit(
        nn.Linear(3, 1),
        "mse",
        (X, y),
        epochs=3,
        checkpoint=path,
        resume=path,
        monitors=[resumed],
        seed=0,
        progress=False,
    )
    assert resumed.failure is not None and resumed.wake == NEVER  # still off after a resume
