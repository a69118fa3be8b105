r"""Data parallelism for ``fit``: which rank holds which rows of a global batch, the
weight of its loss, and the values every rank must agree on.

:math:`N` processes train one model on a global batch of :math:`B` rows. Rank :math:`r`
holds :math:`n_r` of them (``torch.tensor_split``: contiguous, sizes differ by at most one,
possibly none on a short last batch) and takes the mean loss :math:`L_r` over them.
DistributedDataParallel averages the ranks' gradients, so each rank back-propagates

.. math::
    \tilde L_r = \frac{N n_r}{B} L_r
    \quad\Rightarrow\quad
    \frac1N \sum_r \nabla \tilde L_r = \sum_r \frac{n_r}{B} \nabla L_r
    = \nabla \frac1B \sum_{i=1}^{B} \ell_i,

the gradient of the one-process mean, whatever the split. A rank with no rows of a batch
still runs forward and backward (a zero loss), since every rank must join each
all-reduce. The loss reported for the batch is :math:`\frac1B\sum_r n_r L_r`, one
all-reduce, the same bits on every rank, so every test that reads it decides alike.
"""

from __future__ import annotations

import atexit
import os
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from descend.distributed.sharded_dropout import RowSlice

#: the variables torchrun (torch.distributed.run) sets in each process it starts
LAUNCHER_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")

#: how long a rank waits in one collective for the others before it fails with an error
#: naming the timeout (a dead or hung rank), in a group this module creates; torch's own
#: default is 30 minutes
COLLECTIVE_TIMEOUT = timedelta(seconds=60)


def launched() -> bool:
    """Whether this process was started by torchrun (or a launcher that sets its env)."""
    return all(name in os.environ for name in LAUNCHER_ENV)


def wanted(distributed: bool | None) -> bool:
    """``distributed`` resolved: None means on when a default process group exists or
    torchrun's environment is present."""
    if distributed is None:
        available = dist.is_available()
        return available and (dist.is_initialized() or launched())
    if not isinstance(distributed, bool):
        raise TypeError(f"distributed must be True, False or None, got {distributed!r}")
    return distributed


def _leave() -> None:
    """Destroy the group this module created, at the process's exit, once every rank is
    there: a rank that tears its gloo connections down while its peer still holds them
    aborts the peer's exit ("terminate called without an active exception", about one
    exit in six on two CPU processes without the barrier, none in 40 with it). A barrier
    that fails (a rank died) leaves the teardown to the launcher."""
    if not dist.is_initialized():
        return
    try:
        dist.barrier()
    except Exception:  # a dead peer: nothing left to wait for
        return
    dist.destroy_process_group()


class DataParallel:
    """This process's part of a data-parallel run over the default process group.

    Attributes:
        rank, world: this process's rank and the number of processes.
        rows: the rows of the current global batch this rank holds (read by the dropout
            rule, :mod:`descend.distributed.sharded_dropout`).
    """

    def __init__(self, device: torch.device) -> None:
        if not dist.is_available():
            raise ValueError("distributed=True needs a torch build with torch.distributed")
        if not dist.is_initialized():
            if not launched():
                raise ValueError(
                    "distributed=True needs a process group: start the script with torchrun "
                    "(or `descend fit --nproc N`), or call torch.distributed."
                    "init_process_group(backend, rank=..., world_size=...) first"
                )
            # kept for the process's later fits: a group destroyed and created again on
            # torchrun's store meets the first group's stale keys there and can hang
            dist.init_process_group(
                "nccl" if device.type == "cuda" else "gloo", timeout=COLLECTIVE_TIMEOUT
            )
            atexit.register(_leave)
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.device = device
        self.rows = RowSlice()

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` in DistributedDataParallel (rank 0's weights broadcast to all)."""
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index or 0] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def shard(self, X: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """This rank's rows of the global batch ``(X, y)``; :attr:`rows` records where."""
        total = X.shape[0]
        base, extra = divmod(total, self.world)
        start = self.rank * base + min(self.rank, extra)
        stop = start + base + (self.rank < extra)
        self.rows.set(start, stop, total)
        return X[start:stop], y[start:stop]

    def weighted_loss(self, loss: Any, output: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        r"""``(weighted, rows_sum)``: the loss this rank back-propagates,
        :math:`N n_r L_r / B`, and :math:`n_r L_r` (detached), which :meth:`sum` turns
        into the global batch's loss."""
        held, total = self.rows.stop - self.rows.start, self.rows.total
        if held == 0:  # no rows: a zero that still runs backward (and DDP's all-reduce)
            zero = output.sum() * 0.0
            return zero, zero.detach()
        mean = loss(output, y)
        return mean * (self.world * held / total), mean.detach() * held

    def sum(self, value: Tensor) -> Tensor:
        """:math:`\\sum_r` value over the ranks (one all-reduce), the same on every rank."""
        out = value.detach().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    def sums(self, *values: float) -> list[float]:
        """Several host floats summed over the ranks in one all-reduce."""
        out = torch.tensor(values, dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out.tolist()

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` holds on some rank: a decision every rank then takes."""
        out = torch.tensor([int(flag)], device=self._comm_device())
        dist.all_reduce(out, op=dist.ReduceOp.MAX)
        return bool(out.item())

    def agreed(self, value: int) -> int:
        """Rank 0's ``value`` on every rank (one broadcast): e.g. a seed each rank drew."""
        out = torch.tensor([value], dtype=torch.int64, device=self._comm_device())
        dist.broadcast(out, src=0)
        return int(out.item())

    def _comm_device(self) -> torch.device:
        # nccl moves CUDA tensors only; gloo moves CPU tensors
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")
