"""ProximalL1: the soft threshold of one step in closed form, ISTA against scikit-learn's
Lasso, and the torch.optim contract (schedulers, state dicts, hooks, copies)."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Lasso
from sklearn.preprocessing import StandardScaler

import descend.optim
from descend.optim import ProximalL1, capabilities
from descend.optim.proximal import proximal_gradient_mapping, soft_threshold_
from descend.optim.step_size import lipschitz_constant


def quadratic_grads(*params: torch.Tensor) -> None:
    """Fills ``p.grad`` with the gradient of sum((p - 1)^2 / 2) = p - 1."""
    for p in params:
        p.grad = p.detach() - 1.0


def test_one_sgd_step_is_the_soft_threshold_of_the_gradient_step():
    w0 = torch.tensor([0.5, -0.02, 0.003, 2.0, -3.0], dtype=torch.float64)
    w = w0.clone().requires_grad_(True)
    lr, l1 = 0.1, 0.7
    opt = ProximalL1(descend.optim.SGD([w], lr=lr), l1=l1)
    plain = w0.clone().requires_grad_(True)
    twin = descend.optim.SGD([plain], lr=lr)
    for p in (w, plain):
        p.grad = w0.clone()  # the gradient of ||w||^2 / 2 at w0
    opt.step()
    twin.step()
    v = w0 - lr * w0
    expected = torch.sign(v) * torch.clamp(v.abs() - lr * l1, min=0.0)
    torch.testing.assert_close(w.detach(), expected, rtol=1e-15, atol=1e-17)
    # exactly the soft threshold of the inner rule's own step
    torch.testing.assert_close(w.detach(), F.softshrink(plain.detach(), lr * l1), rtol=0, atol=0)
    assert (w.detach() == 0).sum() == 2  # exact zeros within the threshold


def test_each_group_uses_its_own_lr_and_strength_and_unpenalized_params_stay():
    weight = torch.full((3,), 0.5, dtype=torch.float64, requires_grad=True)
    other = torch.full((3,), 0.5, dtype=torch.float64, requires_grad=True)
    bias = torch.full((2,), 0.5, dtype=torch.float64, requires_grad=True)
    free = torch.full((2,), 0.5, dtype=torch.float64, requires_grad=True)
    inner = descend.optim.SGD(
        [
            {"params": [weight], "lr": 0.1},
            {"params": [other], "lr": 0.2, "l1": 2.0},
            {"params": [bias], "lr": 0.1},
            {"params": [free], "lr": 0.1, "l1": 0.0},
        ]
    )
    opt = ProximalL1(inner, l1=1.0, params=[weight, other, free])
    quadratic_grads(weight, other, bias, free)
    opt.step()
    step = lambda lr: 0.5 - lr * (0.5 - 1.0)  # noqa: E731
    torch.testing.assert_close(weight.detach(), torch.full((3,), step(0.1) - 0.1 * 1.0).double())
    torch.testing.assert_close(other.detach(), torch.full((3,), step(0.2) - 0.2 * 2.0).double())
    torch.testing.assert_close(bias.detach(), torch.full((2,), step(0.1)).double())  # not given
    torch.testing.assert_close(free.detach(), torch.full((2,), step(0.1)).double())  # l1 = 0


def test_a_torch_scheduler_changes_the_threshold():
    w = torch.full((4,), 1.0, dtype=torch.float64, requires_grad=True)
    opt = ProximalL1(descend.optim.SGD([w], lr=0.1), l1=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    before = w.detach().clone()
    w.grad = torch.zeros_like(w)
    opt.step()
    scheduler.step()
    torch.testing.assert_close(w.detach(), before - 0.1)
    assert opt.optimizer.param_groups[0]["lr"] == 0.05  # the inner's group is the wrapper's
    w.grad = torch.zeros_like(w)
    opt.step()
    torch.testing.assert_close(w.detach(), before - 0.1 - 0.05)


def test_a_tensor_threshold_matches_a_float_one():
    torch.manual_seed(0)
    a = [torch.randn(5, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)]
    b = [t.clone() for t in a]
    soft_threshold_(a, 0.4)
    soft_threshold_(b, torch.tensor(0.4, dtype=torch.float64))
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def make(seed: int = 0, l1: float = 0.05):
    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 2).double()
    opt = ProximalL1(descend.optim.Adam(model.parameters(), lr=0.05), l1=l1)
    return model, opt


def train(model, opt, steps: int, seed: int = 3) -> None:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        X = torch.randn(16, 4, generator=gen, dtype=torch.float64)
        y = torch.randn(16, 2, generator=gen, dtype=torch.float64)
        opt.zero_grad()
        F.mse_loss(model(X), y).backward()
        opt.step()


def test_state_dict_is_the_inner_optimizers_and_resumes_in_lockstep():
    model, opt = make()
    train(model, opt, 5)
    saved = opt.state_dict()
    assert saved.keys() == opt.optimizer.state_dict().keys()
    assert saved["param_groups"] == opt.optimizer.state_dict()["param_groups"]
    resumed_model, resumed = make(seed=1)
    resumed_model.load_state_dict(model.state_dict())
    resumed.load_state_dict(copy.deepcopy(saved))
    assert resumed.state is resumed.optimizer.state  # still shared after the load
    train(model, opt, 5, seed=4)
    train(resumed_model, resumed, 5, seed=4)
    for p, q in zip(model.parameters(), resumed_model.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_a_bare_inner_state_dict_loads_into_the_wrapper():
    model, opt = make()
    train(model, opt, 3)
    bare = descend.optim.Adam(model.parameters(), lr=0.05)
    bare.load_state_dict(opt.state_dict())
    wrapped = ProximalL1(descend.optim.Adam(model.parameters(), lr=0.05), l1=0.05)
    wrapped.load_state_dict(bare.state_dict())
    assert wrapped.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]


def test_copies_step_like_the_original():
    model, opt = make()
    train(model, opt, 2)
    for clone in (copy.deepcopy((model, opt)), pickle.loads(pickle.dumps((model, opt)))):
        twin_model, twin = clone
        assert twin.optimizer is not opt.optimizer
        assert twin.state is twin.optimizer.state
        train(twin_model, twin, 3, seed=5)
    train(model, opt, 3, seed=5)
    for p, q in zip(model.parameters(), twin_model.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_zero_grad_add_param_group_defaults_and_hooks_reach_the_inner():
    model, opt = make()
    assert opt.defaults is opt.optimizer.defaults
    train(model, opt, 1)
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    seen = []
    opt.register_step_post_hook(lambda optimizer, args, kwargs: seen.append(optimizer))
    train(model, opt, 2)
    assert seen == [opt, opt]
    extra = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt.add_param_group({"params": [extra]})
    assert opt.optimizer.param_groups[-1]["params"] == [extra]
    assert "ProximalL1" in repr(opt) and "l1=0.05" in repr(opt)


def test_refuses_what_it_cannot_do():
    x = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="cannot take an L1 penalty"):
        ProximalL1(descend.optim.LBFGS([x]), l1=0.1)
    with pytest.raises(ValueError, match="cannot take an L1 penalty"):
        ProximalL1(torch.optim.LBFGS([x]), l1=0.1)
    with pytest.raises(TypeError, match="must be a torch.optim.Optimizer"):
        ProximalL1("sgd", l1=0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="l1"):
        ProximalL1(descend.optim.SGD([x]), l1=-1.0)
    with pytest.raises(ValueError, match="does not update"):
        ProximalL1(descend.optim.SGD([x]), l1=0.1, params=[torch.zeros(2)])
    with pytest.raises(ValueError, match="already a ProximalL1"):
        ProximalL1(ProximalL1(descend.optim.SGD([x]), l1=0.1), l1=0.1)
    assert capabilities(ProximalL1(torch.optim.SGD([x], lr=0.1), l1=0.1)).proximal


def test_the_gradient_mapping_is_the_gradient_norm_without_a_threshold():
    w = torch.tensor([0.5, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
    opt = ProximalL1(descend.optim.SGD([w], lr=0.1), l1=0.0)
    before = [[w.detach().clone()]]
    quadratic_grads(w)
    g = w.grad.clone()
    opt.step()
    torch.testing.assert_close(proximal_gradient_mapping(opt, before), g.norm())


def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


@pytest.mark.parametrize("alpha", [0.05, 0.3])
def test_ista_reaches_sklearns_lasso_with_the_same_zeros(alpha):
    """Full-batch ISTA with step 1/L: scikit-learn's objective
    (1/2n)||y - Xw - b||^2 + alpha ||w||_1, the intercept unpenalized."""
    X, y = diabetes()
    theirs = Lasso(alpha=alpha, tol=1e-14, max_iter=100_000).fit(X, y)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    model = torch.nn.Linear(X.shape[1], 1).double()
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    lr = 1.0 / lipschitz_constant(Xt, fit_intercept=True)
    opt = ProximalL1(descend.optim.SGD(model.parameters(), lr=lr), alpha, params=[model.weight])
    for _ in range(20_000):
        opt.zero_grad()
        (0.5 * (model(Xt).squeeze(1) - yt).square().mean()).backward()
        before = [[p.detach().clone() for p in g["params"]] for g in opt.param_groups]
        opt.step()
        if proximal_gradient_mapping(opt, before) < 1e-12:
            break
    ours = model.weight.detach().numpy().ravel()
    np.testing.assert_allclose(ours, theirs.coef_, atol=1e-8)
    np.testing.assert_array_equal(ours == 0.0, theirs.coef_ == 0.0)
    assert (ours == 0.0).sum() >= 1
    assert abs(model.bias.item() - theirs.intercept_) < 1e-8
    # stationary by the proximal mapping, not by the gradient of the smooth part
    opt.zero_grad()
    (0.5 * (model(Xt).squeeze(1) - yt).square().mean()).backward()
    assert float(model.weight.grad.norm()) > alpha
