"""A health monitor never breaks the run it watches: zero or negative curvature is a
case the checks handle, and any exception left in a check becomes a ``monitor_error``
diagnosis while the run goes on exactly as without monitors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import descend
from descend.monitors import DeadReLUMonitor, Monitor, MonitorGroup, Severity, default_monitors
from descend.monitors.learning_rate import SmallLearningRateMonitor


def kinds(result):
    return [d.kind for d in result.diagnoses]


# -- zero curvature: |x|, a linear f, a linear model under an absolute loss --------------------


@pytest.mark.parametrize(
    ("fun", "x0", "method"),
    [
        (lambda x: x.abs().sum(), [1.0], "gd"),
        (lambda x: (2.0 * x).sum(), [1.0], "gd"),
        (lambda x: (2.0 * x).sum(), [1.0], "momentum"),
        (lambda x: (2.0 * x).sum(), [1.0, 2.0], "nesterov"),
    ],
    ids=["abs-gd", "linear-gd", "linear-momentum", "linear-nesterov"],
)
def test_zero_curvature_is_diagnosed_not_raised(fun, x0, method):
    res = descend.minimize(fun, x0, method)
    assert "monitor_error" not in kinds(res)
    # the monitor's own finding (with the default set, a kink's oscillation may also ask
    # for a lower rate, and then the run keeps one recommendation: the lower)
    res = descend.minimize(fun, x0, method, monitors=[SmallLearningRateMonitor()])
    slow = next(d for d in res.diagnoses if d.kind == "lr_too_small")
    assert slow.evidence["lambda_max"] == 0.0
    assert "no positive curvature bounds the step" in slow.message
    # without curvature the Polyak step to f = 0 bounds the room: |f| / (first-order decrease)
    assert slow.evidence["room"] <= 1.0 / slow.evidence["relative_decrease_per_step"] * 1.001
    assert slow.suggested["lr"] > slow.evidence["lr"]


def test_zero_curvature_suggestion_stops_at_the_polyak_step():
    # f = |x| from 1 with lr 1e-3: at the check f ~ 0.7 and g = 1, so the Polyak rate is
    # about 0.7, not the 10 that a cap of 1e4 x lr would suggest
    res = descend.minimize(lambda x: x.abs().sum(), [1.0], "gd",
                           monitors=[SmallLearningRateMonitor()])  # fmt: skip
    slow = next(d for d in res.diagnoses if d.kind == "lr_too_small")
    assert 0.1 <= slow.suggested["lr"] <= 1.0


def test_fit_with_an_absolute_loss_and_gradient_descent_runs_through():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(200, 3, generator=gen)
    y = X.sum(1, keepdim=True) + 50.0  # far from the start: the loss is linear in the weights
    torch.manual_seed(0)
    res = descend.fit(
        nn.Linear(3, 1),
        "mae",
        (X, y),
        optimizer="gd",
        batch_size="full",
        epochs=400,
        progress=False,
    )
    assert res.nit == 400
    assert "monitor_error" not in kinds(res)
    slow = next(d for d in res.diagnoses if d.kind == "lr_too_small")
    assert slow.evidence["lambda_max"] == 0.0


# -- a monitor that raises: switched off, reported, the run unchanged ---------------------------


class Broken(Monitor):
    kinds = ("broken",)

    def __init__(self, where, **kw):
        super().__init__(**kw)
        self.where = where
        self.watched = []

    def begin(self, result):
        if self.where == "begin":
            raise RuntimeError("begin blew up")

    def watch(self, nit):
        self.watched.append(nit)
        if self.where == "watch" and nit == 7:
            raise ZeroDivisionError("float division by zero")
        return nit + 1

    def finish(self, result):
        if self.where == "finish":
            raise KeyError("gone")


def quadratic(x):
    return 0.5 * (torch.tensor([1.0, 10.0], dtype=x.dtype) * x**2).sum()


@pytest.mark.parametrize(
    ("where", "error", "step"),
    [
        ("begin", "RuntimeError: begin blew up", 0),
        ("watch", "ZeroDivisionError", 7),
        ("finish", "KeyError", 40),
    ],
)
def test_a_failing_monitor_becomes_a_warning_and_the_run_goes_on(where, error, step):
    options = {"lr": 0.05, "max_iter": 40, "gtol": 0.0, "ftol": 0.0}
    broken = Broken(where)
    res = descend.minimize(quadratic, [1.0, 1.0], "gd", monitors=[broken], **options)
    plain = descend.minimize(quadratic, [1.0, 1.0], "gd", monitors=None, **options)
    assert torch.equal(torch.as_tensor(res.x), torch.as_tensor(plain.x))
    assert res.nit == plain.nit == 40
    [failure] = res.diagnoses
    assert failure.kind == "monitor_error"
    assert failure.severity == Severity.WARNING
    assert failure.step == step
    assert "Broken" in failure.message and error in failure.message
    assert "switched off" in failure.message
    if where == "watch":
        assert broken.watched == list(range(1, 8))  # never called again after it failed


def test_the_other_monitors_of_a_group_keep_working():
    group = MonitorGroup([Broken("watch"), *default_monitors()])
    res = descend.minimize(quadratic, [1.0, 1.0], "gd", lr=0.25, monitors=[group])
    assert res.status == descend.Status.DIVERGED
    assert set(kinds(res)) == {"monitor_error", "divergence", "oscillation"}


class BrokenHook(DeadReLUMonitor):
    def _record(self, index, output):
        raise RuntimeError("hook blew up")


def test_a_failing_model_hook_never_reaches_the_forward_pass():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(64, 4, generator=gen)
    y = X.sum(1, keepdim=True)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    res = descend.fit(
        model,
        "mse",
        (X, y),
        optimizer="adam",
        epochs=20,
        batch_size=16,
        seed=0,
        progress=False,
        monitors=[BrokenHook(model, every=5)],
    )
    assert res.nit == 80
    [failure] = res.diagnoses
    assert failure.kind == "monitor_error" and "forward hook" in failure.message
    assert all(not m._forward_hooks for m in model.modules())  # taken off at the end
