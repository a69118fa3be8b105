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
    >>> labels = (y[:, 0] > 0).long()  # two classes
    >>> X_train, y_train, X_test, y_test = X[:48], labels[:48], X[48:], labels[48:]
    >>> res = simulate(nn.Linear(3, 2), "cross_entropy", (X_train, y_train), clients=4,
    ...                rounds=10, lr=0.5, test=(X_test, y_test), metric="accuracy", seed=0)
    >>> res.test_metric > 0.8  # the global model's accuracy on the held-out rows
    True
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
