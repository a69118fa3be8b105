"""Clients trained in several processes on ``torch.distributed``: this process is rank 0
(the server, and a client group of its own), each worker another client group.

Each round rank 0 broadcasts the global model; every rank trains its share of the round's
clients (client ``chosen[i]`` on rank ``i mod processes``) with :class:`ClientTraining`;
rank 0 gathers the updates and puts them in client order, so the server aggregates exactly
what the one-process simulation aggregates: the same global model, to the bit. The
processes meet through a file store in a temporary folder (gloo backend, no network
port); the workers use as many intra-op threads as this process, as kernels may round
differently with another number of threads.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from descend.distributed.teardown import exit_when_done
from descend.federated.clients import ClientTraining, ClientUpdate

__all__ = ["ClientProcesses"]

#: how long a process waits for the others at a meeting point before it gives up
TIMEOUT = timedelta(minutes=10)


class ClientProcesses:
    """A context: ``processes - 1`` worker processes and this one in a process group, for
    rounds ``first..last``; :meth:`train` trains a round's clients among them.

    Example:
        >>> with ClientProcesses(2, training, model, 1, 10) as group:  # doctest: +SKIP
        ...     updates = group.train(model, 1)

        (Skipped here: it starts a worker process; ``simulate(..., processes=2)`` runs it.)
    """

    def __init__(
        self, processes: int, training: ClientTraining, model: nn.Module, first: int, last: int
    ) -> None:
        if dist.is_available() and dist.is_initialized():
            raise ValueError(
                "processes > 1 starts its own torch.distributed process group, but this "
                "process already has one; run the simulation with processes=1 here"
            )
        self.processes, self.training = processes, training
        self.model, self.first, self.last = model, first, last
        self._folder: str | None = None
        self._workers: Any = None

    def __enter__(self) -> ClientProcesses:
        import torch.multiprocessing as mp

        self._folder = tempfile.mkdtemp(prefix="descend-federated-")
        store = f"file://{os.path.join(self._folder, 'store')}"
        args = (self.processes, store, self.training, self.model, self.first, self.last,
                torch.get_num_threads())  # fmt: skip
        try:
            self._workers = mp.spawn(_worker, args=args, nprocs=self.processes - 1, join=False)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            shutil.rmtree(self._folder, ignore_errors=True)
            raise ValueError(
                f"processes={self.processes} sends the model and the loss to worker processes "
                f"by pickle, which failed ({exc}); give the loss by name or as a function "
                "defined at a module's top level, or use processes=1"
            ) from None
        dist.init_process_group(
            "gloo", init_method=store, rank=0, world_size=self.processes, timeout=TIMEOUT
        )
        return self

    def train(self, model: nn.Module, round_: int) -> list[ClientUpdate]:
        """Round ``round_``'s clients trained from ``model``, their updates in client order."""
        shared = [model.state_dict()]
        dist.broadcast_object_list(shared, src=0)
        mine = self.training.chosen(round_)[0 :: self.processes]
        gathered: list[Any] = [None] * self.processes
        dist.gather_object(self.training.train(model, round_, mine), gathered, dst=0)
        return sorted((u for part in gathered for u in part), key=lambda u: u[0])

    def __exit__(self, *exc: Any) -> None:
        try:
            if dist.is_initialized():
                if exc[0] is None:  # the workers wait there too: see _worker
                    dist.barrier()
                dist.destroy_process_group()
            if self._workers is not None:
                while not self._workers.join():
                    pass
        finally:
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)


def _worker(
    index: int,
    processes: int,
    store: str,
    training: ClientTraining,
    model: nn.Module,
    first: int,
    last: int,
    threads: int,
) -> None:
    """Rank ``index + 1``: each round, the global model from rank 0, then this rank's
    share of the clients trained and sent back."""
    torch.set_num_threads(threads)
    rank = index + 1
    dist.init_process_group(
        "gloo", init_method=store, rank=rank, world_size=processes, timeout=TIMEOUT
    )
    try:
        for round_ in range(first, last + 1):
            shared: list[Any] = [None]
            dist.broadcast_object_list(shared, src=0)
            model.load_state_dict(shared[0])
            mine = training.chosen(round_)[rank::processes]
            dist.gather_object(training.train(model, round_, mine), None, dst=0)
        # every rank leaves together: a peer that tears its gloo connections down while
        # another still holds them can abort that one's exit
        dist.barrier()
    finally:
        dist.destroy_process_group()
    exit_when_done()  # the work is sent: skip the teardown where gloo can still abort
