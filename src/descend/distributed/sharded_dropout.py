r"""Dropout that draws the global batch's mask on every rank and keeps its own rows.

One process training on a batch of :math:`B` rows draws a dropout mask
:math:`M \in \{0, 1/(1-p)\}^{B \times \dots}` from the global RNG. Rank :math:`r` of a
data-parallel run holds rows :math:`[a_r, b_r)` of that batch. For its run to be the
one-process run, its mask must be rows :math:`[a_r, b_r)` of :math:`M`. Drawing a mask
for its own :math:`b_r - a_r` rows would not do: the draws would be different numbers, and
the ranks' RNG states would drift apart (each consumed a different count).

The rule: every rank draws the whole :math:`B`-row mask from the same generator state
(the run seeds the global RNG alike on every rank), exactly as the one-process
``torch.nn.Dropout`` draws it on the CPU (``bernoulli_(1 - p)``, then ``div_(1 - p)``),
and multiplies its activations by its slice. Every rank then leaves the RNG in the state
the one-process run leaves it in, so the next mask, and a checkpoint's RNG state, agree
too. The cost is drawing :math:`B` rows of mask instead of :math:`B/N`: random bits, no
model compute.

It applies to ``torch.nn.Dropout`` modules whose input has the batch as its first
dimension. Other random layers (``Dropout2d``, ``AlphaDropout``, ``F.dropout`` called
inside a ``forward``) draw per rank and break the equality, not the training. On CUDA the
one-process ``nn.Dropout`` uses a fused kernel with its own draws; the rule still gives
every rank its slice of one global mask, but not the fused kernel's bits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import MethodType

import torch
from torch import Tensor, nn


class RowSlice:
    """The rows ``[start, stop)`` this rank holds of a global batch of ``total`` rows."""

    def __init__(self) -> None:
        self.start, self.stop, self.total = 0, 0, 0

    def set(self, start: int, stop: int, total: int) -> None:
        self.start, self.stop, self.total = start, stop, total


def _dropout_forward(rows: RowSlice) -> Callable[[nn.Dropout, Tensor], Tensor]:
    def forward(self: nn.Dropout, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        held = rows.stop - rows.start
        if x.shape[0] != held:
            raise ValueError(
                f"a Dropout input has {x.shape[0]} rows in its first dimension but this "
                f"rank holds {held} rows of the batch; distributed fit needs dropout on "
                "batch-first activations"
            )
        if self.p == 1.0:
            return x * 0.0
        noise = torch.empty((rows.total, *x.shape[1:]), dtype=x.dtype, device=x.device)
        noise.bernoulli_(1.0 - self.p)
        noise.div_(1.0 - self.p)
        return x * noise[rows.start : rows.stop]

    return forward


@contextmanager
def sharded_dropout(model: nn.Module, rows: RowSlice) -> Iterator[None]:
    """Within the block, every ``nn.Dropout`` of ``model`` draws the global batch's mask
    and applies its ``rows`` slice (see the module docstring); restored afterwards."""
    layers = [m for m in model.modules() if type(m) is nn.Dropout]
    forward = _dropout_forward(rows)
    for layer in layers:
        layer.forward = MethodType(forward, layer)  # type: ignore[method-assign]
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward
