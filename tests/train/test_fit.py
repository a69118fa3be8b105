"""fit: batch, stochastic and mini-batch descent against closed-form least squares; data
kinds; determinism; validation; divergence; the errors at the boundary."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import descend
from descend import Status, fit


def regression(n=400, d=3, noise=0.1, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=dtype)
    w = torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0][:d], dtype=dtype)
    y = X @ w + 0.3 + noise * torch.randn(n, generator=g, dtype=dtype)
    return X, y


def least_squares(X, y):
    A = torch.cat([X, torch.ones(X.shape[0], 1, dtype=X.dtype)], 1)
    return torch.linalg.lstsq(A, y.unsqueeze(1)).solution.squeeze(1)


def linear(d=3, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    return nn.Linear(d, 1).to(dtype)


def flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_full_batch_gd_matches_closed_form_least_squares():
    X, y = regression()
    model = linear()
    res = fit(
        model,
        "mse",
        (X, y),
        optimizer="gd",
        lr=0.5,
        batch_size="full",
        epochs=400,
        seed=0,
        progress=False,
    )
    assert res.status == Status.MAX_ITER and res.nit == 400 and res.epoch == 400
    torch.testing.assert_close(flat(model), least_squares(X, y), rtol=0, atol=1e-8)
    # one step per epoch, each on every row: the epoch loss is the step loss
    np.testing.assert_array_equal(res.history["loss"], res.epoch_history["loss"])


def test_full_batch_gtol_stops_at_the_minimum():
    X, y = regression()
    model = linear()
    res = fit(
        model,
        "mse",
        (X, y),
        optimizer="gd",
        lr=0.5,
        batch_size="full",
        epochs=10_000,
        stopping=descend.StoppingCriteria(gtol=1e-9, ftol=0.0),
        progress=False,
    )
    assert res.status == Status.GTOL and res.converged
    # the step history's last row measured x_{k-1} before the last step; x_k met gtol
    assert res.grad_norm <= 1e-9 < res.history["grad_norm"][-1]
    torch.testing.assert_close(flat(model), least_squares(X, y), rtol=0, atol=1e-8)


def test_sgd_batch_size_one_converges_to_least_squares():
    X, y = regression(n=200)
    model = linear()
    res = fit(
        model,
        "mse",
        (X, y),
        optimizer="gd",
        lr=0.01,
        batch_size=1,
        epochs=15,
        seed=0,
        progress=False,
    )
    assert res.nit == 15 * 200 and len(res.history) == 3000
    # stochastic: within the noise ball of the minimizer (noise 0.1, lr 0.01)
    assert (flat(model) - least_squares(X, y)).abs().max() < 0.03


def test_minibatch_converges_and_epoch_loss_falls_to_the_noise_floor():
    X, y = regression()
    model = linear()
    res = fit(
        model,
        "mse",
        (X, y),
        optimizer="momentum",
        lr=0.02,
        batch_size=16,
        epochs=30,
        seed=0,
        progress=False,
    )
    assert res.nit == 30 * 25  # ceil(400 / 16) = 25 batches per epoch
    assert (flat(model) - least_squares(X, y)).abs().max() < 0.02
    losses = res.epoch_history["loss"]
    assert losses[0] > 10 * losses[-1]
    assert losses[-1] == pytest.approx(0.01, rel=0.3)  # noise variance 0.1**2


def test_last_minibatch_is_short_and_weights_the_epoch_loss_by_rows():
    X, y = regression(n=10)
    model = linear()
    res = fit(
        model,
        "mse",
        (X, y),
        optimizer="gd",
        lr=1e-12,
        batch_size=4,
        epochs=1,
        shuffle=False,
        progress=False,
    )
    assert res.nit == 3
    with torch.no_grad():
        per_row = (model(X).squeeze(1) - y) ** 2
    expected = [per_row[0:4].mean(), per_row[4:8].mean(), per_row[8:10].mean()]
    np.testing.assert_allclose(res.history["loss"], [float(v) for v in expected], rtol=1e-9)
    assert res.epoch_history["loss"][0] == pytest.approx(float(per_row.mean()), rel=1e-9)


def run(seed, **kw):
    X, y = regression()
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Dropout(0.2), nn.Linear(8, 1)).double()
    kw = {"optimizer": "adam", "lr": 0.01, "batch_size": 8, "epochs": 3, **kw}
    res = fit(model, "mse", (X, y), seed=seed, init="xavier", progress=False, **kw)
    return flat(model), res


def test_same_seed_is_bit_identical_and_another_seed_differs():
    a, ra = run(seed=7)
    b, rb = run(seed=7)
    c, _ = run(seed=8)
    assert torch.equal(a, b)
    np.testing.assert_array_equal(ra.history["loss"], rb.history["loss"])
    assert not torch.equal(a, c)
    assert ra.seed == 7


def test_fit_leaves_the_global_rng_alone():
    X, y = regression()
    model = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.5), nn.Linear(8, 1)).double()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fit(model, "mse", (X, y), epochs=2, seed=1, init="he", progress=False)  # dropout draws
    torch.testing.assert_close(torch.rand(3), expected, rtol=0, atol=0)


def test_unseeded_runs_report_their_seed_and_reproduce_from_it():
    a, ra = run(seed=None)
    b, _ = run(seed=ra.seed)
    assert torch.equal(a, b)


class Pairs(Dataset):
    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], self.y[i]


@pytest.mark.parametrize("kind", ["numpy", "pandas", "list", "tensor_dataset", "map_dataset"])
def test_every_data_kind_trains_like_tensors(kind):
    X, y = regression(n=60)
    data = {
        "numpy": (X.numpy(), y.numpy()),
        "pandas": (pd.DataFrame(X.numpy(), columns=["a", "b", "c"]), pd.Series(y.numpy())),
        "list": (X.tolist(), y.tolist()),
        "tensor_dataset": TensorDataset(X, y),
        "map_dataset": Pairs(X, y),
    }[kind]
    kw = {
        "optimizer": "adam",
        "lr": 0.05,
        "batch_size": 7,
        "epochs": 2,
        "seed": 3,
        "progress": False,
    }
    reference = linear()
    fit(reference, "mse", (X, y), **kw)
    model = linear()
    fit(model, "mse", data, **kw)
    assert torch.equal(flat(model), flat(reference))


def test_dataloader_batches_as_given():
    X, y = regression(n=60)
    loader = DataLoader(TensorDataset(X, y), batch_size=20, shuffle=False)
    model = linear()
    res = fit(model, "mse", loader, optimizer="gd", lr=0.1, epochs=3, progress=False)
    assert res.nit == 9
    reference = linear()
    fit(
        reference,
        "mse",
        (X, y),
        optimizer="gd",
        lr=0.1,
        batch_size=20,
        epochs=3,
        shuffle=False,
        progress=False,
    )
    assert torch.equal(flat(model), flat(reference))


def test_dataloader_full_batch_accumulates_the_exact_gradient():
    X, y = regression(n=60)
    loader = DataLoader(TensorDataset(X, y), batch_size=25)  # 25 + 25 + 10 rows
    model, reference = linear(), linear()
    fit(model, "mse", loader, optimizer="gd", lr=0.3, batch_size="full", epochs=20, progress=False)
    fit(
        reference,
        "mse",
        (X, y),
        optimizer="gd",
        lr=0.3,
        batch_size="full",
        epochs=20,
        progress=False,
    )
    torch.testing.assert_close(flat(model), flat(reference), rtol=0, atol=1e-12)


def test_validation_fraction_metric_and_histories():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(300, 2, generator=g)
    y = (X[:, 0] - X[:, 1] > 0).float()
    model = nn.Linear(2, 1)
    res = fit(
        model,
        "bce_with_logits",
        (X, y),
        optimizer="adam",
        lr=0.05,
        batch_size=32,
        epochs=8,
        validation=0.25,
        metric="accuracy",
        seed=0,
        progress=False,
    )
    assert res.has_validation
    h = res.epoch_history.as_dict()
    assert list(h) == list(descend.train.EPOCH_COLUMNS)
    assert h["epoch"].tolist() == list(range(1, 9))
    assert h["step"][-1] == res.nit == 8 * math.ceil(225 / 32)
    assert h["val_metric"][-1] > 0.9 and np.all(np.isfinite(h["val_loss"]))
    assert set(res.logs) >= {"loss", "val_loss", "val_accuracy", "lr", "epoch"}
    # the printed result names the metric and shows its last value
    assert f"val_accuracy: {res.logs['val_accuracy']:.6g}" in repr(res)
    steps = res.history.to_pandas()
    assert list(steps.columns) == ["epoch", "loss", "grad_norm", "lr", "time"]
    assert (steps["lr"] == 0.05).all() and (np.diff(steps["time"]) >= 0).all()
    # the validation loss is the model's loss on the held-out rows
    assert h["val_loss"][-1] < 0.5


def test_validation_accuracy_matches_a_direct_count():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(200, 3, generator=g)
    y = X.argmax(1)
    Xv = torch.randn(50, 3, generator=g)
    yv = Xv.argmax(1)
    model = nn.Linear(3, 3)
    res = fit(
        model,
        "cross_entropy",
        (X, y),
        optimizer="adam",
        lr=0.05,
        epochs=3,
        validation=(Xv, yv),
        metric="accuracy",
        seed=0,
        progress=False,
    )
    with torch.no_grad():
        direct = (model(Xv).argmax(1) == yv).double().mean().item()
        loss = nn.functional.cross_entropy(model(Xv), yv).item()
    assert res.logs["val_accuracy"] == pytest.approx(direct)
    assert res.logs["val_loss"] == pytest.approx(loss, rel=1e-6)


def test_divergence_stops_restores_and_suggests_a_smaller_lr():
    X, y = regression()
    model = linear()
    res = fit(
        model, "mse", (X, y), optimizer="gd", lr=5.0, batch_size="full", epochs=1000, progress=False
    )
    assert res.status == Status.DIVERGED and not res.success
    assert "learning rate 5 is too large; try" in res.message
    # a full batch measures every iterate: the lowest one, here the start, comes back, and
    # fun is its loss (it was the loss of neither the kept model nor the best point)
    assert "Returned the best iterate (iteration 0, f = " in res.message
    assert torch.isfinite(flat(model)).all()
    with torch.no_grad():
        kept = nn.functional.mse_loss(model(X).squeeze(-1), y).item()
    assert res.fun == pytest.approx(kept, rel=1e-12) and res.fun == res.history["loss"][0]
    assert res.nit < 1000


def test_nan_loss_diverges_and_returns_the_best_epoch():
    X, y = regression(n=40)

    class Breaks(nn.Linear):
        calls = 0

        def forward(self, x):
            Breaks.calls += 1
            out = super().forward(x)
            return out * math.nan if Breaks.calls > 30 else out

    model = Breaks(3, 1).double()
    res = fit(
        model,
        "mse",
        (X, y),
        optimizer="gd",
        lr=0.1,
        batch_size=10,
        epochs=50,
        shuffle=False,
        progress=False,
    )
    assert res.status == Status.DIVERGED and "became nan" in res.message
    assert res.nit == Breaks.calls - 1  # every finite batch stepped; the NaN one did not
    assert "epoch 7" in res.message  # 4 steps per epoch: 7 finite epochs, the 8th broke
    assert torch.isfinite(flat(model)).all()


def test_max_steps_stops_mid_epoch():
    X, y = regression()
    res = fit(linear(), "mse", (X, y), batch_size=16, epochs=5, max_steps=30, progress=False)
    assert res.status == Status.MAX_ITER and res.nit == 30 and res.epoch == 1
    assert "max_steps = 30" in res.message
    assert len(res.epoch_history) == 1


def test_epochs_none_runs_until_max_steps():
    X, y = regression(n=32)
    res = fit(linear(), "mse", (X, y), batch_size=8, epochs=None, max_steps=10, progress=False)
    assert res.nit == 10 and res.epoch == 2


def test_optimizer_instance_and_pass_through_options():
    X, y = regression()
    model = linear()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
    res = fit(model, "mse", (X, y), optimizer=opt, batch_size=32, epochs=2, progress=False)
    assert res.method == "SGD" and opt.state  # torch's own SGD ran (momentum buffers)
    model2 = linear()
    res2 = fit(
        model2,
        "mse",
        (X, y),
        optimizer="momentum",
        lr=0.05,
        momentum=0.5,
        batch_size=32,
        epochs=2,
        seed=res.seed,
        progress=False,
    )
    assert torch.equal(flat(model), flat(model2))  # descend's SGD matches torch's bit for bit
    assert res2.method == "momentum"


SECOND_ORDER = ["lbfgs", "bfgs", "cg", "newton", "newton-cg", "trust-region"]


@pytest.mark.parametrize("method", SECOND_ORDER)
def test_second_order_methods_on_the_full_batch_reach_least_squares(method):
    X, y = regression()
    model = linear()
    res = fit(
        model,
        "mse",
        (X, y),
        optimizer=method,
        batch_size="full",
        epochs=200,
        stopping=descend.StoppingCriteria(gtol=1e-9, ftol=0.0),
        progress=False,
    )
    # converged, or stopped because no lower f is measurable (at the rounding floor)
    assert res.status in (Status.GTOL, Status.LINE_SEARCH_FAILED), res.message
    assert res.nit < 20 and res.nfev >= res.nit
    torch.testing.assert_close(flat(model), least_squares(X, y), rtol=0, atol=1e-9)
    if method in ("newton", "newton-cg", "trust-region"):
        assert res.nhev > 0  # exact Hessian-vector products on the batch


def test_newton_logistic_regression_matches_scikit_learn():
    from sklearn.linear_model import LogisticRegression

    g = torch.Generator().manual_seed(0)
    X = torch.randn(500, 4, generator=g, dtype=torch.float64)
    w = torch.tensor([1.0, -1.0, 2.0, 0.5], dtype=torch.float64)
    y = (torch.rand(500, generator=g, dtype=torch.float64) < torch.sigmoid(X @ w)).double()
    C = 0.5
    ref = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X.numpy(), y.numpy())
    torch.manual_seed(0)
    model = nn.Linear(4, 1).double()
    # scikit-learn: C * sum(log loss) + |w|^2 / 2; divided by C n: mean log loss + l2 |w|^2 / 2
    fit(
        model,
        "bce_with_logits",
        (X, y),
        optimizer="newton",
        batch_size="full",
        epochs=50,
        l2=1 / (C * 500),
        stopping=descend.StoppingCriteria(gtol=1e-10, ftol=0.0),
        progress=False,
    )
    np.testing.assert_allclose(model.weight.detach().numpy().ravel(), ref.coef_.ravel(), atol=1e-6)
    assert model.bias.item() == pytest.approx(ref.intercept_[0], abs=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        ({"batch_size": "half"}, "batch_size must be 'full' or an integer >= 1, got 'half'"),
        ({"lr": -1.0}, "lr must be in (0, inf), got -1.0"),
        ({"epochs": 0}, "epochs must be an integer >= 1, got 0"),
        ({"epochs": None}, "epochs=None needs max_steps"),
        ({"optimizer": "sgdd"}, "unknown method 'sgdd'"),
        ({"l1": -0.1}, "l1 must be in [0, inf), got -0.1"),
        ({"clip_grad_norm": 0.0}, "clip_grad_norm must be in (0, inf), got 0.0"),
        ({"validation": 1.5}, "validation must be in (0, 1), got 1.5"),
        ({"nesterov_typo": 1}, "does not take option(s) nesterov_typo"),
        ({"schedule": "linear"}, "unknown schedule 'linear'"),
    ],
)
def test_bad_arguments_name_the_argument_and_the_valid_range(kwargs, message):
    X, y = regression(n=20)
    with pytest.raises((ValueError, TypeError)) as info:
        fit(linear(), "mse", (X, y), progress=False, **kwargs)
    assert message in str(info.value)


def test_bad_data_is_refused_at_the_boundary():
    X, y = regression(n=20)
    with pytest.raises(ValueError, match="same number of rows, got 20 and 19"):
        fit(linear(), "mse", (X, y[:-1]), progress=False)
    with pytest.raises(TypeError, match="non-numeric column"):
        frame = pd.DataFrame({"a": ["x"] * 20, "b": np.ones(20), "c": np.ones(20)})
        fit(linear(), "mse", (frame, y), progress=False)
    with pytest.raises(TypeError, match="descend.train.stream"):
        fit(linear(), "mse", "data.csv", progress=False)
    with pytest.raises(ValueError, match="integer class labels"):
        fit(nn.Linear(3, 2), "cross_entropy", (X.float(), y), progress=False)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        fit(lambda x: x, "mse", (X, y), progress=False)


def test_device_cpu_explicitly():
    X, y = regression(n=40)
    model = linear()
    res = fit(model, "mse", (X, y), device="cpu", epochs=2, seed=0, progress=False)
    assert next(model.parameters()).device.type == "cpu" and res.nit == 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_moves_model_and_batches_and_matches_cpu_closely():
    X, y = regression()
    cpu, gpu = linear(), linear()
    kw = {
        "optimizer": "adam",
        "lr": 0.05,
        "batch_size": 32,
        "epochs": 5,
        "seed": 0,
        "validation": 0.2,
        "progress": False,
    }
    fit(cpu, "mse", (X, y), **kw)
    res = fit(gpu, "mse", (X, y), device="cuda", **kw)
    assert next(gpu.parameters()).device.type == "cuda"
    torch.testing.assert_close(flat(gpu).cpu(), flat(cpu), rtol=1e-6, atol=1e-8)
    assert np.isfinite(res.epoch_history["val_loss"]).all()


def test_a_step_budget_ending_on_an_epoch_boundary_completes_that_epoch():
    X, y = regression(n=40)
    res = fit(
        linear(),
        "mse",
        (X, y),
        batch_size=10,
        epochs=10,
        max_steps=8,
        validation=(X, y),
        progress=False,
    )
    assert res.status == Status.MAX_ITER and res.nit == 8 and res.epoch == 2
    assert len(res.epoch_history) == 2 and np.isfinite(res.epoch_history["val_loss"]).all()


def test_nan_data_is_reported_at_the_first_step():
    X, y = regression(n=40)
    X[3, 1] = math.nan
    res = fit(linear(), "mse", (X, y), batch_size="full", progress=False)
    assert res.status == Status.DIVERGED
    assert "at the start, before any step: check the data" in res.message


def test_mistakes_at_the_boundary_name_the_argument(tmp_path):
    X, y = regression(n=20)
    with pytest.raises(
        ValueError, match=r"cannot take the data's rows: a batch X of shape \(20, 3\)"
    ):
        fit(nn.Linear(4, 1).double(), "mse", (X, y), progress=False)
    with pytest.raises(ValueError, match=r"device='nope' is not a torch device"):
        fit(linear(), "mse", (X, y), device="nope", progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"device='cuda' but CUDA is not available"):
            fit(linear(), "mse", (X, y), device="cuda", progress=False)
        with pytest.raises(ValueError, match=r"device='cuda' but CUDA is not available"):
            descend.minimize(lambda x: (x**2).sum(), [1.0], device="cuda")
    garbage = tmp_path / "model.ckpt"
    garbage.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"is not a descend.fit checkpoint.*could not be read"):
        fit(linear(), "mse", (X, y), resume=garbage, progress=False)
