"""The clients' side of a round: which clients the round samples, and their local
training, each a ``descend.fit`` on the client's rows from the global model.

What a client does depends only on the global model, the round and the client's number
(every seed is derived from the run's seed and those), so any process holding a
:class:`ClientTraining` trains a client to the same bits: the simulation trains them in
turn, the multi-process mode splits them among processes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from descend.federated.strategy import Strategy, proximal_loss
from descend.train import fit
from descend.train.losses import Loss

__all__ = ["ClientTraining", "ClientUpdate", "derive"]

#: what one client sends back: its number, its model's state, its rows and its final
#: training loss
ClientUpdate = tuple[int, dict[str, Tensor], int, float]


@dataclass
class ClientTraining:
    """Everything a process needs to train any client of any round.

    Attributes:
        loss: the clients' loss; ``strategy``: its ``mu`` adds FedProx's proximal term.
        X, y: all clients' rows; ``parts``: each client's row indices.
        seed: the run's seed; ``sampled``: clients per round.
        fit_options: ``descend.fit`` arguments of every client (optimizer, lr,
            batch_size, epochs, the optimizer's options).
    """

    loss: Loss
    strategy: Strategy
    X: Tensor
    y: Tensor
    parts: list[Tensor]
    seed: int
    sampled: int
    fit_options: dict[str, Any]

    def chosen(self, round_: int) -> list[int]:
        """The clients round ``round_`` samples, in increasing order."""
        draw = torch.Generator().manual_seed(derive(self.seed, 1, round_))
        order = torch.randperm(len(self.parts), generator=draw)[: self.sampled]
        return order.sort().values.tolist()

    def train(self, model: nn.Module, round_: int, clients: list[int]) -> list[ClientUpdate]:
        """Each of ``clients`` trained from ``model`` (left unchanged) in round ``round_``."""
        return [self.train_client(model, round_, k, self.parts[k]) for k in clients]

    def train_client(self, model: nn.Module, round_: int, k: int, rows: Tensor) -> ClientUpdate:
        """Client ``k`` trained from ``model`` (left unchanged) on ``rows`` of X and y in
        round ``round_``; its seed depends on the run's seed, the round and ``k`` only."""
        anchor = [p.detach() for p in model.parameters() if p.requires_grad]
        client = copy.deepcopy(model)
        result = fit(
            client, self._loss(client, anchor), (self.X[rows], self.y[rows]),
            seed=derive(self.seed, 2, round_, k), progress=False, monitors=None,
            distributed=False,  # a client trains alone, even inside the clients' group
            **self.fit_options,
        )  # fmt: skip
        return k, client.state_dict(), int(rows.numel()), float(result.fun)

    def _loss(self, client: nn.Module, anchor: list[Tensor]) -> Loss:
        if self.strategy.mu == 0:
            return self.loss
        own: list[Tensor] = [p for p in client.parameters() if p.requires_grad]
        return proximal_loss(self.loss, own, anchor, self.strategy.mu)


def derive(seed: int, *stream: int) -> int:
    """An independent seed for one use of a federated run's seed."""
    return int(np.random.SeedSequence([seed, *stream]).generate_state(1, np.uint32)[0])
