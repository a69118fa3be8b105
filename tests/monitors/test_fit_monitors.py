"""The network monitors in ``fit``: vanishing gradients, dead ReLUs, gradient noise; each
fires on its purpose-built case and stays silent on a healthy run of the same problem."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import descend
from descend.monitors import DeadReLUMonitor, GradientNoiseMonitor, Severity
from descend.monitors.layer_gradients import depth_ratio


def kinds(result):
    return [d.kind for d in result.diagnoses]


@pytest.fixture(scope="module")
def regression():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(256, 8, generator=gen)
    y = torch.tanh(X @ torch.randn(8, 1, generator=gen))
    return X, y


def mlp(depth, activation, width=16, seed=0):
    torch.manual_seed(seed)
    layers = [nn.Linear(8, width), activation()]
    for _ in range(depth - 2):
        layers += [nn.Linear(width, width), activation()]
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


def train(model, data, **kw):
    options = {
        "optimizer": "adam",
        "batch_size": 32,
        "max_steps": 120,
        "epochs": None,
        "seed": 0,
        "progress": False,
    }
    options.update(kw)
    return descend.fit(model, "mse", data, **options)


# -- vanishing gradients: a 20-layer sigmoid MLP ------------------------------------------


def test_deep_sigmoid_network_reports_vanishing_gradients(regression):
    res = train(mlp(20, nn.Sigmoid), regression)
    assert kinds(res) == ["vanishing_gradients"]
    d = res.diagnoses[0]
    assert d.evidence["layers"] == 20
    # backprop through a sigmoid multiplies by <= 1/4: many decades over 19 layers
    assert d.evidence["input_to_output_ratio"] < 1e-8
    assert d.evidence["decades_per_layer"] < -0.4
    assert "ReLU" in d.suggestion


def test_shallow_tanh_network_is_silent(regression):
    assert train(mlp(3, nn.Tanh), regression).diagnoses == []


def test_exploding_gradients_are_reported():
    # tanh with weights of std 6/sqrt(width): the chaotic phase, where backprop multiplies
    # the gradient by more than 1 per layer while the forward pass stays bounded
    torch.manual_seed(0)
    layers = []
    for _ in range(20):
        layer = nn.Linear(32, 32)
        nn.init.normal_(layer.weight, 0.0, 6.0 / math.sqrt(32))
        nn.init.zeros_(layer.bias)
        layers += [layer, nn.Tanh()]
    model = nn.Sequential(*layers, nn.Linear(32, 1))
    gen = torch.Generator().manual_seed(3)
    data = (torch.randn(128, 32, generator=gen), torch.randn(128, 1, generator=gen))
    res = train(model, data, optimizer="gd", lr=1e-6, max_steps=60)
    assert kinds(res) == ["exploding_gradients"]
    d = res.diagnoses[0]
    assert d.evidence["input_to_output_ratio"] > 1e3
    assert "clip" in d.suggestion


def test_depth_ratio_reads_the_trend():
    assert depth_ratio([1e-6, 1e-4, 1e-2, 1.0]) == pytest.approx(1e-6)
    assert depth_ratio([1.0, 1.0, 1.0, 1e-3]) > 1e-3  # one odd read-out layer
    assert depth_ratio([0.0, 1.0]) == 0.0
    assert depth_ratio([float("nan"), 1.0]) == math.inf


# -- dead ReLUs: a huge negative bias ------------------------------------------------------


def test_relu_net_with_huge_negative_bias_reports_dead_units(regression):
    model = mlp(3, nn.ReLU)
    with torch.no_grad():
        model[0].bias.fill_(-100.0)
    res = train(model, regression)
    assert "dead_relu" in kinds(res)
    d = next(d for d in res.diagnoses if d.kind == "dead_relu")
    assert d.severity == Severity.ERROR
    assert d.evidence["dead_fraction"] == 1.0
    assert d.evidence["dead_fraction[1]"] == 1.0  # the ReLU after the first layer
    assert d.evidence["batch_size"] == 32
    assert "LeakyReLU" in d.suggestion


def test_healthy_relu_net_is_silent(regression):
    assert train(mlp(3, nn.ReLU), regression).diagnoses == []


def test_dead_relu_hooks_come_off(regression):
    model = mlp(3, nn.ReLU)
    monitor = DeadReLUMonitor(model, every=4)
    train(model, regression, max_steps=11, monitors=[monitor])
    assert not model[1]._forward_hooks and not model[3]._forward_hooks


# -- gradient noise: a small-batch noisy regression -----------------------------------------


@pytest.fixture(scope="module")
def noisy():
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(512, 4, generator=gen)
    y = X @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + torch.randn(512, 1, generator=gen)
    return X, y


def test_small_batches_report_gradient_noise(noisy):
    res = train(nn.Linear(4, 1), noisy, optimizer="gd", lr=0.01, batch_size=4, max_steps=900)
    assert kinds(res) == ["gradient_noise"]
    d = res.diagnoses[0]
    assert d.evidence["batch_size"] == 4
    assert d.evidence["noise_scale"] >= 5 * 4
    assert d.suggested["batch_size"] > 4
    assert d.suggested["batch_size"] <= 512  # never more than the data


def test_full_batch_is_silent(noisy):
    res = train(nn.Linear(4, 1), noisy, optimizer="gd", lr=0.1, batch_size="full", max_steps=500)
    assert res.diagnoses == []
    # sampled anyway (screen=1), every batch is the whole data: zero spread, exactly
    monitor = GradientNoiseMonitor(screen=1.0)
    res = train(
        nn.Linear(4, 1),
        noisy,
        optimizer="gd",
        lr=0.1,
        batch_size="full",
        max_steps=500,
        monitors=[monitor],
    )
    assert res.diagnoses == []
    assert len(monitor.estimates) == 3  # steps 50, 250, 450
    assert all(e["trace_cov_over_batch"] == 0 for e in monitor.estimates)


def test_noise_scale_matches_the_per_example_variance():
    # y = x w + noise at w = 0: per-example gradients -2 x y; tr(Sigma)/|G|^2 is known
    gen = torch.Generator().manual_seed(2)
    X = torch.randn(4096, 1, generator=gen)
    y = 0.5 * X + torch.randn(4096, 1, generator=gen)
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.zero_()
    batches = [(X[i : i + 16], y[i : i + 16]) for i in range(0, 4096, 16)]
    monitor = GradientNoiseMonitor(model, nn.functional.mse_loss, batches, n_batches=128)
    estimate = monitor.measure()
    per_example = (-2 * X * y).squeeze()
    exact = float(per_example.var() / per_example.mean() ** 2)
    assert estimate["batch_size"] == 16
    assert estimate["noise_scale"] == pytest.approx(exact, rel=0.35)


def test_noise_monitor_refuses_a_one_shot_iterator():
    with pytest.raises(TypeError, match="batches must be re-iterable"):
        GradientNoiseMonitor(nn.Linear(1, 1), nn.functional.mse_loss, iter([]))


# -- monitors leave training untouched -------------------------------------------------------


def test_fit_with_and_without_monitors_is_identical(noisy):
    runs = []
    for monitors in ("default", None):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 1))
        res = train(model, noisy, batch_size=8, max_steps=260, monitors=monitors)
        runs.append((res.history["loss"], [p.detach().clone() for p in model.parameters()]))
    (loss_on, params_on), (loss_off, params_off) = runs
    assert (loss_on == loss_off).all()
    assert all(torch.equal(a, b) for a, b in zip(params_on, params_off))
