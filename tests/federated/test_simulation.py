"""Federated simulation: clients train by descend.fit on their shard, the server aggregates."""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from descend.federated import (
    Strategy,
    fedavgm,
    fedopt,
    fedprox,
    fedyogi,
    plot_rounds,
    simulate,
)
from descend.federated.clients import derive
from descend.federated.strategy import proximal_loss
from descend.train import fit
from descend.train.losses import get_loss


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)
    return (Xtr, ytr), (Xte, yte)


def mlp(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))


def run(digits, model=None, **kw):
    train, test = digits
    options = {
        "clients": 20, "rounds": 2, "local_epochs": 1, "local_batch_size": 16,
        "optimizer": "nesterov", "lr": 0.1, "test": test, "metric": "accuracy", "seed": 0,
    }  # fmt: skip
    return simulate(model or mlp(), "cross_entropy", train, **{**options, **kw})


def test_iid_fedavg_on_digits_with_20_clients_reaches_95_percent(digits):
    res = run(digits, rounds=8, local_epochs=5)
    assert res.strategy.name == "fedavg"
    assert res.test_metric >= 0.95
    assert sum(res.client_sizes) == len(digits[0][1]) and len(res.client_sizes) == 20
    h = res.history
    assert list(h["round"]) == list(range(1, 9)) and set(h["clients"]) == {20}
    assert h["test_metric"][-1] == res.test_metric
    params = sum(p.numel() for p in res.model.parameters())
    assert set(h["bytes"]) == {2 * 20 * 4 * params}


def test_the_same_seed_gives_a_bit_identical_global_model(digits):
    kw = {"partition": "dirichlet", "alpha": 0.3, "fraction": 0.5, "strategy": "fedprox"}
    first, second = run(digits, **kw), run(digits, **kw)
    for (name, a), b in zip(first.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert first.history["client_loss"].tolist() == second.history["client_loss"].tolist()
    other = run(digits, **{**kw, "seed": 1})
    assert not torch.equal(other.model[0].weight, first.model[0].weight)


def test_fedavg_is_the_row_weighted_mean_of_the_client_models(digits):
    """One round, two clients of unequal size: the global model is their weighted mean,
    each client trained exactly as descend.fit trains it alone."""
    (X, y), _ = digits
    parts = [torch.arange(0, 30), torch.arange(30, 100)]
    start = mlp()
    res = run(digits, model=mlp(), partition=parts, rounds=1, test=None, metric=None)

    alone = []
    for k, index in enumerate(parts):
        client = mlp()
        client.load_state_dict(start.state_dict())
        fit(client, "cross_entropy", (X[index], y[index]), optimizer="nesterov", lr=0.1,
            batch_size=16, epochs=1, seed=derive(0, 2, 1, k), progress=False,
            monitors=None)  # fmt: skip
        alone.append(client.state_dict())
    for name, value in res.model.state_dict().items():
        mean = (30 * alone[0][name] + 70 * alone[1][name]) / 100
        torch.testing.assert_close(value, mean, rtol=1e-5, atol=1e-6)


def test_server_optimizers_step_on_the_pseudo_gradient(digits):
    """FedAvgM's first round is FedAvg's scaled by the server lr (the momentum buffer
    starts as the first pseudo-gradient); FedAdam and any descend method run."""
    base = run(digits, rounds=1, test=None, metric=None)
    start = mlp()
    half = run(digits, rounds=1, strategy=fedavgm(0.9, server_lr=0.5), test=None, metric=None)
    for name, value in half.model.state_dict().items():
        expected = start.state_dict()[name] + 0.5 * (base.model.state_dict()[name]
                                                    - start.state_dict()[name])  # fmt: skip
        torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
    for strategy in ("fedadam", "fedadagrad", "fedavgm", fedopt("rmsprop", 1e-2)):
        res = run(digits, rounds=2, strategy=strategy)
        assert res.test_metric > 0.5, strategy


def test_fedyogi_takes_reddi_et_als_step_on_the_pseudo_gradient(digits):
    """One round: delta = w - mean(client models); m = 0.1 delta; v = v0 - 0.01 sign(v0 -
    delta^2) delta^2; w <- w - lr m / (sqrt(v) + tau) (Reddi et al. 2021, Algorithm 2)."""
    base = run(digits, rounds=1, test=None, metric=None)
    start = mlp().state_dict()
    strategy = fedyogi(server_lr=0.03, betas=(0.9, 0.99), eps=1e-3, initial_accumulator=1e-4)
    yogi = run(digits, rounds=1, strategy=strategy, test=None, metric=None)
    for name, value in yogi.model.state_dict().items():
        delta = start[name] - base.model.state_dict()[name]
        v = 1e-4 - 0.01 * torch.sign(1e-4 - delta**2) * delta**2
        expected = start[name] - 0.03 * (0.1 * delta) / (v.sqrt() + 1e-3)
        torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)


