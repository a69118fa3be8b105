"""Keep a model's parameters in a feasible set: the projection step of projected gradient
descent for ``fit`` (after each optimizer step)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from descend.constraints.parse import as_constraint


@torch.no_grad()
def project_parameters_(params: Iterable[Tensor] | torch.nn.Module, bounds: Any) -> None:
    r"""Project each parameter tensor onto ``bounds`` in place: :math:`\theta \leftarrow
    P_C(\theta)`, tensor by tensor (a :class:`~descend.constraints.Simplex` makes each
    tensor sum to its total).

    Called after every optimizer step it turns that step into a projected one.

    Args:
        params: a module (all its parameters) or an iterable of tensors.
        bounds: anything :func:`~descend.constraints.as_constraint` takes; a box given by
            pairs must have one pair per coordinate of every tensor.

    Example:
        >>> opt = descend.optim.SGD(model.parameters(), lr=0.1)
        >>> loss_fn(model(X), y).backward(); opt.step()
        >>> project_parameters_(model, "nonnegative")  # nonnegative weights (NMF-style)
        >>> bool(model.weight.min() >= 0 and model.bias.min() >= 0)
        True
    """
    constraint = as_constraint(bounds)
    if constraint is None:
        return
    tensors = params.parameters() if isinstance(params, torch.nn.Module) else params
    for i, p in enumerate(tensors):
        if not isinstance(p, Tensor):
            raise TypeError(f"params[{i}] is {type(p).__name__}, not a tensor")
        constraint.check_size(p.numel(), name=f"bounds for parameter {i} ({tuple(p.shape)})")
        constraint.project_(p)
