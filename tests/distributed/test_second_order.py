"""Full-batch second order on data sharded across 2 gloo processes
(:mod:`descend.distributed.objective`): the coefficients equal those of one process holding
every row, and both ranks end with the same bits.

One launch of two worker processes (this file run as a script, each rank loading only its
own shard) serves every test: the workers write what they found, the tests compare it with
the same runs in this process on all the rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch

import descend
from descend.distributed.teardown import exit_when_done
from descend.estimators import LinearRegression, LogisticRegression

METHODS = ("lbfgs", "bfgs", "newton-cg", "trust-region")
ROWS, FEATURES, RANK0_ROWS = 400, 5, 250  # unequal shards: the shares are not 1/2
L2 = 1.0  # the minimize objective is L2-strongly convex: ||x - x*|| <= ||grad f(x)|| / L2
GTOL = 1e-9  # below what float64 resolves at f ~ 0.6: each run stops where it can go no lower
ALPHA = 0.1
NEWTON_TOL = 1e-12  # quadratic convergence gets there; the coefficients then agree to 1e-10
TIMEOUT_S = 150


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(ROWS, FEATURES)) * [1.0, 2.0, 0.5, 1.0, 3.0]
    y = (X @ [1.0, -0.5, 2.0, 0.0, 0.3] + rng.logistic(size=ROWS) > 0).astype(np.int64)
    weights = rng.uniform(0.5, 2.0, size=ROWS)
    return X, y, weights


def log_loss(X: torch.Tensor, y: torch.Tensor):
    """The mean logistic loss over (X, y) plus L2 / 2 ||w||^2, a function of w."""

    def fun(w: torch.Tensor) -> torch.Tensor:
        z = X @ w
        return (torch.nn.functional.softplus(z) - y * z).mean() + 0.5 * L2 * (w * w).sum()

    return fun


def estimators() -> dict[str, LinearRegression | LogisticRegression]:
    return {
        "estimator-linear-newton-cg": LinearRegression(
            optimizer="newton-cg", alpha=ALPHA, tol=NEWTON_TOL, max_epochs=100
        ),
        "estimator-lbfgs": LogisticRegression(
            optimizer="lbfgs", alpha=ALPHA, tol=GTOL, max_epochs=500
        ),
        "estimator-trust-region-weighted": LogisticRegression(
            optimizer="trust-region", alpha=ALPHA, tol=NEWTON_TOL, max_epochs=200
        ),
    }


def derivatives(loss, params: list[torch.Tensor]) -> dict:
    """f, the gradient and the Hessian-vector product with v = (1, 1, ...) of ``loss()``
    at ``params``, by backward and double backward."""
    f = loss()
    grads = torch.autograd.grad(f, params, create_graph=True)
    hvp = torch.autograd.grad(grads, params, [torch.ones_like(p) for p in params])
    flat = [torch.cat([t.detach().reshape(-1) for t in ts]).numpy() for ts in (grads, hvp)]
    return {"f": f.item(), "grad": flat[0], "hvp": flat[1]}


def run_all(X: np.ndarray, y: np.ndarray, w: np.ndarray, distributed: bool, folder: Path) -> dict:
    """Every quantity the tests compare, on these rows: f, gradient and Hessian-vector
    product at a point (of a function for minimize, and of a module's loss as fit sees
    it), minimize by each method, and the estimators (one with sample weights)."""
    from descend.distributed.objective import ShardedLoss, ShardedModule, row_share, sharded

    Xt, yt = torch.from_numpy(X), torch.from_numpy(y).double()
    fun = log_loss(Xt, yt)
    module = torch.nn.Linear(FEATURES, 1, dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(torch.linspace(-1, 1, FEATURES))
        module.bias.fill_(0.3)
    loss = torch.nn.BCEWithLogitsLoss()
    model = module
    if distributed:
        share = row_share(len(X))
        fun = sharded(fun, share)
        model, loss = ShardedModule(module), ShardedLoss(loss, share)
    w0 = torch.linspace(-0.5, 0.5, FEATURES, dtype=torch.float64, requires_grad=True)
    out: dict = {}
    for key, value in derivatives(lambda: fun(w0), [w0]).items():
        out[f"function/{key}"] = value
    modelled = derivatives(lambda: loss(model(Xt)[:, 0], yt), list(module.parameters()))
    for key, value in modelled.items():
        out[f"module/{key}"] = value
    for method in METHODS:
        result = descend.minimize(
            fun,
            torch.zeros(FEATURES, dtype=torch.float64),
            method,
            gtol=GTOL,
            max_iter=500,
            monitors=None,
        )
        out[f"{method}/x"] = result.x.numpy()
        out[f"{method}/grad_norm"] = result.grad_norm
        out[f"{method}/nit"] = result.nit
    for name, model in estimators().items():
        weights = w if name.endswith("weighted") else None
        target = X @ [0.5, -1.0, 0.0, 2.0, 0.1] + y if name.endswith("newton-cg") else y
        model.fit(X, target, sample_weight=weights, distributed=distributed)
        out[f"{name}/coef"] = model.coef_
        out[f"{name}/intercept"] = model.intercept_
        out[f"{name}/n_iter"] = model.t_
        out[f"{name}/grad_norm"] = model._fit_result.grad_norm
    # mini-batches: every rank gathers all rows and trains on its share of each batch;
    # rank 0 holds 250 rows, so the ranks' rows [::5] gathered are all rows' [::5]
    minibatch = LogisticRegression(
        optimizer="adam", batch_size=16, max_epochs=5, alpha=ALPHA, random_state=0
    ).fit(X, y, sample_weight=w, validation=(X[::5], y[::5]), distributed=distributed)
    out["minibatch/params"] = np.r_[minibatch.coef_.ravel(), minibatch.intercept_]
    out["minibatch/val_loss"] = np.array(minibatch.validation_loss_curve_)
    # the lasso by proximal gradient: every rank steps by 1/L of all rows, not of its own
    lasso = LinearRegression(penalty="l1", alpha=0.05, max_epochs=30).fit(
        X, X @ [0.5, -1.0, 0.0, 2.0, 0.1], distributed=distributed
    )
    out["lasso/params"] = np.r_[lasso.coef_, lasso.intercept_]
    # stopped after 3 iterations and resumed from rank 0's checkpoint: the straight run's bits
    checkpoint = folder / f"lbfgs-{distributed}.pt"
    stopped, resumed = {"checkpoint": checkpoint}, {"checkpoint": checkpoint, "resume": True}
    runs = []
    for epochs, options in ((3, stopped), (8, resumed), (8, {})):
        model = LogisticRegression(
            optimizer="lbfgs", max_epochs=epochs, tol=0.0, alpha=ALPHA, random_state=0
        )
        model.fit(X, y, distributed=distributed, **options)
        runs.append(np.r_[model.coef_.ravel(), model.intercept_])
    out["resumed/params"], out["straight/params"] = runs[1], runs[2]
    return out


def join_group(rank: int, world: int, folder: Path) -> None:
    """This process as ``rank`` of a gloo group of ``world``, meeting through a file in
    ``folder`` (no port to race other programs for); a rank that does not come fails the
    others within 60 s."""
    store = torch.distributed.FileStore(str(folder / "rendezvous"), world)
    torch.distributed.init_process_group(
        "gloo", store=store, rank=rank, world_size=world, timeout=timedelta(seconds=60)
    )


def leave_group() -> None:
    """The group destroyed once every rank is done (a rank that closes its connections
    while a peer still holds them can abort the peer's exit: SIGABRT, "terminate called
    without an active exception"), and the process, when it ends, without the
    interpreter's teardown, where torch's gloo can still abort it
    (:mod:`descend.distributed.teardown`)."""
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
    exit_when_done()


def launch(script: str, folder: Path, world: int = 2) -> None:
    """Run ``script`` as ``world`` processes, each with the arguments ``rank world folder``,
    and wait for them all (at most TIMEOUT_S); a rank that fails fails the test with its
    output."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, script, str(rank), str(world), str(folder)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(world)
    ]
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=TIMEOUT_S)[0])
    finally:
        for proc in procs:
            proc.kill()
    for proc, output in zip(procs, outputs):
        assert proc.returncode == 0, output[-3000:]


