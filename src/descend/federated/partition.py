"""Splitting a data set's rows among clients: IID, Dirichlet(α) over labels, pathological
(a few classes per client), each drawn from a seed.

Each partitioner returns one ``torch.long`` tensor of row indices per client, every client
with at least one row; bad arguments are refused naming the argument.

Example:
    >>> labels = torch.arange(200) % 4  # four classes, 50 rows each
    >>> parts = dirichlet(labels, clients=20, alpha=0.1, seed=0)
    >>> counts = label_counts(labels, parts)  # (clients, classes) table of rows per label
    >>> counts.shape, counts.sum(0).tolist()  # every row dealt to one client
    (torch.Size([20, 4]), [50, 50, 50, 50])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from descend.validation import check_int, check_positive

__all__ = ["PARTITIONS", "check_parts", "dirichlet", "iid", "label_counts", "pathological"]

PARTITIONS = ("iid", "dirichlet", "pathological")
#: draws of a Dirichlet partition tried before a client left with no rows is an error
DIRICHLET_DRAWS = 100


def iid(rows: int, clients: int, *, seed: int) -> list[Tensor]:
    """Rows shuffled and dealt into ``clients`` parts of equal size (within one row)."""
    clients = _check_clients(clients, rows)
    order = torch.randperm(rows, generator=torch.Generator().manual_seed(seed))
    return [part.clone() for part in torch.tensor_split(order, clients)]


def dirichlet(labels: Any, clients: int, alpha: float, *, seed: int) -> list[Tensor]:
    r"""Label skew: each class's rows split among clients in proportions
    :math:`p_c \sim \mathrm{Dir}(\alpha \mathbf{1}_K)` (Hsu et al. 2019).

    Small ``alpha`` (0.1) gives each client a few dominant labels; large ``alpha`` (100)
    approaches IID. A draw that leaves a client with no rows is drawn again (up to
    ``DIRICHLET_DRAWS`` times) before it is an error.

    Args:
        labels: one class label per row (integers).
        clients: the number of clients K, 1 <= K <= rows.
        alpha: concentration > 0.
        seed: seeds the draws.
    """
    y = _labels(labels)
    clients = _check_clients(clients, len(y))
    alpha = check_positive("alpha", alpha)
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    for _ in range(DIRICHLET_DRAWS):
        parts: list[list[np.ndarray]] = [[] for _ in range(clients)]
        for c in classes:
            rows = rng.permutation(np.flatnonzero(y == c))
            share = rng.dirichlet(np.full(clients, alpha))
            cuts = (np.cumsum(share)[:-1] * len(rows)).astype(np.int64)
            for k, piece in enumerate(np.split(rows, cuts)):
                parts[k].append(piece)
        merged = [np.sort(np.concatenate(p)) for p in parts]
        if all(len(p) for p in merged):
            return [torch.from_numpy(p.astype(np.int64)) for p in merged]
    raise ValueError(
        f"alpha={alpha:g} with clients={clients} left a client with no rows in "
        f"{DIRICHLET_DRAWS} draws of {len(y)} rows; raise alpha or lower clients"
    )


def pathological(labels: Any, clients: int, classes_per_client: int, *, seed: int) -> list[Tensor]:
    """McMahan et al.'s non-IID split: rows sorted by label, cut into
    ``clients * classes_per_client`` shards, each client given ``classes_per_client``
    shards at random, so it sees about that many classes."""
    y = _labels(labels)
    clients = _check_clients(clients, len(y))
    k = check_int("classes_per_client", classes_per_client, low=1)
    shards = clients * k
    if shards > len(y):
        raise ValueError(
            f"classes_per_client={k} with clients={clients} needs {shards} shards of at "
            f"least one row, but there are {len(y)} rows; lower classes_per_client or clients"
        )
    generator = torch.Generator().manual_seed(seed)
    shuffled = torch.randperm(len(y), generator=generator)
    # sorted by label, rows of one label in a random order
    order = shuffled[torch.from_numpy(y[shuffled.numpy()]).argsort(stable=True)]
    pieces = torch.tensor_split(order, shards)
    deal = torch.randperm(shards, generator=generator).reshape(clients, k)
    return [torch.cat([pieces[i] for i in row.tolist()]).sort().values for row in deal]


def label_counts(labels: Any, parts: Sequence[Tensor]) -> Tensor:
    """Rows of each label per client: a ``(clients, classes)`` tensor, classes sorted."""
    y = _labels(labels)
    classes, codes = np.unique(y, return_inverse=True)
    codes_t = torch.from_numpy(codes.astype(np.int64))
    return torch.stack([torch.bincount(codes_t[p], minlength=len(classes)) for p in parts])


def check_parts(parts: Sequence[Any], rows: int) -> list[Tensor]:
    """Index tensors from a given partition: each client non-empty, indices in range."""
    out = []
    if len(parts) == 0:
        raise ValueError("partition must give at least one client")
    for k, part in enumerate(parts):
        index = torch.as_tensor(part, dtype=torch.long).reshape(-1)
        if index.numel() == 0:
            raise ValueError(f"partition: client {k} has no rows; every client needs data")
        if int(index.min()) < 0 or int(index.max()) >= rows:
            raise ValueError(f"partition: client {k} has row indices outside 0..{rows - 1}")
        out.append(index)
    return out


def _check_clients(clients: int, rows: int) -> int:
    clients = check_int("clients", clients, low=1)
    if clients > rows:
        raise ValueError(
            f"clients must be at most the number of rows ({rows}) so that each has data, "
            f"got {clients}"
        )
    return clients


def _labels(labels: Any) -> np.ndarray:
    y = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    y = y.reshape(-1)
    if y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0):
        raise ValueError("labels must be class labels (integers) to partition by label")
    return y
