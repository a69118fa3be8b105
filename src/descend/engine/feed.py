"""What a feed measures at an iterate, and the norms and rates every feed reads.

The feed contract itself is :class:`descend.engine.loop.Feed`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from descend.engine.stopping import StoppingCriteria
from descend.optim.optimizer import ForeachList


@dataclass
class Measure:
    """One evaluation at the current iterate, per row (host floats).

    Attributes:
        f: the objective (a batch's loss for a stochastic feed).
        g: the gradient's 2-norm (what histories record).
        g_test: the norm the gradient test reads (``gtol_norm``, or the proximal gradient
            mapping's); exact feeds only.
        step: what the xtol test reads (per ``xtol_rule``), NaN at the start; exact feeds.
        x_scale: the scale xtol multiplies (``max(||x||, 1)`` or 1).
    """

    f: list[float]
    g: list[float]
    g_test: list[float]
    step: list[float]
    x_scale: list[float]


def norm_of(tensors: ForeachList, p: float = 2.0) -> Tensor:
    """The p-norm of a list of tensors as one vector (a tensor: no host synchronization)."""
    if len(tensors) == 1:
        return torch.linalg.vector_norm(tensors[0], ord=p)
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tensors, p)), ord=p)


def host(*tensors: Tensor) -> list[float]:
    """Several scalar tensors as floats with one host synchronization."""
    if tensors[0].device.type == "cpu":
        return [t.item() for t in tensors]
    return torch.stack([t.detach().double() for t in tensors]).tolist()


def learning_rate(optimizer: torch.optim.Optimizer) -> float:
    """The first parameter group's learning rate (NaN where the rule has none)."""
    lr = optimizer.param_groups[0].get("lr")
    if isinstance(lr, Tensor):
        return float(lr.item())
    return float(lr) if isinstance(lr, (int, float)) else math.nan


def step_tests(
    stopping: StoppingCriteria, diff: ForeachList, x: ForeachList
) -> tuple[Tensor, Tensor]:
    """What xtol compares, as tensors: the step by ``xtol_rule`` and the scale it multiplies.

    ``relative``: :math:`\\|s\\|_2` against :math:`\\max(\\|x\\|_2, 1)`; ``mean_abs``:
    :math:`\\|s\\|_1 / n` against 1.
    """
    if stopping.xtol_rule == "mean_abs":
        n = sum(d.numel() for d in diff)
        return norm_of(diff, 1.0) / n, torch.ones((), dtype=diff[0].dtype)
    return norm_of(diff), torch.clamp(norm_of(x), min=1.0)
