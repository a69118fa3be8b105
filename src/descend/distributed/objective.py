r"""Full-batch objectives over data sharded across ranks: f, its gradient and its
Hessian-vector products summed over the ranks by all-reduce, inside autograd.

Rank :math:`r` holds rows :math:`I_r` and evaluates its share of the objective,

.. math::
    F(\theta) = \sum_r s_r\, F_r(\theta) + P(\theta),\qquad
    s_r = \frac{S_r}{\sum_{r'} S_{r'}},

where :math:`F_r` is the (weighted) mean loss over its rows, :math:`S_r` their total
weight (their count when unweighted) and :math:`P` a penalty every rank computes alike.
Then :math:`F` is the mean loss over all rows, as one process holding them all computes
it. Two autograd functions make ordinary ``backward`` and double backward produce
:math:`F`, :math:`\nabla F` and :math:`\nabla^2 F\,v` on every rank; they are the pair
Megatron-LM uses for tensor parallelism, and their adjoints are each other's forward:

* :func:`sum_across_ranks` (the loss): forward all-reduce, backward identity. The loss is
  one value shared by all ranks; its cotangent goes to each rank's term unchanged.
* :func:`replicated` (the parameters): forward identity, backward all-reduce. A parameter
  is one value held by every rank; its gradient is the sum of what each rank's copy
  received.

A penalty written on the parameters themselves (not their :func:`replicated` view)
stays out of the all-reduce, so it is counted once. All-reduce leaves the same bits on
every rank, so every line-search and trust-region decision is the same everywhere and the
ranks stay in lockstep: the same L-BFGS, BFGS, Newton-CG or trust-region run as on one
process, on data that no process holds whole. Every evaluation is collective: all ranks
must evaluate together (the engine's loop does, as every rank takes the same decisions).

Example (on each of the ranks that ``torchrun`` starts, so not run here;
``tests/distributed`` runs it):
    >>> dist.init_process_group("gloo")  # doctest: +SKIP
    >>> rank, ranks = dist.get_rank(), dist.get_world_size()  # doctest: +SKIP
    >>> X_local, y_local = X[rank::ranks], y[rank::ranks, 0]  # doctest: +SKIP
    >>> share = row_share(len(X_local))  # doctest: +SKIP
    >>> fun = sharded(lambda w: ((X_local @ w - y_local) ** 2).mean(), share)  # doctest: +SKIP
    >>> res = descend.minimize(fun, torch.zeros(3), "newton-cg")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.func import functional_call

Group = Any  # a torch.distributed ProcessGroup, or None for the default group


def check_initialized() -> None:
    """A ValueError naming the fix unless torch.distributed has a default process group."""
    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError(
            "distributed training needs torch.distributed initialized: start the script "
            "with torchrun (then call torch.distributed.init_process_group()), or call "
            "init_process_group(backend, rank=..., world_size=...) yourself"
        )


class _SumAcrossRanks(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, tensor: Tensor, group: Group) -> Tensor:
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out, op=dist.ReduceOp.SUM, group=group)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad, None


class _Replicated(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, tensor: Tensor, group: Group) -> Tensor:
        ctx.group = group
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        # through the function itself, not a bare all_reduce: double backward (Hessian-
        # vector products) then sums the second-order terms across ranks too
        return _SumAcrossRanks.apply(grad, ctx.group), None


def sum_across_ranks(tensor: Tensor, group: Group = None) -> Tensor:
    r""":math:`\sum_r x_r`, the same on every rank; its gradient passes to each rank's
    :math:`x_r` unchanged (the loss of all ranks is one loss)."""
    return _SumAcrossRanks.apply(tensor, group)


def replicated(tensor: Tensor, group: Group = None) -> Tensor:
    r"""``tensor`` itself, marked as one value held by every rank: its gradient (and a
    Hessian-vector product through it) is the sum over the ranks of what each rank's copy
    receives."""
    return _Replicated.apply(tensor, group)


def process_group(distributed: Any) -> tuple[bool, Group]:
    """``distributed`` as ``(on, group)``: False for one process; True for the default
    process group; or a ``ProcessGroup`` itself (checked to be initialized)."""
    if distributed is False or distributed is None:
        return False, None
    group = None if distributed is True else distributed
    if group is not None and not isinstance(group, dist.ProcessGroup):
        raise TypeError(
            f"distributed must be True, False or a torch.distributed ProcessGroup, "
            f"got {distributed!r}"
        )
    check_initialized()
    return True, group


def totals(values: list[float], group: Group = None) -> list[float]:
    """Each of ``values`` summed over the ranks (one all-reduce, float64)."""
    check_initialized()
    summed = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(summed, group=group)
    return summed.tolist()


def row_share(local: float, group: Group = None) -> float:
    r"""This rank's share :math:`s_r = S_r / \sum_{r'} S_{r'}` of the rows (``local``: the
    rank's row count, or its total sample weight); the shares sum to 1 over the ranks.

    Example:
        >>> share = row_share(500)  # doctest: +SKIP
        >>> share  # on each of 2 ranks holding 500 rows  # doctest: +SKIP
        0.5
    """
    if not local >= 0:
        raise ValueError(f"local must be a row count or total weight >= 0, got {local!r}")
    (total,) = totals([float(local)], group)
    if not total > 0:
        raise ValueError("the ranks hold no rows (or only zero weights) between them")
    return float(local) / total


def sharded(
    fun: Callable[[Tensor], Tensor], share: float, group: Group = None
) -> Callable[[Tensor], Tensor]:
    r"""The objective :math:`F(x) = \sum_r s_r f_r(x)` from this rank's ``fun``
    (:math:`f_r`, the mean loss over its rows) and ``share`` (:math:`s_r`,
    :func:`row_share`), for ``descend.minimize`` on each rank: f, the gradient and the
    Hessian-vector products are those of :math:`F`, the same on every rank. Every rank
    must start from the same ``x0``.
    """
    check_initialized()

    def global_fun(x: Tensor) -> Tensor:
        return sum_across_ranks(share * fun(replicated(x, group)), group)

    return global_fun


class ShardedLoss:
    r"""``loss(prediction, target)`` over this rank's rows (a mean) as its share of the
    loss over all ranks' rows: :math:`\sum_r s_r\,\mathrm{loss}_r`, the same on every
    rank. Pair with :class:`ShardedModule`, which sums the gradients."""

    def __init__(
        self, loss: Callable[[Tensor, Tensor], Tensor], share: float, group: Group = None
    ) -> None:
        check_initialized()
        self.loss, self.share, self.group = loss, share, group

    def __call__(self, prediction: Tensor, target: Tensor) -> Tensor:
        return sum_across_ranks(self.share * self.loss(prediction, target), self.group)


class ShardedModule(nn.Module):
    """``module`` with its parameters :func:`replicated` across the ranks: a backward pass
    through it leaves in each parameter's ``grad`` the sum over the ranks (double backward
    too). Its parameters are ``module``'s, so an optimizer, a penalty or a checkpoint sees
    them as usual; rank 0's parameters and buffers are broadcast at construction, so every
    rank starts from the same model.

    Unlike ``DistributedDataParallel``, which averages gradients of mini-batches and
    supports one backward, this serves full-batch objectives: exact sums, and
    Hessian-vector products for Newton-CG and trust-region methods.
    """

    def __init__(self, module: nn.Module, group: Group = None) -> None:
        check_initialized()
        super().__init__()
        self.module = module
        self.group = group
        source = 0 if group is None else dist.get_global_rank(group, 0)
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor, src=source, group=group)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        params = {
            name: replicated(p, self.group) if p.requires_grad else p
            for name, p in self.module.named_parameters()
        }
        return functional_call(self.module, params, args, kwargs)
