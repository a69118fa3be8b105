"""lr_range_test takes a model's data as ``fit`` does: an (X, y) pair of tensors or NumPy
arrays, a Dataset, a DataLoader, with fit's batch_size and seed (the same batches as fit
draws), and the loss by name or as a callable; the function form is unchanged."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import descend
from descend.diagnostics import lr_range_test

SEED = 3
SWEEP = {"steps": 40, "end": 1.0, "batch_size": 32}  # 40 batches: within one epoch


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data / 16.0, data.target


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))


class Rows(Dataset):
    """A map-style Dataset of (x, y) items, read by index."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor) -> None:
        self.X, self.y = X, y

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i: int):
        return self.X[i], self.y[i]


def test_a_pair_numpy_a_dataset_and_a_loader_give_one_curve(digits, net):
    X_np, y_np = digits
    X, y = torch.tensor(X_np, dtype=torch.float32), torch.tensor(y_np)
    # fit's order for this seed: one permutation of the rows drawn from a generator
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(SEED)).tolist()
    loader = DataLoader(TensorDataset(X, y), batch_size=32, sampler=order)
    curves = {
        "pair": lr_range_test(net, "cross_entropy", (X, y), "adam", seed=SEED, **SWEEP),
        "numpy": lr_range_test(net, "cross_entropy", (X_np, y_np), "adam", seed=SEED, **SWEEP),
        "dataset": lr_range_test(net, "cross_entropy", Rows(X, y), "adam", seed=SEED, **SWEEP),
        "loader": lr_range_test(net, "cross_entropy", loader, "adam", seed=SEED, **SWEEP),
    }
    pair = curves.pop("pair")
    assert pair.seed == SEED and len(pair.losses) == SWEEP["steps"]
    for form, sweep in curves.items():
        np.testing.assert_array_equal(sweep.losses, pair.losses, err_msg=form)
    other = lr_range_test(net, "cross_entropy", (X, y), "adam", seed=SEED + 1, **SWEEP)
    assert not np.array_equal(other.losses, pair.losses)  # the seed orders the rows


def test_the_sweep_draws_the_batches_fit_draws_with_the_same_seed(digits, net):
    X, y = (torch.tensor(a) for a in digits)
    sweep = lr_range_test(net, "cross_entropy", (X, y), "gd", seed=SEED, **SWEEP)
    # the sweep's first loss is the second batch's after one step at the first rate: the
    # loss fit measures before its second step, at that rate, with that seed
    model = copy.deepcopy(net)
    fitted = descend.fit(
        model, "cross_entropy", (X, y), optimizer="gd", lr=float(sweep.lrs[0]), batch_size=32,
        seed=SEED, epochs=None, max_steps=2, monitors=None, progress=False,
    )  # fmt: skip
    assert fitted.history["loss"][1] == pytest.approx(sweep.losses[0], rel=1e-6)


def test_a_loss_by_name_and_by_callable_agree(digits, net):
    X, y = (torch.tensor(a) for a in digits)
    by_name = lr_range_test(net, "cross_entropy", (X.float(), y), "adam", seed=SEED, **SWEEP)
    for loss in (nn.functional.cross_entropy, nn.CrossEntropyLoss()):
        by_callable = lr_range_test(net, loss, (X.float(), y), "adam", seed=SEED, **SWEEP)
        np.testing.assert_allclose(by_callable.losses, by_name.losses, rtol=1e-6)
        assert by_callable.suggested_lr == by_name.suggested_lr


def test_full_batch_ignores_the_seed_and_needs_the_rows_at_hand(digits, net):
    X, y = (torch.tensor(a) for a in digits)
    full = {"steps": 20, "end": 1.0, "batch_size": "full"}
    one, two = (lr_range_test(net, "cross_entropy", (X, y), "gd", seed=s, **full) for s in (1, 2))
    np.testing.assert_array_equal(one.losses, two.losses)
    loader = DataLoader(TensorDataset(X.float(), y), batch_size=100)
    with pytest.raises(ValueError, match="batch_size='full'.*give the rows as \\(X, y\\)"):
        lr_range_test(net, "cross_entropy", loader, "gd", **full)


def test_bad_arguments_name_themselves(digits, net):
    X, y = digits
    with pytest.raises(ValueError, match="unknown loss 'cross_entrpy'"):
        lr_range_test(net, "cross_entrpy", (X, y), "gd", steps=10)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        lr_range_test(net, "cross_entropy", (X, y), "gd", batch_size=0, steps=10)
    with pytest.raises(TypeError, match="data is a path; stream files with"):
        lr_range_test(net, "cross_entropy", "rows.csv", "gd", steps=10)
    with pytest.raises(TypeError, match="data must be an \\(X, y\\) pair"):
        lr_range_test(net, "cross_entropy", 5, "gd", steps=10)
    with pytest.raises(TypeError, match="data must be re-iterable"):
        lr_range_test(net, "cross_entropy", iter([(X, y)]), "gd", steps=10)


def test_the_function_form_is_unchanged_and_refuses_model_arguments():
    def bowl(x):
        return (x**2).sum()

    sweep = lr_range_test(bowl, [3.0, -1.0], "gd", end=1.0, steps=30)
    # one gradient step at rate e from x: f(x - 2 e x) = (1 - 2 e)^2 f(x)
    assert sweep.losses[0] == pytest.approx((1 - 2 * sweep.lrs[0]) ** 2 * 10.0, rel=1e-6)
    assert sweep.seed is None
    with pytest.raises(ValueError, match="batch_size, seed are for models"):
        lr_range_test(bowl, [3.0], "gd", batch_size=8, seed=0)
