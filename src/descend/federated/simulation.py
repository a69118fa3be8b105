"""Federated training simulated in one process: clients train in turn, the server
aggregates, every random choice drawn from one seed.

Each round the server samples a fraction of the clients; each sampled client starts from
the global model and trains on its own rows by ``descend.fit`` (its local epochs, batch
size and optimizer; FedProx's proximal term in its loss); the server then averages the
client models weighted by their rows and takes its strategy's step
(:mod:`descend.federated.strategy`). The same seed gives a bit-identical global model.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from descend.federated.checkpoint import check_config, load_round, save_round
from descend.federated.clients import ClientTraining, derive
from descend.federated.partition import (
    PARTITIONS,
    check_parts,
    dirichlet,
    iid,
    pathological,
)
from descend.federated.processes import ClientProcesses
from descend.federated.strategy import STRATEGIES, Strategy
from descend.result import History, Status
from descend.train.data import Converter
from descend.train.losses import Loss, get_loss, get_metric
from descend.validation import check_choice, check_int, check_number

__all__ = ["ROUND_COLUMNS", "FederatedResult", "score_model", "simulate"]

#: per-round history: clients sampled, their mean final training loss (weighted by rows;
#: FedProx's includes its proximal term), the global model's test loss and metric (NaN
#: without test data or metric), bytes sent both ways, seconds since the start
ROUND_COLUMNS = ("round", "clients", "client_loss", "test_loss", "test_metric", "bytes", "time")


@dataclass
class FederatedResult:
    """The outcome of :func:`simulate`.

    Attributes:
        model: the global model after the last round (the module that was passed in).
        history: per-round :class:`descend.History` (columns ``ROUND_COLUMNS``).
        strategy: the strategy used.
        parts: each client's row indices.
        rounds: rounds run; ``seed``: the seed used.
        test_loss, test_metric: the global model's on the test data after the last round.
    """

    model: nn.Module
    history: History = field(repr=False)
    strategy: Strategy
    parts: list[Tensor] = field(repr=False)
    rounds: int
    seed: int
    test_loss: float = math.nan
    test_metric: float = math.nan

    @property
    def client_sizes(self) -> list[int]:
        """Rows per client."""
        return [int(p.numel()) for p in self.parts]

    # what a run record reads (descend.runs.RunRecord.from_result), as of any descend run

    @property
    def status(self) -> Status:
        """A federated run always trains its budget of rounds: ``max_iter``."""
        return Status.MAX_ITER

    @property
    def method(self) -> str:
        """The strategy's name."""
        return self.strategy.name

    @property
    def fun(self) -> float:
        """The global model's test loss after the last round, or without test data the
        last round's client loss (weighted by rows)."""
        if not math.isnan(self.test_loss) or not len(self.history):
            return self.test_loss
        return float(self.history["client_loss"][-1])

    @property
    def nit(self) -> int:
        """Rounds run."""
        return self.rounds

    @property
    def message(self) -> str:
        return f"ran {self.rounds} rounds of {self.strategy.name} over {len(self.parts)} clients"


def simulate(
    model: nn.Module,
    loss: str | Callable[[Tensor, Tensor], Tensor],
    data: tuple[Any, Any],
    *,
    clients: int = 10,
    partition: str | Sequence[Any] = "iid",
    alpha: float = 0.5,
    classes_per_client: int = 2,
    strategy: str | Strategy = "fedavg",
    rounds: int = 10,
    fraction: float = 1.0,
    local_epochs: int = 1,
    local_batch_size: int | str = 32,
    optimizer: str = "gd",
    lr: float | None = None,
    test: tuple[Any, Any] | None = None,
    metric: str | Callable[[Tensor, Tensor], Tensor] | None = None,
    seed: int = 0,
    on_round: Callable[[dict[str, float]], None] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool | str | os.PathLike[str] | None = None,
    processes: int = 1,
    **client_options: Any,
) -> FederatedResult:
    """Train ``model`` by federated rounds over clients holding parts of ``data``.

    Args:
        model: the global model; trained in place (each client trains a copy of it).
        loss: a loss name of ``descend.fit`` or ``loss(prediction, target)``.
        data: the ``(X, y)`` rows the clients hold between them.
        clients: the number of clients K, 1 <= K <= rows.
        partition: ``"iid"``, ``"dirichlet"`` (label skew, ``alpha`` > 0),
            ``"pathological"`` (``classes_per_client`` shards of sorted labels each), or
            one sequence of row indices per client.
        strategy: a name of ``STRATEGIES`` (``fedavg``, ``fedavgm``, ``fedprox``,
            ``fedadam``, ``fedadagrad``) with its default options, or a
            :class:`~descend.federated.strategy.Strategy`.
        rounds: communication rounds, >= 1.
        fraction: the share of clients sampled each round, in (0, 1] (at least one).
        local_epochs, local_batch_size: each client's ``descend.fit`` epochs and batch size.
        optimizer, lr, **client_options: the clients' descend method and its options.
        test: ``(X, y)`` held by the server, scored after every round.
        metric: also score ``metric`` on ``test`` (``"accuracy"``, ``"mse"``, ...).
        seed: seeds the partition, the sampling of clients and every client's run.
        on_round: called after each round with its history row (``ROUND_COLUMNS``).
        checkpoint: a file the server's state is saved to after every round.
        resume: a checkpoint to continue from (``True``: ``checkpoint``, if that file
            exists); the run then ends bit-identical to one never stopped. ``rounds`` is
            the total: a run resumed after round r runs rounds r+1..``rounds``.
        processes: train the clients in this many processes on ``torch.distributed``
            (this one and ``processes - 1`` workers; the loss must pickle): the same
            global model as in one process, to the bit.

    Returns:
        :class:`FederatedResult`.

    Example:
        >>> labels = (y[:, 0] > 0).long()  # two classes
        >>> X_train, y_train, X_test, y_test = X[:48], labels[:48], X[48:], labels[48:]
        >>> res = simulate(nn.Linear(3, 2), "cross_entropy", (X_train, y_train), clients=4,
        ...                rounds=10, partition="dirichlet", alpha=0.1, strategy="fedprox",
        ...                lr=0.5, test=(X_test, y_test), metric="accuracy")
        >>> len(res.history["test_metric"]), sum(res.client_sizes)  # a row per round
        (10, 48)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    seed = check_int("seed", seed, low=0)
    rounds = check_int("rounds", rounds, low=1)
    fraction = check_number("fraction", fraction, low=0.0, low_open=True, high=1.0)
    local_epochs = check_int("local_epochs", local_epochs, low=1)
    processes = check_int("processes", processes, low=1)
    plan = _strategy(strategy)
    spec = get_loss(loss)
    params: list[Tensor] = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no parameters that require grad; nothing to train")
    converter = Converter(params[0].dtype, spec.target)
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError("data must be an (X, y) pair the clients split between them")
    X, y = converter.features(data[0], "data[0] (X)"), converter.targets(data[1], "data[1] (y)")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X and y must have the same rows, got {X.shape[0]} and {y.shape[0]}")
    parts = _partition(partition, y, clients, alpha, classes_per_client, derive(seed, 0))
    scoring = None
    if test is not None:
        scoring = (
            converter.features(test[0], "test[0] (X)"),
            converter.targets(test[1], "test[1] (y)"),
            get_metric(metric, spec)[1] if metric is not None else None,
        )
    server = plan.server(params)
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    sent = sum(v.numel() * v.element_size() for v in model.state_dict().values())
    sampled = max(1, round(fraction * len(parts)))
    history = History(columns=ROUND_COLUMNS, integer=("round", "clients", "bytes"))
    config = {
        "seed": seed, "rows": int(X.shape[0]), "clients": [int(p.numel()) for p in parts],
        "sampled": sampled, "strategy": repr(plan), "local_epochs": local_epochs,
        "local_batch_size": local_batch_size, "optimizer": optimizer, "lr": lr,
    }  # fmt: skip
    done, offset = 0, 0.0
    saved = _resume_state(resume, checkpoint)
    if saved is not None:
        check_config(saved["config"], config)
        model.load_state_dict(saved["model"])
        server.load_state_dict(saved["server"])
        history.load_state_dict(saved["history"])
        done, offset = saved["round"], float(history["time"][-1]) if len(history) else 0.0
    start = time.perf_counter() - offset
    scores = _last_scores(history)
    training = ClientTraining(
        spec, plan, X, y, parts, seed, sampled,
        {"optimizer": optimizer, "lr": lr, "batch_size": local_batch_size,
         "epochs": local_epochs, **client_options},
    )  # fmt: skip
    group = (
        ClientProcesses(processes, training, model, done + 1, rounds)
        if processes > 1 and rounds > done
        else contextlib.nullcontext()
    )
    with group:
        for r in range(done + 1, rounds + 1):
            if isinstance(group, ClientProcesses):
                updates = group.train(model, r)
            else:
                updates = training.train(model, r, training.chosen(r))
            _aggregate(model, server, names, [u[1] for u in updates], [u[2] for u in updates])
            if scoring is not None:
                scores = score_model(model, spec, *scoring)
            weights = np.asarray([u[2] for u in updates], dtype=np.float64)
            losses = np.asarray([u[3] for u in updates], dtype=np.float64)
            row = (
                r, len(updates), float(np.dot(weights, losses) / weights.sum()), *scores,
                2 * sent * len(updates), time.perf_counter() - start,
            )  # fmt: skip
            history.append(row)
            if checkpoint is not None:
                save_round(checkpoint, {
                    "round": r, "config": config, "model": model.state_dict(),
                    "server": server.state_dict(), "history": history.state_dict(),
                })  # fmt: skip
            if on_round is not None:
                on_round(dict(zip(ROUND_COLUMNS, row)))
    return FederatedResult(model, history, plan, parts, max(rounds, done), seed, *scores)


# -- pieces -------------------------------------------------------------------------------


def _resume_state(resume: Any, checkpoint: Any) -> dict[str, Any] | None:
    if resume is None or resume is False:
        return None
    if resume is True:
        if checkpoint is None:
            raise ValueError("resume=True needs checkpoint= (the file to resume from)")
        return load_round(checkpoint) if os.path.exists(checkpoint) else None
    return load_round(resume)


def _last_scores(history: History) -> tuple[float, float]:
    if not len(history):
        return math.nan, math.nan
    return float(history["test_loss"][-1]), float(history["test_metric"][-1])


def _strategy(strategy: str | Strategy) -> Strategy:
    if isinstance(strategy, Strategy):
        return strategy
    name = check_choice("strategy", str(strategy).lower(), tuple(STRATEGIES))
    return STRATEGIES[name]()


def _partition(
    partition: str | Sequence[Any],
    y: Tensor,
    clients: int,
    alpha: float,
    classes_per_client: int,
    seed: int,
) -> list[Tensor]:
    if not isinstance(partition, str):
        return check_parts(partition, int(y.shape[0]))
    name = check_choice("partition", partition.lower(), PARTITIONS)
    if name == "iid":
        return iid(int(y.shape[0]), clients, seed=seed)
    if name == "dirichlet":
        return dirichlet(y, clients, alpha, seed=seed)
    return pathological(y, clients, classes_per_client, seed=seed)


@torch.no_grad()
def _aggregate(
    model: nn.Module,
    server: torch.optim.Optimizer,
    names: list[str],
    states: list[dict[str, Tensor]],
    sizes: list[int],
) -> None:
    """Row-weighted mean of the client states; the server's step on the parameters'
    pseudo-gradient ``w - mean``, the buffers set to their mean."""
    weights = torch.tensor(sizes, dtype=torch.float64)
    weights = weights / weights.sum()
    own = model.state_dict()
    trained = dict(model.named_parameters())
    for key, value in own.items():
        if not value.is_floating_point():
            continue
        stacked = torch.stack([s[key] for s in states])
        mean = torch.tensordot(weights.to(value.dtype), stacked, dims=1)
        if key in names:
            trained[key].grad = trained[key].detach() - mean
        else:
            value.copy_(mean)
    server.step()
    server.zero_grad(set_to_none=True)


@torch.no_grad()
def score_model(
    model: nn.Module, spec: Loss, X: Tensor, y: Tensor, metric: Callable | None
) -> tuple[float, float]:
    """``model``'s loss and ``metric`` (NaN without one) on ``(X, y)`` in eval mode."""
    was_training = model.training
    model.eval()
    out = model(X)
    scores = float(spec(out, y)), (float(metric(out, y)) if metric is not None else math.nan)
    model.train(was_training)
    return scores
