r"""Streamed data shared out among ranks by pieces: each rank reads only its own pieces of
the files, and the ranks step together.

A stream is a list of *pieces*, parts of the files a reader enters on its own (a Parquet
row group, the lines of a CSV file that begin in a byte range). Each epoch the pieces are
put in an order (stored order, or one drawn from the run's generator with ``shuffle``),
and rank :math:`r` of :math:`N` takes pieces :math:`r, r + N, r + 2N, \dots` of it, as
``torch.utils.data.DistributedSampler`` strides over indices and Hugging Face's
``split_dataset_by_node`` over shards. Unlike the sampler it neither repeats rows nor
drops them to even out the shares: every row is read by exactly one rank per epoch, and
the ranks' counts of pieces differ by at most one.

The global batch of :math:`B` rows is the union of the ranks' local batches. Rank
:math:`r` cuts its own rows into local batches of :math:`b_r` rows, its
``torch.tensor_split`` share of :math:`B` (sizes differ by at most one), and step
:math:`k` trains on the concatenation, in rank order, of every rank's :math:`k`-th local
batch. Before each step the ranks all-reduce their local row counts
:math:`n_{0,k}, \dots, n_{N-1,k}` (one all-reduce of :math:`N` numbers): the global batch
has :math:`T_k = \sum_r n_{r,k}` rows and rank :math:`r` holds rows
:math:`[\sum_{q<r} n_{q,k}, \sum_{q \le r} n_{q,k})` of it, which
:class:`~descend.distributed.data_parallel.DataParallel` weighs as it weighs its row
split, and the dropout rule reads. A rank whose pieces ran out holds no rows and still
steps (a zero loss joins DDP's all-reduce); the epoch ends when :math:`T_k = 0`, on every
rank at once. So an :math:`N`-rank run equals one process trained on those global
batches, in that order; it is not the one-process run over the files, whose batches are
cut from the rows in another order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, TypeVar

from torch import Tensor

from descend.distributed.data_parallel import DataParallel
from descend.distributed.sharded_dropout import RowSlice

Item = TypeVar("Item")


class Share(NamedTuple):
    """This rank's rows ``(X, y)`` of a global batch of ``total`` rows, at ``start``."""

    X: Tensor
    y: Tensor
    start: int
    total: int

    def held(self, rows: RowSlice) -> tuple[Tensor, Tensor]:
        """``(X, y)``, with ``rows`` set to where they lie in the global batch."""
        rows.set(self.start, self.start + self.X.shape[0], self.total)
        return self.X, self.y


def assigned(order: Sequence[Item], rank: int, world: int) -> list[Item]:
    """Rank ``rank``'s pieces of ``order``: every ``world``-th from position ``rank``."""
    return list(order[rank::world])


def local_batch_size(batch_size: int, rank: int, world: int) -> int:
    """Rank ``rank``'s part of a global batch: ``batch_size`` split as
    ``torch.tensor_split`` splits it (the first ``batch_size % world`` ranks one more)."""
    return len(range(rank, batch_size, world))


def agreed_order(order: list[int], parallel: DataParallel) -> list[int]:
    """Rank 0's ``order`` on every rank (summed with the others' zeros: one all-reduce).
    Ranks that drew different orders (seeds that differ) would read some pieces twice and
    others never; with rank 0's, each piece is read once whatever the seeds."""
    mine = order if parallel.rank == 0 else [0] * len(order)
    return [int(i) for i in parallel.sums(*mine)] if order else []


def lockstep(
    local: Iterator[tuple[Tensor, Tensor]],
    parallel: DataParallel,
    empty: tuple[Tensor, Tensor],
    skip: int = 0,
) -> Iterator[Share]:
    """The global steps of this rank's ``local`` batches: each as a :class:`Share` of the
    union of the ranks' batches of that step, ``empty`` once ``local`` ran out, until no
    rank has a row left. The first ``skip`` steps are agreed on but not returned.

    Every rank must call it together: each step is one all-reduce of the row counts.
    """
    step = 0
    while True:
        batch = next(local, None)
        X, y = empty if batch is None else batch
        counts = [0] * parallel.world
        counts[parallel.rank] = X.shape[0]
        counts = [int(n) for n in parallel.sums(*counts)]
        total = sum(counts)
        if total == 0:
            return
        if step >= skip:
            yield Share(X, y, sum(counts[: parallel.rank]), total)
        step += 1
