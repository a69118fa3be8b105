"""Natural gradient: Fisher-vector products against explicit per-sample gradients
(torch.func), the model Fisher against the generalized Gauss-Newton matrix and the
Hessian, and logistic and softmax regression against scikit-learn's optimum."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.optimize
import torch
import torch.nn.functional as F
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from torch import Tensor, nn
from torch.func import functional_call, grad, jacrev, vmap

from descend.optim import SGD, NaturalGradient, StepFailed
from descend.optim.natural_gradient import FisherVectorProduct


def mlp(seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).to(dtype)


def classification_data(n: int = 40, seed: int = 1, dtype: torch.dtype = torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g, dtype=dtype)
    y = torch.randint(0, 3, (n,), generator=g)
    return x, y


def flat_params(model: nn.Module) -> list[Tensor]:
    return list(model.parameters())


# -- Fisher-vector products ---------------------------------------------------------------


def test_empirical_fisher_product_matches_per_sample_gradients() -> None:
    model = mlp()
    x, y = classification_data()
    params = dict(model.named_parameters())

    def sample_loss(p: dict[str, Tensor], xi: Tensor, yi: Tensor) -> Tensor:
        logits = functional_call(model, p, (xi.unsqueeze(0),))
        return F.cross_entropy(logits, yi.unsqueeze(0))

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, x, y)
    jac = torch.cat([per_sample[k].reshape(len(x), -1) for k in params], dim=1)  # N x n
    fisher = jac.T @ jac / len(x)

    with torch.enable_grad():
        losses = F.cross_entropy(model(x), y, reduction="none")
        fvp = FisherVectorProduct(losses, None, flat_params(model), "empirical")
    torch.testing.assert_close(fvp.grad, jac.mean(0), rtol=1e-12, atol=1e-14)
    gen = torch.Generator().manual_seed(2)
    for _ in range(3):
        v = torch.randn(fisher.shape[0], generator=gen, dtype=torch.float64)
        torch.testing.assert_close(fvp(v), fisher @ v, rtol=1e-10, atol=1e-13)
    assert fvp.count == 3


def test_model_fisher_product_is_the_generalized_gauss_newton_matrix() -> None:
    model = mlp(seed=3)
    x, y = classification_data(seed=4)
    params = dict(model.named_parameters())
    n = sum(p.numel() for p in params.values())

    def logits_of(p: dict[str, Tensor]) -> Tensor:
        return functional_call(model, p, (x,))

    jac = jacrev(logits_of)(params)  # per key: N x 3 x shape
    jz = torch.cat([jac[k].reshape(len(x), 3, -1) for k in params], dim=2)  # N x 3 x n
    probs = torch.softmax(logits_of(params), dim=1).detach()
    hz = (torch.diag_embed(probs) - probs.unsqueeze(2) * probs.unsqueeze(1)) / len(x)
    ggn = torch.einsum("ika,ikl,ilb->ab", jz, hz, jz)

    with torch.enable_grad():
        logits = model(x)
        losses = F.cross_entropy(logits, y, reduction="none")
        fvp = FisherVectorProduct(losses, logits, flat_params(model), "model")
    gen = torch.Generator().manual_seed(5)
    for _ in range(3):
        v = torch.randn(n, generator=gen, dtype=torch.float64)
        torch.testing.assert_close(fvp(v), ggn @ v, rtol=1e-10, atol=1e-13)


def test_model_fisher_of_logistic_regression_is_its_hessian() -> None:
    g = torch.Generator().manual_seed(6)
    x = torch.randn(50, 4, generator=g, dtype=torch.float64)
    y = (torch.rand(50, generator=g) < 0.5).double()
    w = torch.randn(4, generator=g, dtype=torch.float64).requires_grad_(True)

    def mean_loss(w_: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(x @ w_, y)

    hessian = torch.autograd.functional.hessian(mean_loss, w.detach())
    with torch.enable_grad():
        z = x @ w
        fvp = FisherVectorProduct(
            F.binary_cross_entropy_with_logits(z, y, reduction="none"), z, [w], "model"
        )
    model_fisher = torch.stack([fvp(e) for e in torch.eye(4, dtype=torch.float64)])
    torch.testing.assert_close(model_fisher, hessian, rtol=1e-12, atol=1e-14)


# -- logistic regression: far fewer iterations than gradient descent ----------------------

LAMBDA = 1e-2  # L2 penalty: f = mean log-loss + LAMBDA/2 |w|^2


@pytest.fixture(scope="module")
def breast_cancer():
    x, y = load_breast_cancer(return_X_y=True)
    x = StandardScaler().fit_transform(x)
    x = np.hstack([x, np.ones((len(x), 1))])  # the intercept, penalized like the rest
    n = len(x)
    # scikit-learn minimizes |w|^2/2 + C sum(loss): C = 1/(n LAMBDA) is the same problem
    clf = LogisticRegression(C=1 / (n * LAMBDA), fit_intercept=False, tol=1e-12, max_iter=10_000)
    w_sk = clf.fit(x, y).coef_.ravel()
    xt, yt = torch.tensor(x), torch.tensor(y, dtype=torch.float64)

    def f(w: Tensor) -> float:
        w = w.detach()
        return (F.binary_cross_entropy_with_logits(xt @ w, yt) + LAMBDA / 2 * w @ w).item()

    def f_np(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ w
        p = 1 / (1 + np.exp(-z))
        value = np.mean(np.logaddexp(0, z) - y * z) + LAMBDA / 2 * w @ w
        return value, x.T @ (p - y) / n + LAMBDA * w

    ref = scipy.optimize.minimize(
        f_np,
        np.zeros(x.shape[1]),
        jac=True,
        method="L-BFGS-B",
        options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000},
    )
    f_star = f(torch.tensor(w_sk))
    assert abs(f_star - ref.fun) < 1e-10  # scikit-learn and SciPy agree on the optimum
    return xt, yt, f, min(f_star, ref.fun)


def iterations_to(step, f, w: Tensor, f_star: float, max_iter: int) -> int:
    for k in range(1, max_iter + 1):
        step()
        if f(w) <= f_star + 1e-6:
            return k
    return max_iter + 1


def gradient_descent_iterations(xt: Tensor, yt: Tensor, f, f_star: float) -> tuple[int, int]:
    """Iterations of gradient descent with the step 1/L to f* + 1e-6, and the bound of
    the theory for an L-smooth, mu-strongly convex f: f_k - f* <= (1 - mu/L)^k (f_0 - f*),
    with mu = LAMBDA (the penalty's curvature; the log-loss only adds to it)."""
    # the largest safe fixed step: 1/L, L = lambda_max(X'X)/(4N) + LAMBDA
    lipschitz = torch.linalg.eigvalsh(xt.T @ xt / len(xt))[-1].item() / 4 + LAMBDA
    w = torch.zeros(xt.shape[1], dtype=torch.float64, requires_grad=True)
    gap0 = f(w) - f_star
    bound = math.ceil(math.log(gap0 / 1e-6) / -math.log1p(-LAMBDA / lipschitz))
    opt = SGD([w], lr=1 / lipschitz)

    def step() -> None:
        opt.zero_grad()
        (F.binary_cross_entropy_with_logits(xt @ w, yt) + LAMBDA / 2 * w @ w).backward()
        opt.step()

    return iterations_to(step, f, w, f_star, 5000), bound


@pytest.mark.parametrize("fisher", ["model", "empirical"])
def test_logistic_regression_in_a_tenth_of_gradient_descents_iterations(
    breast_cancer, fisher: str
) -> None:
    xt, yt, f, f_star = breast_cancer
    w = torch.zeros(xt.shape[1], dtype=torch.float64, requires_grad=True)
    opt = NaturalGradient([w], lr=1.0, damping=1e-3, weight_decay=LAMBDA, fisher=fisher)

    def closure():
        z = xt @ w
        losses = F.binary_cross_entropy_with_logits(z, yt, reduction="none")
        return (losses, z) if fisher == "model" else losses

    ng = iterations_to(lambda: opt.step(closure), f, w, f_star, 100)
    gd, gd_bound = gradient_descent_iterations(xt, yt, f, f_star)
    assert gd <= gd_bound  # 926 <= 4421: gradient descent itself is sound
    assert ng <= gd / 10  # both measured in this run


def test_softmax_regression_reaches_scikit_learns_optimum() -> None:
    x, y = load_iris(return_X_y=True)
    x = np.hstack([StandardScaler().fit_transform(x), np.ones((len(x), 1))])
    n, lam = len(x), 1e-2
    clf = LogisticRegression(C=1 / (n * lam), fit_intercept=False, tol=1e-12, max_iter=10_000)
    w_sk = torch.tensor(clf.fit(x, y).coef_.T.copy())  # 5 x 3
    xt, yt = torch.tensor(x), torch.tensor(y)

    def f(w: Tensor) -> float:
        w = w.detach()
        return (F.cross_entropy(xt @ w, yt) + lam / 2 * (w * w).sum()).item()

    w = torch.zeros(5, 3, dtype=torch.float64, requires_grad=True)
    opt = NaturalGradient([w], damping=1e-4, weight_decay=lam, fisher="model")

    def closure():
        logits = xt @ w
        return F.cross_entropy(logits, yt, reduction="none"), logits

    nit = 0
    while f(w) > f(w_sk) + 1e-10 and nit < 12:
        opt.step(closure)
        nit += 1
    assert nit <= 8
    torch.testing.assert_close(w.detach(), w_sk, rtol=0, atol=1e-4)


# -- the training-loop contract -----------------------------------------------------------


def test_mlp_in_float32_descends_every_step_and_leaves_the_gradient() -> None:
    model = mlp(seed=7, dtype=torch.float32)
    x, y = classification_data(n=64, seed=8, dtype=torch.float32)
    opt = NaturalGradient(model.parameters(), lr=1.0, damping=1e-2)

    def closure() -> Tensor:
        opt.zero_grad()
        return F.cross_entropy(model(x), y, reduction="none")

    losses = []
    for _ in range(15):
        expected = torch.autograd.grad(F.cross_entropy(model(x), y), list(model.parameters()))
        losses.append(opt.step(closure).item())
        # p.grad: the gradient of the mean loss where the step started
        for p, e in zip(model.parameters(), expected):
            torch.testing.assert_close(p.grad, e)
    assert all(b < a for a, b in itertools.pairwise(losses))
    assert losses[-1] < 0.5 * losses[0]
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_fixed_step_scales_with_lr_and_follows_a_scheduler() -> None:
    x, y = classification_data(seed=9)

    def displacement(model: nn.Module, opt: NaturalGradient) -> Tensor:
        before = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
        opt.step(lambda: F.cross_entropy(model(x), y, reduction="none"))
        return torch.nn.utils.parameters_to_vector(model.parameters()).detach() - before

    model = mlp(seed=10)
    opt = NaturalGradient(model.parameters(), lr=1.0, line_search_fn=None)
    schedule = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    displacement(model, opt)
    schedule.step()
    assert opt.param_groups[0]["lr"] == 0.5
    twin = mlp(seed=10)
    twin.load_state_dict(model.state_dict())
    scheduled = displacement(model, opt)
    full = displacement(twin, NaturalGradient(twin.parameters(), lr=1.0, line_search_fn=None))
    torch.testing.assert_close(scheduled, 0.5 * full, rtol=1e-12, atol=1e-15)


def test_heavy_damping_gives_a_gradient_step() -> None:
    """(F + lambda I)^{-1} g -> g / lambda as lambda grows: gradient descent, lr/lambda."""
    model = mlp(seed=11)
    x, y = classification_data(seed=12)
    damping = 1e6
    opt = NaturalGradient(model.parameters(), damping=damping, line_search_fn=None)
    before = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
    opt.step(lambda: F.cross_entropy(model(x), y, reduction="none"))
    after = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
    g = torch.nn.utils.parameters_to_vector([p.grad for p in model.parameters()])
    torch.testing.assert_close(after - before, -g / damping, rtol=1e-5, atol=0)


def test_zero_lr_and_zero_gradient_are_no_ops() -> None:
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    x = torch.eye(3, dtype=torch.float64)
    y = torch.full((3,), 0.5, dtype=torch.float64)  # p = 1/2 at w = 0: zero gradient
    opt = NaturalGradient([w])
    opt.step(lambda: F.binary_cross_entropy_with_logits(x @ w, y, reduction="none"))
    assert torch.equal(w.detach(), torch.zeros(3, dtype=torch.float64))
    opt = NaturalGradient([w], lr=0.0)
    opt.step(lambda: F.binary_cross_entropy_with_logits(x @ w, 1 - y / 2, reduction="none"))
    assert torch.equal(w.detach(), torch.zeros(3, dtype=torch.float64))


def test_no_decrease_raises_and_restores() -> None:
    w = torch.tensor([1.0, -1.0], dtype=torch.float64, requires_grad=True)
    start = w.detach().clone()

    def closure() -> Tensor:  # finite at the start only
        losses = (w - 3.0) ** 2
        return losses if torch.equal(w.detach(), start) else losses * float("nan")

    with pytest.raises(StepFailed) as info:
        NaturalGradient([w], max_eval=5).step(closure)
    assert info.value.status == "line_search_failed"
    assert torch.equal(w.detach(), start)


# -- errors -------------------------------------------------------------------------------


def test_closure_must_return_per_sample_losses() -> None:
    w = torch.zeros(2, requires_grad=True)
    x = torch.ones(4, 2)
    with pytest.raises(ValueError, match=r"shape \[N\] \(use reduction='none'\), got \(\)"):
        NaturalGradient([w]).step(lambda: (x @ w).exp().mean())
    with pytest.raises(ValueError, match="must return \\(per-sample losses"):
        NaturalGradient([w], fisher="model").step(lambda: (x @ w).exp())
    with pytest.raises(ValueError, match="do not depend on the parameters"):
        NaturalGradient([w]).step(lambda: torch.ones(4))
    with pytest.raises(ValueError, match="closure"):
        NaturalGradient([w]).step(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"lr": -1.0}, "lr must be in [0, inf), got -1.0"),
        ({"damping": -1e-3}, "damping must be in [0, inf), got -0.001"),
        ({"weight_decay": -1.0}, "weight_decay must be in [0, inf), got -1.0"),
        ({"fisher": "true"}, "unknown fisher 'true'; valid choices: empirical, model"),
        ({"line_search_fn": "strong_wolfe"}, "unknown line_search_fn 'strong_wolfe'"),
        ({"c1": 0.0}, "c1 must be in (0, 1), got 0.0"),
        ({"max_eval": 0}, "max_eval must be an integer >= 1, got 0"),
        ({"max_cg_iter": 0}, "max_cg_iter must be an integer >= 1, got 0"),
        ({"cg_rtol": 1.0}, "cg_rtol must be in (0, 1), got 1.0"),
    ],
)
def test_bad_arguments(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        NaturalGradient([torch.zeros(2, requires_grad=True)], **kwargs)
    assert fragment in str(info.value)
