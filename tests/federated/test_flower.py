"""The Flower adapter: descend's clients under Flower's own server rules give the
simulation's global model (Flower's FedAvg, FedProx, FedAvgM and FedYogi aggregate)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

flwr = pytest.importorskip("flwr")

from flwr.common import Code, FitRes, Status, ndarrays_to_parameters  # noqa: E402
from flwr.common import parameters_to_ndarrays as arrays  # noqa: E402

from descend.federated import fedavgm, fedopt, fedprox, fedyogi, simulate  # noqa: E402
from descend.federated.flower import (  # noqa: E402
    FlowerClient,
    flower_strategy,
    state_arrays,
    weighted_metrics,
)

OPTIONS = {"local_epochs": 1, "local_batch_size": 16, "optimizer": "momentum", "lr": 0.1}


@pytest.fixture(scope="module")
def rows():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(120, 5, generator=gen)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).long() + (X[:, 2] > 1).long()
    return X, y


def mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))


def flower_rounds(rows, parts, strategy, rounds):
    """Each client's FlowerClient.fit, then Flower's aggregate_fit, ``rounds`` times."""
    server = flower_strategy(strategy, mlp())
    clients = [
        FlowerClient(mlp(), "cross_entropy", (rows[0][p], rows[1][p]), number=k, seed=3, **OPTIONS)
        for k, p in enumerate(parts)
    ]
    parameters = server.initial_parameters
    for r in range(1, rounds + 1):
        config = server.on_fit_config_fn(r)
        if hasattr(server, "proximal_mu"):
            config["proximal_mu"] = server.proximal_mu
        results = []
        for client in clients:
            new, n, metrics = client.fit(arrays(parameters), config)
            ok = Status(code=Code.OK, message="")
            results.append((None, FitRes(ok, ndarrays_to_parameters(new), n, metrics)))
        parameters, _ = server.aggregate_fit(r, results, [])
    return arrays(parameters)


@pytest.mark.parametrize(
    "strategy",
    ["fedavg", fedprox(mu=0.5), fedavgm(0.9, server_lr=0.7), fedyogi(0.05, initial_accumulator=0)],
    ids=["fedavg", "fedprox", "fedavgm", "fedyogi"],
)
def test_flower_server_rules_give_the_simulations_global_model(rows, strategy):
    reference = simulate(mlp(), "cross_entropy", rows, clients=3, strategy=strategy, rounds=2,
                         seed=3, **OPTIONS)  # fmt: skip
    flower = flower_rounds(rows, reference.parts, strategy, rounds=2)
    for ours, theirs in zip(state_arrays(reference.model), flower, strict=True):
        np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-5)


def test_a_proximal_mu_from_the_server_changes_the_local_run(rows):
    client = FlowerClient(mlp(), "cross_entropy", rows, number=0, **OPTIONS)
    start = state_arrays(mlp())
    plain, n, metrics = client.fit(start, {"server_round": 1})
    prox, _, _ = client.fit(start, {"server_round": 1, "proximal_mu": 10.0})
    assert n == 120 and metrics["loss"] > 0
    drift = lambda new: sum(float(np.sum((a - b) ** 2)) for a, b in zip(new, start))  # noqa: E731
    assert drift(prox) < drift(plain)


def test_evaluate_scores_the_servers_model_on_the_clients_rows(rows):
    client = FlowerClient(mlp(), "cross_entropy", rows, number=1, metric="accuracy")
    model = mlp()
    loss, n, metrics = client.evaluate(state_arrays(model), {})
    with torch.no_grad():
        out = model(rows[0])
    assert loss == pytest.approx(float(torch.nn.functional.cross_entropy(out, rows[1])))
    assert metrics["metric"] == pytest.approx(float((out.argmax(1) == rows[1]).float().mean()))
    assert n == 120


def test_client_metrics_are_averaged_weighted_by_rows():
    assert weighted_metrics([(1, {"loss": 4.0}), (3, {"loss": 0.0, "metric": 0.5})]) == {
        "loss": 1.0,
        "metric": 0.5,
    }


def test_rules_without_a_flower_counterpart_and_bad_parameters_are_refused(rows):
    with pytest.raises(ValueError, match="fedopt-rmsprop.*no Flower counterpart"):
        flower_strategy(fedopt("rmsprop", 0.01), mlp())
    client = FlowerClient(mlp(), "cross_entropy", rows, number=0)
    with pytest.raises(ValueError, match="parameters has 1 arrays.*4"):
        client.fit([np.zeros(3)], {})
    with pytest.raises(ValueError, match="number"):
        FlowerClient(mlp(), "cross_entropy", rows, number=-1)
