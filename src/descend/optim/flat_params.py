"""A list of parameter tensors seen as one flat vector, for the methods that do linear
algebra on the whole parameter vector (line searches, quasi-Newton, Newton, trust region,
natural gradient)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from descend.optim.sharded import refuse_sharded


class FlatParams:
    """A list of same-dtype, same-device tensors seen as one flat vector.

    Gathers the values or the gradients into a flat buffer and writes a flat vector back,
    with one kernel for a single contiguous tensor and no Python loop over elements.
    """

    def __init__(self, params: Sequence[Tensor]) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("params is empty; an optimizer needs at least one tensor")
        refuse_sharded(
            self.params,
            "this method (lbfgs, bfgs, cg, newton, trust-region or natural gradient) works on "
            "all the parameters as one flat vector",
        )
        first = self.params[0]
        for i, p in enumerate(self.params):
            if p.dtype != first.dtype or p.device != first.device:
                raise ValueError(
                    f"all parameters must share one dtype and device; parameter 0 is "
                    f"{first.dtype} on {first.device}, parameter {i} is {p.dtype} on {p.device}"
                )
            if not p.is_floating_point():
                raise TypeError(f"parameter {i} has dtype {p.dtype}; a floating dtype is needed")
        self.dtype, self.device = first.dtype, first.device
        self.sizes = [p.numel() for p in self.params]
        self.numel = sum(self.sizes)
        self.single = len(self.params) == 1 and first.is_contiguous()
        self._work: Tensor | None = None

    @property
    def eps(self) -> float:
        """Machine epsilon of the parameters' dtype."""
        return torch.finfo(self.dtype).eps

    def empty(self, *shape: int) -> Tensor:
        return torch.empty(*shape, self.numel, dtype=self.dtype, device=self.device)

    def gather(self, out: Tensor | None = None) -> Tensor:
        """A flat copy of the parameters' values."""
        out = self.empty() if out is None else out
        if self.single:
            out.copy_(self.params[0].detach().view(-1))
        else:
            torch.cat([p.detach().reshape(-1) for p in self.params], out=out)
        return out

    def gather_grad(self, out: Tensor | None = None) -> Tensor:
        """A flat copy of the gradients (zeros where ``p.grad`` is None)."""
        out = self.empty() if out is None else out
        grads = [p.grad for p in self.params]
        if self.single and grads[0] is not None:
            out.copy_(grads[0].view(-1))
        else:
            torch.cat(
                [
                    torch.zeros_like(p).view(-1) if g is None else g.reshape(-1)
                    for p, g in zip(self.params, grads)
                ],
                out=out,
            )
        return out

    @torch.no_grad()
    def assign(self, flat: Tensor) -> None:
        """params <- flat."""
        if self.single:
            self.params[0].view(-1).copy_(flat)
        else:
            torch._foreach_copy_(self.params, self._views(flat))

    @torch.no_grad()
    def assign_axpy(self, x0: Tensor, t: float, d: Tensor) -> None:
        """params <- x0 + t d, computed in one kernel."""
        if self.single:
            torch.add(x0, d, alpha=t, out=self.params[0].view(-1))
            return
        if self._work is None:
            self._work = self.empty()
        torch.add(x0, d, alpha=t, out=self._work)
        torch._foreach_copy_(self.params, self._views(self._work))

    def _views(self, flat: Tensor) -> list[Tensor]:
        return [piece.view_as(p) for piece, p in zip(flat.split(self.sizes), self.params)]


def scalars(*tensors: Tensor) -> list[float]:
    """Several 0-d tensors as floats with one host synchronization."""
    if tensors[0].device.type == "cpu":
        return [t.item() for t in tensors]
    return torch.stack([t.detach().reshape(()).double() for t in tensors]).tolist()