def test_fedprox_adds_the_proximal_term_to_the_client_loss():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    anchor = [torch.tensor([0.0, 0.0])]
    loss = proximal_loss(get_loss("mse"), [w], anchor, mu=0.5)
    pred, target = torch.zeros(3, 1), torch.zeros(3, 1)
    value = loss(pred, target)
    assert value.item() == pytest.approx(0.25 * 5.0)
    value.backward()
    torch.testing.assert_close(w.grad, 0.5 * w.detach())
    assert loss.target == "float" and loss.name == "mse+proximal"
    assert fedprox(0.1).mu == 0.1 and fedprox().server_optimizer == "gd"


@pytest.mark.parametrize(
    ("kw", "argument"),
    [
        ({"fraction": 0.0}, "fraction"),
        ({"fraction": 1.5}, "fraction"),
        ({"clients": 10_000}, "clients"),
        ({"partition": "dirichlet", "alpha": 0.0}, "alpha"),
        ({"partition": [torch.arange(5), torch.tensor([], dtype=torch.long)]}, "no rows"),
        ({"strategy": "fedsgd"}, "strategy"),
        ({"partition": "shards"}, "partition"),
        ({"rounds": 0}, "rounds"),
    ],
)
def test_bad_arguments_are_refused_by_name(digits, kw, argument):
    with pytest.raises(ValueError, match=argument):
        run(digits, **kw)


def test_a_strategy_checks_its_server():
    with pytest.raises(ValueError, match="unknown method"):
        Strategy("mine", server_optimizer="sgdx")
    with pytest.raises(ValueError, match="server_lr"):
        Strategy("mine", server_lr=0.0)
    with pytest.raises(ValueError, match="mu"):
        fedprox(-1.0)


def test_on_round_sees_each_history_row_and_plot_rounds_draws_them(digits, tmp_path):
    seen = []
    res = run(digits, rounds=2, fraction=0.25, on_round=seen.append)
    assert [row["round"] for row in seen] == [1, 2] and {row["clients"] for row in seen} == {5}
    assert [row["test_metric"] for row in seen] == res.history["test_metric"].tolist()
    fig = plot_rounds({"a": res}, tmp_path / "acc.png")
    assert fig.axes[0].lines[0].get_ydata().tolist() == res.history["test_metric"].tolist()
    assert (tmp_path / "acc.png").stat().st_size > 0
    with pytest.raises(ValueError, match="column"):
        plot_rounds({"a": res}, column="accuracy")


def test_a_run_resumed_from_its_checkpoint_ends_bit_identical(digits, tmp_path):
    kw = {"partition": "dirichlet", "alpha": 0.5, "fraction": 0.5, "strategy": "fedadam"}
    straight = run(digits, rounds=4, **kw)
    path = tmp_path / "fed.pt"
    run(digits, rounds=2, checkpoint=path, **kw)
    resumed = run(digits, rounds=4, checkpoint=path, resume=True, **kw)
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values()
    ):
        assert torch.equal(a, b), name
    for column in ("round", "clients", "client_loss", "test_loss", "test_metric", "bytes"):
        assert straight.history[column].tolist() == resumed.history[column].tolist(), column
    assert resumed.test_metric == straight.test_metric
    # a checkpoint of other settings is refused, naming them
    with pytest.raises(ValueError, match="seed=0 .now 1."):
        run(digits, rounds=4, resume=path, **{**kw, "seed": 1})
    with pytest.raises(ValueError, match="not a federated checkpoint"):
        torch.save({"format": "other"}, tmp_path / "x.pt")
        run(digits, resume=tmp_path / "x.pt")


def test_clients_in_two_processes_give_the_simulations_global_model(digits):
    """torch.distributed (gloo): this process and a worker each train half the clients;
    the global model is the one-process simulation's, to the bit."""
    kw = {"clients": 6, "rounds": 2, "fraction": 0.5, "strategy": "fedavgm",
          "partition": "dirichlet", "alpha": 0.5}  # fmt: skip
    alone = run(digits, **kw)
    split = run(digits, processes=2, **kw)
    for (name, a), b in zip(alone.model.state_dict().items(), split.model.state_dict().values()):
        assert torch.equal(a, b), name
    for column in ("clients", "client_loss", "test_loss", "test_metric", "bytes"):
        assert alone.history[column].tolist() == split.history[column].tolist(), column


def test_processes_refuse_a_loss_that_does_not_pickle(digits):
    train, _ = digits

    def local(prediction, target):
        return torch.nn.functional.cross_entropy(prediction, target.long())

    with pytest.raises(ValueError, match="pickle"):
        simulate(mlp(), local, train, clients=4, rounds=1, processes=2)
