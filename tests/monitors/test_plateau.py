"""The plateau monitor in ``fit``: a loss stalled far above its floor is a plateau; a loss
at its floor (converged) or still falling by a steady fraction of itself is not."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

import descend
from descend.monitors import PlateauMonitor


def plateaus(result):
    return [d for d in result.diagnoses if d.kind == "plateau"]


@pytest.fixture(scope="module")
def linear_data():
    """y = X w, scaled so that the zero model's loss (mean y^2) is 7.118."""
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(100, 5, generator=gen)
    y = X @ torch.randn(5, 1, generator=gen)
    return X, y * (7.118 / y.pow(2).mean()).sqrt()


def deep_linear(depth, init):
    torch.manual_seed(0)
    widths = [5] * depth + [1]
    layers = [nn.Linear(a, b, bias=False) for a, b in itertools.pairwise(widths)]
    for layer in layers:
        nn.init.normal_(layer.weight, 0.0, init)
    return nn.Sequential(*layers)


def gd(model, data, epochs, lr=0.05):
    return descend.fit(
        model,
        "mse",
        data,
        optimizer="gd",
        lr=lr,
        batch_size="full",
        epochs=epochs,
        seed=0,
        progress=False,
    )


def test_deep_linear_net_stalled_at_its_start_is_a_plateau(linear_data):
    # three layers from weights ~1e-3: the product is ~1e-9, the gradient ~1e-6 and the
    # loss sits at mean(y^2) = 7.118, at a saddle of the product, from the first step on
    res = gd(deep_linear(3, 1e-3), linear_data, epochs=300)
    assert res.epoch_history["loss"][-1] == pytest.approx(7.118, abs=1e-3)  # still there
    [plateau] = plateaus(res)
    assert plateau.evidence["f_now"] == pytest.approx(7.118, abs=1e-3)
    assert plateau.evidence["relative_drop"] < 1e-3
    assert plateau.evidence["lambda_min"] < 0  # a saddle, not a minimum
    assert plateau.evidence["floor"] == 0.0
    assert "flat at 7.118" in plateau.message


def test_two_layer_net_at_its_global_minimum_is_not_a_plateau(linear_data):
    # converges to ~1e-12 within ~300 steps, then rounding noise for 900 more: flat, with
    # a gradient that no longer shrinks and flat curvature (rescaling symmetries), yet it
    # is the global minimum
    res = gd(deep_linear(2, 0.5), linear_data, epochs=1200)
    assert res.epoch_history["loss"][-1] < 1e-9
    assert plateaus(res) == []


def test_healthy_network_creeping_to_zero_loss_is_not_a_plateau():
    datasets = pytest.importorskip("sklearn.datasets")
    Xn, yn = datasets.load_wine(return_X_y=True)
    X = torch.tensor((Xn - Xn.mean(0)) / Xn.std(0), dtype=torch.float32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))
    res = descend.fit(
        model,
        "cross_entropy",
        (X, torch.tensor(yn)),
        optimizer="adam",
        batch_size="full",
        epochs=1000,
        seed=0,
        progress=False,
    )
    losses = res.epoch_history["loss"]
    assert losses[0] > 0.8 and losses[-1] < 0.01  # healthy: falls by a steady fraction
    assert plateaus(res) == []


def test_minimize_reports_a_plateau_from_the_first_step():
    # f = (x1 x2 x3 - 2.67)^2 from x = 1e-3: the product's saddle, f stays at 7.129
    res = descend.minimize(
        lambda x: (x.prod() - 2.67) ** 2,
        [1e-3] * 3,
        "gd",
        lr=0.05,
        max_iter=400,
        gtol=0.0,
        ftol=0.0,
    )
    [plateau] = plateaus(res)
    assert "floor" not in plateau.evidence  # minimize: f may have any sign
    assert plateau.evidence["lambda_min"] < 0
    assert plateau.evidence["f_now"] == pytest.approx(7.1289, abs=1e-4)


def test_floor_argument_is_checked():
    with pytest.raises(TypeError, match="floor must be a number or 'auto', got 'zero'"):
        PlateauMonitor(floor="zero")
    with pytest.raises(ValueError, match="converged must be in"):
        PlateauMonitor(converged=0.0)
