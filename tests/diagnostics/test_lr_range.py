"""lr_range_test: the sweep, the smoothed curve, the suggestion, and that it trains."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import descend
from descend.diagnostics import LRRangeResult, lr_range_test


def rosenbrock(x):
    return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()


X0 = [-1.2, 1.0]


def final_loss(method, lr, steps=1000):
    res = descend.minimize(
        rosenbrock, X0, method, lr=lr, max_iter=steps, gtol=0.0, ftol=0.0, monitors=None
    )
    return res.fun


# -- the sweep and the curve ---------------------------------------------------------------


def test_sweep_is_exponential_and_the_curve_is_a_bias_corrected_average():
    sweep = lr_range_test(rosenbrock, X0, "gd", start=1e-7, end=1.0, steps=80, smoothing=0.9)
    assert isinstance(sweep, LRRangeResult)
    n = len(sweep.lrs)
    assert 10 < n <= 80
    ratios = sweep.lrs[1:] / sweep.lrs[:-1]
    assert np.allclose(ratios, (1.0 / 1e-7) ** (1 / 79))
    assert sweep.lrs[0] == pytest.approx(1e-7)
    average, expected = 0.0, []
    for k, loss in enumerate(sweep.losses):
        average = 0.9 * average + 0.1 * loss
        expected.append(average / (1 - 0.9 ** (k + 1)))
    assert np.allclose(sweep.smoothed, expected)
    # one gradient step at lr 1e-7 from x0: f(x0) - lr |g0|^2 (+ O(lr^2)), g0 = (-215.6, -88)
    assert sweep.losses[0] == pytest.approx(24.2 - 1e-7 * (215.6**2 + 88.0**2), rel=1e-7)


def test_sweep_stops_at_the_divergence_point():
    sweep = lr_range_test(rosenbrock, X0, "gd", end=1.0)
    assert sweep.divergence_lr is not None
    k = len(sweep.lrs) - 1
    assert sweep.divergence_lr == sweep.lrs[k]
    assert sweep.smoothed[k] > 4.0 * sweep.smoothed[:k].min()
    assert np.all(sweep.smoothed[:k] <= 4.0 * np.minimum.accumulate(sweep.smoothed[:k]))
    # gradient descent on Rosenbrock is stable below 2/lambda_max ~ 1.5e-3
    assert 1.5e-3 < sweep.divergence_lr < 0.1
    assert sweep.suggested_lr < sweep.min_loss_lr < sweep.divergence_lr


def test_steepest_point_and_suggestion_are_reported_separately():
    sweep = lr_range_test(rosenbrock, X0, "gd", end=1.0)
    # the steepest fall of the whole curve is the first plunge into the valley...
    assert sweep.steepest_lr < 1e-3
    # ...the suggestion is the steepest fall from a decade to half a decade below the minimum
    assert sweep.min_loss_lr / 10 * 0.999 <= sweep.suggested_lr
    assert sweep.suggested_lr <= sweep.min_loss_lr / math.sqrt(10) * 1.001
    text = str(sweep)
    assert "suggested lr:" in text and "diverges at:" in text


# -- the suggested rate trains: better than 10x and 0.1x of it ---------------------------------


@pytest.mark.parametrize(("method", "end"), [("gd", 1.0), ("adam", 10.0)])
def test_suggested_rate_trains_rosenbrock(method, end):
    lr = lr_range_test(rosenbrock, X0, method, end=end).suggested_lr
    at, above, below = (final_loss(method, m * lr) for m in (1.0, 10.0, 0.1))
    assert at < above
    assert at < below


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    X = torch.tensor(data.data / 16.0, dtype=torch.float32)
    y = torch.tensor(data.target, dtype=torch.long)
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(len(X), generator=gen)
    batches = [(X[order[i : i + 64]], y[order[i : i + 64]]) for i in range(0, 1792, 64)]
    return X, y, batches


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def train_digits(batches, method, lr, steps=300):
    model = mlp()
    optimizer = descend.methods.get_method(method).build(list(model.parameters()), {"lr": lr})
    for k in range(steps):
        X, y = batches[k % len(batches)]
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        optimizer.step()
    return model


@pytest.mark.parametrize("method", ["gd", "adam"])
def test_suggested_rate_trains_a_digits_mlp(digits, method):
    X, y, batches = digits
    sweep = lr_range_test(mlp(), nn.functional.cross_entropy, batches, method)
    lr = sweep.suggested_lr
    losses = []
    for m in (1.0, 10.0, 0.1):
        model = train_digits(batches, method, m * lr)
        with torch.no_grad():
            losses.append(float(nn.functional.cross_entropy(model(X), y)))
    at, above, below = losses
    assert at < above
    assert at < below


def test_model_is_put_back(digits):
    _, _, batches = digits
    model = mlp().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sweep = lr_range_test(model, nn.functional.cross_entropy, batches, "adam", steps=30)
    assert len(sweep.lrs) > 5
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.training


def test_batches_may_be_a_function_and_are_cycled(digits):
    _, _, batches = digits
    calls = []

    def passes():
        calls.append(1)
        return iter(batches[:5])

    sweep = lr_range_test(mlp(), nn.functional.cross_entropy, passes, "gd", steps=23, end=0.5)
    assert len(sweep.lrs) == 23
    assert len(calls) >= 4  # 24 evaluations over passes of 5 batches


# -- the figure ------------------------------------------------------------------------------


def test_plot_returns_a_figure_with_the_marks():
    from matplotlib.figure import Figure

    sweep = lr_range_test(rosenbrock, X0, "gd", end=1.0)
    fig = sweep.plot()
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    labels = [line.get_label() for line in ax.get_lines()]
    assert "smoothed loss" in labels
    assert any(label.startswith("suggested lr") for label in labels)
    assert any(label.startswith("diverges at") for label in labels)
    fig.canvas.draw()  # renders without a display (Agg)


# -- bad input ------------------------------------------------------------------------------


def test_arguments_are_checked():
    with pytest.raises(ValueError, match=r"end must be in \(0.1, inf\), got 0.01"):
        lr_range_test(rosenbrock, X0, "gd", start=0.1, end=0.01)
    with pytest.raises(ValueError, match="steps must be an integer >= 5, got 2"):
        lr_range_test(rosenbrock, X0, "gd", steps=2)
    with pytest.raises(ValueError, match="lr is what the test sweeps"):
        lr_range_test(rosenbrock, X0, "gd", lr=0.1)
    with pytest.raises(ValueError, match="method 'trust-region' has no learning rate"):
        lr_range_test(rosenbrock, X0, "trust-region")
    with pytest.raises(ValueError, match="a model needs data"):
        lr_range_test(mlp(), nn.functional.cross_entropy)
    with pytest.raises(TypeError, match="data must be re-iterable"):
        lr_range_test(mlp(), nn.functional.cross_entropy, iter([]))
