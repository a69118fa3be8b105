"""fit(bounds=...): projected gradient descent on a model's parameters, against a torch
loop that clamps after each step, SciPy's nonnegative least squares, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import nnls
from torch import nn

from descend.constraints import Box
from descend.train import fit


def problem(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(40, 5, dtype=torch.float64, generator=gen)
    w = torch.tensor([1.5, -2.0, 0.5, -0.3, 2.0], dtype=torch.float64)
    y = X @ w + 0.1 * torch.randn(40, dtype=torch.float64, generator=gen)
    return X, y[:, None]


def linear() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(5, 1, bias=False).double()


def test_each_step_is_the_torch_step_then_the_projection():
    X, y = problem()
    ours = linear()
    fit(ours, "mse", (X, y), optimizer="gd", lr=0.05, batch_size="full", epochs=30,
        bounds=Box(-0.5, 1.0), progress=False, monitors=None)  # fmt: skip
    theirs = linear()
    with torch.no_grad():
        theirs.weight.clamp_(-0.5, 1.0)
    opt = torch.optim.SGD(theirs.parameters(), lr=0.05)
    for _ in range(30):
        opt.zero_grad()
        nn.functional.mse_loss(theirs(X), y).backward()
        opt.step()
        with torch.no_grad():
            theirs.weight.clamp_(-0.5, 1.0)
    torch.testing.assert_close(ours.weight, theirs.weight, rtol=0, atol=1e-12)


def test_nonnegative_weights_reach_scipys_nnls():
    X, y = problem()
    model = linear()
    res = fit(model, "mse", (X, y), optimizer="adam", lr=0.05, batch_size="full",
              epochs=3000, bounds="nonnegative", progress=False, monitors=None)  # fmt: skip
    reference, _ = nnls(X.numpy(), y[:, 0].numpy())
    assert (model.weight >= 0).all(), res.message
    np.testing.assert_allclose(model.weight.detach().numpy()[0], reference, atol=1e-4)


def test_a_dict_bounds_named_parameters_and_leaves_the_rest_free():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).double()
    X = torch.randn(30, 3, dtype=torch.float64)
    y = torch.randint(0, 2, (30,))
    fit(net, "cross_entropy", (X, y), optimizer="momentum", lr=0.1, epochs=5, batch_size=8,
        bounds={"2.weight": "simplex", "0.bias": "nonnegative"}, progress=False)  # fmt: skip
    assert net[2].weight.sum().item() == pytest.approx(1.0, abs=1e-12)
    assert (net[2].weight >= 0).all() and (net[0].bias >= 0).all()
    assert (net[0].weight < 0).any()  # unconstrained


def test_bad_bounds_are_refused_by_name():
    X, y = problem()
    with pytest.raises(ValueError, match=r"'weigth'.*did you mean 'weight'"):
        fit(linear(), "mse", (X, y), bounds={"weigth": "nonnegative"}, progress=False)
    with pytest.raises(ValueError, match=r"bounds= projects.*'lbfgs'"):
        fit(linear(), "mse", (X, y), optimizer="lbfgs", batch_size="full", bounds="nonnegative",
            progress=False)  # fmt: skip
    with pytest.raises(ValueError, match=r"bounds for weight has 2 .* weight has 5"):
        fit(linear(), "mse", (X, y), bounds=[(0, 1), (0, 1)], progress=False)
