"""The previous iterate (for the step) and the best one, at one copy per iteration."""

from __future__ import annotations

import torch
from torch import Tensor

from descend.optim.optimizer import ForeachList


class Iterates:
    """``x_{k-1}`` and the lowest-f iterate of a list of parameters.

    The best iterate lives in one of three places: the parameters themselves (it is the
    current point), ``prev`` (it was the point before this step), or ``saved``. A new best
    costs no copy; only when the loop is about to overwrite ``prev`` while the best lives
    there are the two buffers swapped, which costs no copy either. So a run pays one
    parameter copy per iteration, the one the step needs anyway.
    """

    def __init__(self, params: list[Tensor]) -> None:
        self.params = params
        self.prev = [p.detach().clone() for p in params]
        self.saved = [p.detach().clone() for p in params]
        self.where = "params"

    def data(self) -> list[Tensor]:
        """Fresh detached aliases of the parameters (an optimizer may re-point ``p.data``)."""
        return [p.detach() for p in self.params]

    def before_step(self) -> None:
        if self.where == "prev":
            self.prev, self.saved = self.saved, self.prev
            self.where = "saved"
        if len(self.params) == 1:
            self.prev[0].copy_(self.params[0].detach())
        else:
            torch._foreach_copy_(self.prev, self.data())
        if self.where == "params":
            self.where = "prev"

    def step(self) -> ForeachList:
        """:math:`x_k - x_{k-1}` per parameter (one subtraction for all)."""
        if len(self.params) == 1:
            return [self.params[0].detach() - self.prev[0]]
        return torch._foreach_sub(self.data(), self.prev)

    def new_best(self) -> None:
        self.where = "params"

    def restore_best(self) -> None:
        if self.where == "params":
            return
        source = self.prev if self.where == "prev" else self.saved
        with torch.no_grad():
            torch._foreach_copy_(self.params, source)
        self.where = "params"