def worker(rank: int, world: int, folder: Path) -> None:
    join_group(rank, world, folder)
    shard = np.load(folder / f"shard{rank}.npz")
    out = run_all(shard["X"], shard["y"], shard["w"], distributed=True, folder=folder)
    errors = []
    try:
        LogisticRegression(early_stopping=True).fit(shard["X"], shard["y"], distributed=True)
    except ValueError as error:
        errors.append(str(error))
    out["errors"] = np.array(errors)
    np.savez(folder / f"rank{rank}.npz", **out)
    leave_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    folder = tmp_path_factory.mktemp("shards")
    X, y, w = data()
    cut = RANK0_ROWS
    np.savez(folder / "shard0.npz", X=X[:cut], y=y[:cut], w=w[:cut])
    np.savez(folder / "shard1.npz", X=X[cut:], y=y[cut:], w=w[cut:])
    launch(__file__, folder)
    return [dict(np.load(folder / f"rank{r}.npz")) for r in range(2)]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory) -> dict:
    X, y, w = data()
    return run_all(X, y, w, distributed=False, folder=tmp_path_factory.mktemp("one"))


def test_both_ranks_end_with_the_same_bits(ranks: list[dict]) -> None:
    assert ranks[0].keys() == ranks[1].keys()
    for key in ranks[0]:
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key], err_msg=key)


