"""Flower adapter: a descend client as a Flower ``NumPyClient`` and descend's strategies as
Flower's, so the client code of a simulation moves into a Flower deployment unchanged.

A client trains exactly as in :func:`~descend.federated.simulate`: ``descend.fit`` on its
rows from the global model, its seed derived from the run's seed, the round and its
number, FedProx's proximal term when the server asks for one (Flower's ``FedProx``
sends ``proximal_mu`` in the fit config). The parameters travel as the NumPy arrays of
the model's ``state_dict``, in its order (buffers included: batch-norm statistics are
averaged like weights, as the simulation does).

Server rules: :func:`flower_strategy` builds Flower's own strategy for a descend one.
FedAvg, FedProx and FedAvgM are the same arithmetic as the simulation's (up to float
rounding of the weighted mean). Flower's FedYogi starts its second moment at 0, so it is
descend's ``fedyogi(initial_accumulator=0)``; Flower's FedAdam corrects the bias with
the round number plus one and FedAdagrad keeps a first moment: they follow the same
paper (Reddi et al. 2021) but not descend's step to the bit.

Needs the ``flower`` extra: ``pip install 'descend[flower]'``.

Example:
    >>> k = 3
    >>> X_k, y_k = X[16 * k : 16 * (k + 1)], (y[16 * k : 16 * (k + 1), 0] > 0).long()
    >>> client = FlowerClient(nn.Linear(3, 2), "cross_entropy", (X_k, y_k), number=k, seed=0,
    ...                       local_epochs=2, optimizer="momentum", lr=0.05)
    >>> arrays, rows, metrics = client.fit(client.get_parameters({}), {"server_round": 1})
    >>> rows, sorted(metrics)  # what the server gets back: weights, rows, the loss
    (16, ['loss'])

    In a deployment, Flower calls ``fit`` (needs a running server, so not run here):

    >>> import flwr
    >>> flwr.client.start_client(server_address="...", client=client.to_client())  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from descend.extras import require
from descend.federated.clients import ClientTraining
from descend.federated.simulation import score_model
from descend.federated.strategy import STRATEGIES, Strategy
from descend.train.data import Converter
from descend.train.losses import get_loss, get_metric
from descend.validation import check_choice, check_int

require("flwr", "flower", feature="descend.federated.flower")  # one line if it is missing

from flwr.client import NumPyClient  # noqa: E402
from flwr.common import Scalar, ndarrays_to_parameters  # noqa: E402
from flwr.server import strategy as flower_strategies  # noqa: E402

__all__ = ["FlowerClient", "flower_strategy", "state_arrays", "weighted_metrics"]


def state_arrays(model: nn.Module) -> list[np.ndarray]:
    """The model's ``state_dict`` values as NumPy arrays, in its order: what Flower sends."""
    return [value.detach().cpu().numpy().copy() for value in model.state_dict().values()]


def _load_arrays(model: nn.Module, arrays: list[np.ndarray]) -> None:
    state = model.state_dict()
    if len(arrays) != len(state):
        raise ValueError(
            f"parameters has {len(arrays)} arrays but the model's state_dict has {len(state)}"
        )
    model.load_state_dict(
        {key: torch.as_tensor(a, dtype=v.dtype) for (key, v), a in zip(state.items(), arrays)}
    )


class FlowerClient(NumPyClient):
    """One client's rows and local training, answering Flower's ``fit`` and ``evaluate``.

    Args:
        model: the client's copy of the global model's architecture; its weights are
            replaced by the server's at every ``fit``/``evaluate``.
        loss: a loss name of ``descend.fit`` or ``loss(prediction, target)``.
        data: this client's ``(X, y)`` rows.
        number: the client's number k >= 0 (seeds its runs, as in the simulation).
        seed: the federated run's seed.
        local_epochs, local_batch_size, optimizer, lr, **client_options: the local
            ``descend.fit`` run, as in :func:`~descend.federated.simulate`.
        mu: FedProx's proximal strength when the server does not send ``proximal_mu``.
        metric: also reported by ``evaluate`` (``"accuracy"``, ...).
    """

    def __init__(
        self,
        model: nn.Module,
        loss: str | Callable[[Tensor, Tensor], Tensor],
        data: tuple[Any, Any],
        *,
        number: int,
        seed: int = 0,
        local_epochs: int = 1,
        local_batch_size: int | str = 32,
        optimizer: str = "gd",
        lr: float | None = None,
        mu: float = 0.0,
        metric: str | Callable[[Tensor, Tensor], Tensor] | None = None,
        **client_options: Any,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.number = check_int("number", number, low=0)
        spec = get_loss(loss)
        dtype = next(model.parameters()).dtype
        converter = Converter(dtype, spec.target)
        X, y = converter.features(data[0], "data[0] (X)"), converter.targets(data[1], "data[1] (y)")
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"X and y must have the same rows, got {X.shape[0]} and {y.shape[0]}")
        self.rows = torch.arange(X.shape[0])
        self.metric = get_metric(metric, spec)[1] if metric is not None else None
        options = {
            "optimizer": optimizer,
            "lr": lr,
            "batch_size": local_batch_size,
            "epochs": check_int("local_epochs", local_epochs, low=1),
            **client_options,
        }
        seed = check_int("seed", seed, low=0)
        self.training = ClientTraining(
            spec, Strategy("client", mu=mu), X, y, [self.rows], seed, 1, options
        )

    def get_parameters(self, config: dict[str, Any]) -> list[np.ndarray]:
        """The model's current state as arrays."""
        return state_arrays(self.model)

    def fit(
        self, parameters: list[np.ndarray], config: dict[str, Any]
    ) -> tuple[list[np.ndarray], int, dict[str, Scalar]]:
        """Train from the server's ``parameters`` in round ``config["server_round"]``
        (1 when absent); return the trained state, the rows and the final loss."""
        _load_arrays(self.model, parameters)
        training = self.training
        if "proximal_mu" in config:
            strategy = replace(training.strategy, mu=float(config["proximal_mu"]))
            training = replace(training, strategy=strategy)
        round_ = int(config.get("server_round", 1))
        _, state, rows, loss = training.train_client(self.model, round_, self.number, self.rows)
        self.model.load_state_dict(state)
        return state_arrays(self.model), rows, {"loss": loss}

    def evaluate(
        self, parameters: list[np.ndarray], config: dict[str, Any]
    ) -> tuple[float, int, dict[str, Scalar]]:
        """The server's model scored on this client's rows: loss, rows, and the metric."""
        _load_arrays(self.model, parameters)
        loss, metric = score_model(
            self.model, self.training.loss, self.training.X, self.training.y, self.metric
        )
        return loss, int(self.rows.numel()), ({} if math.isnan(metric) else {"metric": metric})


def weighted_metrics(results: list[tuple[int, dict[str, float]]]) -> dict[str, float]:
    """The clients' metrics (their losses, accuracies) averaged weighted by their rows,
    as the simulation's history averages the client losses."""
    total = sum(n for n, _ in results)
    names = {name for _, metrics in results for name in metrics}
    return (
        {
            name: sum(n * float(m[name]) for n, m in results if name in m)
            / sum(n for n, m in results if name in m)
            for name in sorted(names)
        }
        if total
        else {}
    )


def flower_strategy(
    strategy: str | Strategy,
    model: nn.Module,
    *,
    fraction: float = 1.0,
    min_clients: int = 2,
    **flower_options: Any,
) -> Any:
    """Flower's strategy for a descend one, starting from ``model``'s weights, sending each
    client the round number (so it seeds its run as the simulation does).

    Args:
        strategy: a name of ``STRATEGIES`` or a :class:`Strategy` from one of its
            factories (``fedopt`` rules have no Flower counterpart).
        model: the global model; its state is the initial parameters.
        fraction: the share of available clients sampled each round (Flower's
            ``fraction_fit``).
        min_clients: Flower's ``min_fit_clients`` and ``min_available_clients``.
        **flower_options: passed to Flower's strategy (``evaluate_fn``, ...).
    """
    if isinstance(strategy, str):
        strategy = STRATEGIES[check_choice("strategy", strategy.lower(), tuple(STRATEGIES))]()
    options = strategy.server_options
    common = {
        "fraction_fit": fraction,
        "min_fit_clients": min_clients,
        "min_available_clients": min_clients,
        "initial_parameters": ndarrays_to_parameters(state_arrays(model)),
        "on_fit_config_fn": lambda server_round: {"server_round": server_round},
        "fit_metrics_aggregation_fn": weighted_metrics,
        "evaluate_metrics_aggregation_fn": weighted_metrics,
        **flower_options,
    }
    betas = options.get("betas", (0.9, 0.99))
    adaptive = {"eta": strategy.server_lr, "tau": options.get("eps", 1e-3)}
    moments = {"beta_1": betas[0], "beta_2": betas[1]}
    counterparts: dict[str, tuple[str, dict[str, Any]]] = {
        "fedavg": ("FedAvg", {}),
        "fedprox": ("FedProx", {"proximal_mu": strategy.mu}),
        "fedavgm": (
            "FedAvgM",
            {
                "server_learning_rate": strategy.server_lr,
                "server_momentum": options.get("momentum", 0.0),
            },
        ),
        "fedadam": ("FedAdam", {**adaptive, **moments}),
        "fedyogi": ("FedYogi", {**adaptive, **moments}),
        "fedadagrad": ("FedAdagrad", adaptive),
    }
    if strategy.name not in counterparts:
        raise ValueError(
            f"strategy {strategy.name!r} has no Flower counterpart; "
            f"use one of {', '.join(counterparts)}"
        )
    name, own = counterparts[strategy.name]
    return getattr(flower_strategies, name)(**own, **common)
