r"""Bounds on a model's parameters during ``fit``: projected gradient descent.

After every optimizer step each constrained parameter is projected onto its set,
:math:`\theta \leftarrow P_C(\theta)` (:mod:`descend.constraints`), and the starting
weights are projected once before training: nonnegative weights (NMF-style factors,
monotone models), weights in a box, a mixture's weights on the simplex.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from descend.constraints import Constraint, as_constraint
from descend.validation import nearest

__all__ = ["ParameterBounds"]


class ParameterBounds:
    """Which parameter is kept in which set, and the projection of all of them.

    Args:
        model: the model whose named parameters ``bounds`` refers to.
        bounds: one set for every trainable parameter tensor (anything
            :func:`~descend.constraints.as_constraint` takes: ``"nonnegative"``,
            ``"simplex"``, a ``Box(low, high)`` with numbers for every coordinate), or a
            dict from parameter names (``model.named_parameters()``) to sets.

    Example:
        >>> bounds = ParameterBounds(model, {"weight": "nonnegative"})
        >>> bounds.project_()  # after each optimizer step
        >>> bool((model.weight >= 0).all())
        True
    """

    def __init__(self, model: nn.Module, bounds: Any) -> None:
        named = {name: p for name, p in model.named_parameters() if p.requires_grad}
        if isinstance(bounds, dict):
            pairs = []
            for name, given in bounds.items():
                if name not in named:
                    close = nearest(str(name), named)
                    hint = f"; did you mean {close!r}?" if close else ""
                    raise ValueError(
                        f"bounds names parameter {name!r}, which the model has not (its "
                        f"trainable parameters: {', '.join(named)}){hint}"
                    )
                pairs.append((name, named[name], as_constraint(given)))
        else:
            constraint = as_constraint(bounds)
            pairs = [(name, p, constraint) for name, p in named.items()]
        self.pairs: list[tuple[Tensor, Constraint]] = []
        for name, p, constraint in pairs:
            if constraint is None:
                continue
            constraint.check_size(p.numel(), name=f"bounds for {name}", against=name)
            self.pairs.append((p, constraint))

    def __bool__(self) -> bool:
        return bool(self.pairs)

    @torch.no_grad()
    def project_(self) -> None:
        """Project every constrained parameter onto its set, in place."""
        for p, constraint in self.pairs:
            constraint.project_(p)
