"""L1 by proximal step (against scikit-learn's Lasso), L2 (against ridge's closed form),
elastic net, and gradient clipping (pre-clip norms recorded, the update capped)."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import ElasticNet, Lasso
from torch import nn

from descend import fit
from descend.train import GradientClipper, elastic_net


def sparse_problem(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 8, generator=g, dtype=torch.float64)
    w = torch.tensor([2.0, -1.5, 0, 0, 1.0, 0, 0, 0], dtype=torch.float64)
    return X, X @ w + 0.5 + 0.2 * torch.randn(n, generator=g, dtype=torch.float64)


def model(d=8):
    torch.manual_seed(0)
    return nn.Linear(d, 1).double()


def full_batch(net, X, y, epochs=3000, lr=0.2, **kw):
    return fit(
        net,
        "mse",
        (X, y),
        optimizer="gd",
        lr=lr,
        batch_size="full",
        epochs=epochs,
        progress=False,
        **kw,
    )


def test_l1_proximal_descent_matches_lasso_with_exact_zeros():
    X, y = sparse_problem()
    net = model()
    # ours: mean squared error + l1 |w|_1 = 2 * (Lasso's |r|^2/(2n) + (l1/2) |w|_1)
    full_batch(net, X, y, l1=0.2)
    lasso = Lasso(alpha=0.1, tol=1e-12, max_iter=100_000).fit(X.numpy(), y.numpy())
    w = net.weight.detach().numpy().ravel()
    np.testing.assert_allclose(w, lasso.coef_, atol=1e-7)
    assert net.bias.item() == pytest.approx(lasso.intercept_, abs=1e-7)
    assert (w == 0).sum() == (lasso.coef_ == 0).sum() >= 3  # exact zeros, not just small
    assert (w[[2, 3, 5, 6, 7]] == 0).all()


def test_l1_gives_exact_zeros_with_minibatch_adam_too():
    X, y = sparse_problem()
    net = model()
    fit(
        net,
        "mse",
        (X, y),
        optimizer="adam",
        lr=0.01,
        batch_size=20,
        epochs=30,
        l1=0.5,
        seed=0,
        progress=False,
    )
    w = net.weight.detach()
    assert (w == 0).sum() >= 3
    assert net.bias.item() != 0  # biases are not penalized


def test_l2_matches_ridge_closed_form():
    X, y = sparse_problem()
    net = model()
    l2 = 0.3
    full_batch(net, X, y, l2=l2)
    # minimize (1/n)|y - Xw - b|^2 + (l2/2)|w|^2: centre, then (X'X + n l2/2 I) w = X'y
    n = X.shape[0]
    Xc, yc = X - X.mean(0), y - y.mean()
    w = torch.linalg.solve(Xc.T @ Xc + (n * l2 / 2) * torch.eye(8, dtype=X.dtype), Xc.T @ yc)
    b = y.mean() - X.mean(0) @ w
    torch.testing.assert_close(net.weight.detach().ravel(), w, rtol=0, atol=1e-8)
    assert net.bias.item() == pytest.approx(b.item(), abs=1e-8)


def test_elastic_net_matches_scikit_learn():
    X, y = sparse_problem()
    alpha, ratio = 0.05, 0.6
    l1, l2 = elastic_net(alpha, ratio)
    net = model()
    # our loss is twice scikit-learn's |r|^2/(2n), so both penalties double
    full_batch(net, X, y, l1=2 * l1, l2=2 * l2)
    ref = ElasticNet(alpha=alpha, l1_ratio=ratio, tol=1e-12, max_iter=100_000)
    ref.fit(X.numpy(), y.numpy())
    np.testing.assert_allclose(net.weight.detach().numpy().ravel(), ref.coef_, atol=1e-7)
    assert ((net.weight.detach().numpy().ravel() == 0) == (ref.coef_ == 0)).all()


def test_elastic_net_validates_its_arguments():
    assert elastic_net(1.0, 0.25) == (0.25, 0.75)
    with pytest.raises(ValueError, match=r"l1_ratio must be in \[0, 1\], got 1.5"):
        elastic_net(1.0, 1.5)


def test_clip_by_norm_records_the_pre_clip_norm_and_caps_the_update():
    X, y = sparse_problem()
    X = X * 10  # large gradients
    net = model()
    start = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    lr, cap = 0.01, 0.5
    res = fit(
        net,
        "mse",
        (X, y),
        optimizer="gd",
        lr=lr,
        batch_size="full",
        epochs=1,
        clip_grad_norm=cap,
        progress=False,
    )
    # the recorded norm is the gradient's before clipping, computed here independently
    probe = model()
    loss = nn.functional.mse_loss(probe(X).squeeze(1), y)
    loss.backward()
    raw = torch.cat([p.grad.reshape(-1) for p in probe.parameters()]).norm().item()
    assert res.history["grad_norm"][0] == pytest.approx(raw, rel=1e-12)
    assert raw > 10 * cap
    end = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    moved = (end - start).norm().item()
    assert moved <= lr * cap  # torch scales by cap / (norm + 1e-6)
    assert moved == pytest.approx(lr * cap, rel=1e-6)


def test_clip_by_value_caps_each_coordinate_of_the_update():
    X, y = sparse_problem()
    X = X * 10
    net = model()
    start = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    lr, cap = 0.01, 0.05
    res = fit(
        net,
        "mse",
        (X, y),
        optimizer="gd",
        lr=lr,
        batch_size="full",
        epochs=1,
        clip_grad_value=cap,
        progress=False,
    )
    step = torch.cat([p.detach().reshape(-1) for p in net.parameters()]) - start
    assert step.abs().max().item() == pytest.approx(lr * cap, rel=1e-9)
    assert res.history["grad_norm"][0] > cap * 3  # the recorded norm is before clipping


def test_clipper_both_ways_reports_the_norm_before_either():
    p = torch.zeros(4, requires_grad=True)
    p.grad = torch.tensor([3.0, -4.0, 0.0, 12.0])  # norm 13
    norm = GradientClipper(clip_norm=1.0, clip_value=2.0)([p])
    assert norm.item() == pytest.approx(13.0)
    clamped = torch.tensor([2.0, -2.0, 0.0, 2.0])
    torch.testing.assert_close(p.grad, clamped / clamped.norm())
