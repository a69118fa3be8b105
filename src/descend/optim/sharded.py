"""Parameters sharded by FSDP2 (``torch.distributed.fsdp.fully_shard``): each rank holds a
part of every tensor, a DTensor. The elementwise rules, and LAMB, LARS and Prodigy (whose
norms and sums DTensor takes over all the shards) step on them as on whole tensors; the
rules that need a whole matrix or the whole parameter vector refuse them here, by name."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeGuard

import torch
from torch import Tensor

if TYPE_CHECKING:
    from torch.distributed.tensor import DTensor

#: what a user of a rule that needs whole tensors can do instead
ALTERNATIVES = (
    "use an elementwise rule (sgd, adam, adamw, lion, ...), LAMB or LARS on sharded "
    "parameters, or run it on a model that is not sharded (full-batch second order on data "
    "split across ranks: descend.distributed.objective)"
)


def is_sharded(t: Tensor) -> TypeGuard[DTensor]:
    """Whether ``t`` is a DTensor (a plain tensor or parameter never is)."""
    if type(t) in (Tensor, torch.nn.Parameter) or not torch.distributed.is_available():
        return False
    from torch.distributed.tensor import DTensor

    return isinstance(t, DTensor)


def refuse_sharded(params: Iterable[Tensor], needs: str) -> None:
    """Raise a ValueError naming the first sharded tensor of ``params``: the rule ``needs``
    (what it does with whole tensors), and :data:`ALTERNATIVES`."""
    for i, p in enumerate(params):
        if is_sharded(p):
            raise ValueError(
                f"parameter {i} is sharded (an FSDP2 DTensor: each rank holds a part of it), "
                f"but {needs}; {ALTERNATIVES}"
            )
