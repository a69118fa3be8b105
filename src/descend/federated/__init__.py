"""Federated learning simulated in one process: clients train locally by ``descend.fit``
on their shard, a server aggregates (FedAvg, FedAvgM, FedProx, FedAdam, FedAdagrad, or any
descend optimizer on the pseudo-gradient).

* :mod:`~descend.federated.partition`: :func:`iid`, :func:`dirichlet`,
  :func:`pathological` and :func:`label_counts`.
* :mod:`~descend.federated.strategy`: :class:`Strategy`, :data:`STRATEGIES`, :func:`fedopt`.
* :mod:`~descend.federated.simulation`: :func:`simulate` and :class:`FederatedResult`.
* :mod:`~descend.federated.plots`: :func:`plot_partition` (labels per client) and
  :func:`plot_rounds` (test score per round of several runs).

Example:
    >>> from descend.federated import simulate
    >>> res = simulate(net, "cross_entropy", (X, y), clients=20, rounds=20,
    ...                test=(X_test, y_test), metric="accuracy", seed=0)
    >>> res.test_metric
"""

from descend.federated.partition import PARTITIONS, dirichlet, iid, label_counts, pathological
from descend.federated.plots import plot_partition, plot_rounds
from descend.federated.simulation import ROUND_COLUMNS, FederatedResult, simulate
from descend.federated.strategy import (
    STRATEGIES,
    Strategy,
    fedadagrad,
    fedadam,
    fedavg,
    fedavgm,
    fedopt,
    fedprox,
    fedyogi,
    proximal_loss,
)

__all__ = [
    "PARTITIONS",
    "ROUND_COLUMNS",
    "STRATEGIES",
    "FederatedResult",
    "Strategy",
    "dirichlet",
    "fedadagrad",
    "fedadam",
    "fedavg",
    "fedavgm",
    "fedopt",
    "fedprox",
    "fedyogi",
    "iid",
    "label_counts",
    "pathological",
    "plot_partition",
    "plot_rounds",
    "proximal_loss",
    "simulate",
]