@pytest.mark.parametrize("of", ["function", "module"])
def test_f_gradient_and_hessian_vector_product_are_those_of_all_rows(
    ranks: list[dict], one_process: dict, of: str
) -> None:
    """sharded(fun, share) for minimize, ShardedModule + ShardedLoss for fit: on each
    rank, f, its gradient and H v equal one process's on all rows, to rounding."""
    for key in ("f", "grad", "hvp"):
        np.testing.assert_allclose(
            ranks[0][f"{of}/{key}"], one_process[f"{of}/{key}"], rtol=1e-12, atol=1e-15, err_msg=key
        )


@pytest.mark.parametrize("method", METHODS)
def test_minimize_on_sharded_data_reaches_the_one_process_minimizer(
    ranks: list[dict], one_process: dict, method: str
) -> None:
    """f is L2-strongly convex, so each run's x is within ||grad f(x)|| / L2 of the one
    minimizer: the two runs within the sum of their gradient norms over L2."""
    g_sharded, g_one = ranks[0][f"{method}/grad_norm"], one_process[f"{method}/grad_norm"]
    assert max(g_sharded, g_one) < 1e-7  # both converged
    np.testing.assert_allclose(
        ranks[0][f"{method}/x"], one_process[f"{method}/x"], rtol=0, atol=(g_sharded + g_one) / L2
    )


def strong_convexity(coef: np.ndarray, intercept: np.ndarray, weighted: bool) -> float:
    """The smallest eigenvalue of the estimator's objective's Hessian at (coef, intercept),
    halved: a bound of the curvature along the short segment between two fits."""
    X, _, w = data()
    w = w / w.mean() if weighted else np.ones(ROWS)
    Xt = np.hstack([X, np.ones((ROWS, 1))])
    p = 1 / (1 + np.exp(-(Xt @ np.r_[coef.ravel(), intercept])))
    H = (Xt.T * (w * p * (1 - p))) @ Xt / ROWS + ALPHA * np.diag([1.0] * FEATURES + [0.0])
    return np.linalg.eigvalsh(H)[0] / 2


@pytest.mark.parametrize("name", ["estimator-lbfgs", "estimator-trust-region-weighted"])
def test_logistic_regression_on_sharded_data_has_the_one_process_coefficients(
    ranks: list[dict], one_process: dict, name: str
) -> None:
    """LogisticRegression(optimizer=...).fit(X_rank, y_rank, distributed=True) on 2 ranks,
    neither holding all rows: the coefficients of the fit on all rows, within what the
    gradient norms of the two fits allow (||x - y|| <= (g_x + g_y) / mu)."""
    mu = strong_convexity(
        one_process[f"{name}/coef"],
        one_process[f"{name}/intercept"],
        weighted=name.endswith("weighted"),
    )
    bound = (ranks[0][f"{name}/grad_norm"] + one_process[f"{name}/grad_norm"]) / mu
    sharded = np.r_[ranks[0][f"{name}/coef"].ravel(), ranks[0][f"{name}/intercept"]]
    one = np.r_[one_process[f"{name}/coef"].ravel(), one_process[f"{name}/intercept"]]
    assert np.linalg.norm(sharded - one) <= bound
    assert ranks[0][f"{name}/n_iter"] > 3  # a real run, not a start at the minimum


def test_linear_regression_on_sharded_data_has_the_one_process_coefficients(
    ranks: list[dict], one_process: dict
) -> None:
    """Least squares plus ALPHA / 2 ||w||^2: ALPHA-strongly convex in the weights and
    lambda_min(X~^T X~ / n) in the intercept too, so the fits are within (g_x + g_y) / mu."""
    name = "estimator-linear-newton-cg"
    X, _, _ = data()
    Xt = np.hstack([X, np.ones((ROWS, 1))])
    mu = np.linalg.eigvalsh(Xt.T @ Xt / ROWS)[0]
    bound = (ranks[0][f"{name}/grad_norm"] + one_process[f"{name}/grad_norm"]) / mu
    sharded = np.r_[ranks[0][f"{name}/coef"], ranks[0][f"{name}/intercept"]]
    one = np.r_[one_process[f"{name}/coef"], one_process[f"{name}/intercept"]]
    assert np.linalg.norm(sharded - one) <= bound


@pytest.mark.parametrize("name", ["estimator-trust-region-weighted", "estimator-linear-newton-cg"])
def test_newton_type_fits_agree_to_1e_8(ranks: list[dict], one_process: dict, name: str) -> None:
    """Quadratic convergence reaches tol = 1e-12: with the curvatures above (> 0.01), the
    bound (g_x + g_y) / mu is below 1e-8 by two orders of magnitude, on any machine."""
    assert max(ranks[0][f"{name}/grad_norm"], one_process[f"{name}/grad_norm"]) <= NEWTON_TOL
    for part in ("coef", "intercept"):
        np.testing.assert_allclose(
            ranks[0][f"{name}/{part}"], one_process[f"{name}/{part}"], rtol=0, atol=1e-8
        )


def test_a_resumed_sharded_fit_ends_bit_identical_to_one_never_stopped(
    ranks: list[dict],
) -> None:
    """Rank 0 writes the checkpoint, every rank resumes from it (the others' callbacks
    still those of the file): on every rank, the bits of the uninterrupted run."""
    for rank in ranks:
        np.testing.assert_array_equal(rank["resumed/params"], rank["straight/params"])


def test_a_distributed_fit_refuses_early_stopping(ranks: list[dict]) -> None:
    (early,) = ranks[0]["errors"]
    assert "early_stopping" in early


def test_mini_batches_and_the_lasso_on_sharded_data_train_the_one_process_model(
    ranks: list[dict], one_process: dict
) -> None:
    """Adam on batches of 16 with sample weights and held-out rows, and the lasso by
    proximal gradient (its step 1/L), each rank holding its own rows: the parameters and
    validation losses of one process on all rows, to the rounding of the all-reduced sums
    (float64)."""
    for key in ("minibatch/params", "minibatch/val_loss", "lasso/params"):
        np.testing.assert_allclose(ranks[0][key], one_process[key], rtol=1e-10, err_msg=key)


def test_distributed_without_a_process_group_says_how_to_start_one() -> None:
    if torch.distributed.is_initialized():
        pytest.skip("another test left a process group initialized in this process")
    X, y, _ = data()
    with pytest.raises(ValueError, match="torchrun"):
        LogisticRegression(optimizer="lbfgs").fit(X, y, distributed=True)
    with pytest.raises(TypeError, match="distributed must be True, False or"):
        LogisticRegression(optimizer="lbfgs").fit(X, y, distributed="yes")


if __name__ == "__main__":
    worker(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
