r"""Federated strategies: how the server turns the clients' models into the next global
model, and what a client adds to its local loss.

Every strategy is one rule (Reddi et al. 2021, "Adaptive Federated Optimization"): the
server averages the client models weighted by their rows,
:math:`\bar w = \sum_k n_k w_k / \sum_k n_k`, and takes one step of a descend optimizer on
the pseudo-gradient :math:`\Delta = w - \bar w`:

* FedAvg (McMahan et al. 2017): ``gd`` with server lr 1, so :math:`w \leftarrow \bar w`.
* FedAvgM (Hsu et al. 2019): ``momentum`` (server momentum :math:`\beta`, server lr).
* FedAdam, FedYogi, FedAdagrad: ``adam``, ``yogi``, ``adagrad`` as the server optimizer;
  :func:`fedopt` takes any descend method.
* FedProx (Li et al. 2020): FedAvg's server, and each client minimizes its loss plus
  :math:`\frac{\mu}{2}\|w - w_{\text{global}}\|^2` (:func:`proximal_loss`).

Example:
    >>> STRATEGIES["fedadam"](server_lr=0.01)
    Strategy(name='fedadam', server_optimizer='adam', server_lr=0.01, ...)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from descend.methods import get_method
from descend.train.losses import Loss
from descend.validation import check_non_negative, check_positive

__all__ = [
    "STRATEGIES",
    "Strategy",
    "fedadagrad",
    "fedadam",
    "fedavg",
    "fedavgm",
    "fedopt",
    "fedprox",
    "fedyogi",
    "proximal_loss",
]


@dataclass(frozen=True)
class Strategy:
    """A server optimizer on the pseudo-gradient, and the clients' proximal strength.

    Attributes:
        name: what the strategy is called in tables.
        server_optimizer: a descend method name (``gd``, ``momentum``, ``adam``, ...).
        server_lr: the server's learning rate, > 0.
        server_options: the server optimizer's other options (``momentum``, ``betas``).
        mu: FedProx's proximal strength >= 0 (0: none).
    """

    name: str
    server_optimizer: str = "gd"
    server_lr: float = 1.0
    server_options: dict[str, Any] = field(default_factory=dict)
    mu: float = 0.0

    def __post_init__(self) -> None:
        get_method(self.server_optimizer)
        check_positive("server_lr", self.server_lr)
        check_non_negative("mu", self.mu)

    def server(self, params: list[Tensor]) -> torch.optim.Optimizer:
        """The server optimizer over the global model's parameters."""
        method = get_method(self.server_optimizer)
        return method.build(params, {**self.server_options, "lr": self.server_lr})


def fedavg() -> Strategy:
    """FedAvg: the next global model is the row-weighted mean of the client models."""
    return Strategy("fedavg")


def fedavgm(server_momentum: float = 0.9, server_lr: float = 1.0) -> Strategy:
    """FedAvg with server momentum: :math:`v \\leftarrow \\beta v + \\Delta`,
    :math:`w \\leftarrow w - \\eta v`."""
    return Strategy("fedavgm", "momentum", server_lr, {"momentum": server_momentum})


def fedprox(mu: float = 0.01) -> Strategy:
    """FedProx: FedAvg's server; clients add :math:`\\frac{\\mu}{2}\\|w - w_g\\|^2`."""
    return Strategy("fedprox", mu=check_positive("mu", mu))


def fedadam(
    server_lr: float = 1e-2, betas: tuple[float, float] = (0.9, 0.99), eps: float = 1e-3
) -> Strategy:
    """FedAdam: Adam on the pseudo-gradient (Reddi et al.'s τ is ``eps``)."""
    return Strategy("fedadam", "adam", server_lr, {"betas": betas, "eps": eps})


def fedyogi(
    server_lr: float = 1e-2,
    betas: tuple[float, float] = (0.9, 0.99),
    eps: float = 1e-3,
    initial_accumulator: float = 1e-6,
) -> Strategy:
    """FedYogi: Yogi on the pseudo-gradient, :math:`v \\leftarrow v - (1-\\beta_2)
    \\operatorname{sign}(v - \\Delta^2)\\Delta^2` (Reddi et al.'s τ is ``eps``, their
    :math:`v_{-1} \\ge \\tau^2` is ``initial_accumulator``)."""
    options = {"betas": betas, "eps": eps, "initial_accumulator": initial_accumulator}
    return Strategy("fedyogi", "yogi", server_lr, options)


def fedadagrad(server_lr: float = 1e-1, eps: float = 1e-3) -> Strategy:
    """FedAdagrad: AdaGrad on the pseudo-gradient."""
    return Strategy("fedadagrad", "adagrad", server_lr, {"eps": eps})


def fedopt(server_optimizer: str, server_lr: float, **server_options: Any) -> Strategy:
    """Any descend method as the server optimizer on the pseudo-gradient."""
    name = get_method(server_optimizer).name
    return Strategy(f"fedopt-{name}", name, server_lr, server_options)


#: strategies by name, each a factory taking its own options
STRATEGIES: dict[str, Callable[..., Strategy]] = {
    "fedavg": fedavg,
    "fedavgm": fedavgm,
    "fedprox": fedprox,
    "fedadam": fedadam,
    "fedyogi": fedyogi,
    "fedadagrad": fedadagrad,
}


def proximal_loss(loss: Loss, params: list[Tensor], anchor: list[Tensor], mu: float) -> Loss:
    r"""``loss`` plus :math:`\frac{\mu}{2}\sum_i \|w_i - a_i\|^2` over ``params``: the
    FedProx client objective, with ``anchor`` the global model the round started from."""

    def penalized(prediction: Tensor, target: Tensor) -> Tensor:
        gap = sum(((w - a) ** 2).sum() for w, a in zip(params, anchor))
        return loss.fn(prediction, target) + 0.5 * mu * gap

    return Loss(penalized, f"{loss.name}+proximal", loss.target, loss.logits)
