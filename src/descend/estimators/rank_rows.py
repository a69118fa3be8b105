r"""The rows every rank of a distributed estimator fit holds, gathered where a fit needs
them whole.

``fit(X, y, distributed=True)`` takes each rank's own rows. A full-batch fit keeps them
apart (:mod:`descend.distributed.objective` sums the objective over the ranks); a
mini-batch fit trains by :func:`descend.train.fit.fit`'s data parallelism, where every
rank draws the same global batches from all rows and takes its share of each, so every
rank needs every row. Rank :math:`r`'s rows :math:`X_r` are concatenated in rank order,

.. math::
    X = \begin{pmatrix} X_0 \\ X_1 \\ \vdots \\ X_{N-1} \end{pmatrix},

the rows one process would hold, so the fit ends where one process fitting :math:`X`
does. Held-out rows are gathered alike: every rank then scores the same rows.

Example (on each rank of a process group, so not run here):
    >>> X_all = rows_of_all_ranks("X", X_mine, group=None)  # doctest: +SKIP
    >>> pair = (Xv_mine, yv_mine)  # doctest: +SKIP
    >>> X_val, y_val = rows_of_all_ranks("validation", pair, None, pair=True)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch.distributed as dist

__all__ = ["rows_of_all_ranks", "rows_of_rank"]


def rows_of_all_ranks(name: str, rows: Any, group: Any, *, pair: bool = False) -> Any:
    """Every rank's ``rows`` (an array; with ``pair``, a pair of arrays such as
    ``(X_val, y_val)``; or None on every rank) concatenated in rank order, the same on
    every rank. Every rank checks the same
    gathered list, so all of them raise or none does; ``name`` names the argument.

    Raises:
        ValueError: rows given on some ranks only, or a pair expected and something
            else given.
    """
    pieces: list[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(pieces, rows, group=group)
    given = [piece is not None for piece in pieces]
    if not any(given):
        return None
    if not all(given):
        missing = [rank for rank, has in enumerate(given) if not has]
        raise ValueError(
            f"{name} was given on some ranks but not on rank(s) {missing}; with "
            "distributed=True pass it on every rank or on none"
        )
    if not pair:
        return np.concatenate([np.asarray(piece) for piece in pieces])
    for rank, piece in enumerate(pieces):
        if not (isinstance(piece, (tuple, list)) and len(piece) == 2):
            raise ValueError(
                f"{name} must be a pair of arrays, got {type(piece).__name__} on rank {rank}"
            )
    return tuple(np.concatenate([np.asarray(piece[i]) for piece in pieces]) for i in (0, 1))


def rows_of_rank(rows: Any, group: Any = None) -> Any:
    """This rank's contiguous share of ``rows`` that every rank holds whole (sizes differ
    by at most one): the inverse of :func:`rows_of_all_ranks`, whose rank-order
    concatenation gives ``rows`` back."""
    return np.array_split(rows, dist.get_world_size(group))[dist.get_rank(group)]
