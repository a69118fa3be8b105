"""The function being minimized, wrapped so every evaluation is counted and none is repeated."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor


class Objective:
    """A scalar loss of ``params`` whose evaluation leaves the gradient in ``p.grad``.

    ``closure()`` follows the ``torch.optim`` contract (returns the loss, fills the
    gradients) and is what optimizers call. It remembers the parameters' version counters
    at its last evaluation: called again before any parameter changed, it returns the
    cached loss without re-evaluating. So the loop and the optimizer can both ask for
    f(x_k) and only one evaluation happens.

    Second-order optimizers receive the Objective itself as their closure; when it was
    built with ``loss_fn`` (a differentiable function of the current ``params``), they use
    :meth:`hvp` for exact Hessian-vector products by double backward.

    Args:
        params: the tensors being optimized (leaves with ``requires_grad``).
        evaluate: computes the loss at the current ``params`` and fills ``p.grad``.
        loss_fn: the loss at the current ``params`` as a differentiable tensor, if known.
    """

    def __init__(
        self,
        params: Sequence[Tensor],
        evaluate: Callable[[], Tensor],
        loss_fn: Callable[[], Tensor] | None = None,
    ) -> None:
        self.params = list(params)
        self._evaluate = evaluate
        self.loss_fn = loss_fn
        self._versions: tuple[int, ...] | None = None
        self._loss: Tensor | None = None
        self.nfev = 0
        self.njev = 0
        self.nhev = 0

    def closure(self) -> Tensor:
        versions = tuple(p._version for p in self.params)
        if versions == self._versions and self._loss is not None:
            return self._loss
        loss = self._evaluate()
        self.nfev += 1
        self.njev += 1
        self._loss = loss
        self._versions = tuple(p._version for p in self.params)
        return loss

    __call__ = closure

    @property
    def has_hvp(self) -> bool:
        return self.loss_fn is not None

    def hvp(self, vectors: Sequence[Tensor]) -> list[Tensor]:
        r"""Hessian-vector product :math:`\nabla^2 f(x)\,v` at the current parameters.

        ``vectors`` is one tensor per parameter. Counts one ``nhev``. Exact, by double
        backward through ``loss_fn``; does not touch ``p.grad``.
        """
        if self.loss_fn is None:
            raise RuntimeError("this objective has no differentiable loss_fn; no exact HVP")
        with torch.enable_grad():
            loss = self.loss_fn()
            grads = torch.autograd.grad(loss, self.params, create_graph=True)
            out = torch.autograd.grad(grads, self.params, list(vectors), allow_unused=True)
        self.nhev += 1
        return [torch.zeros_like(p) if h is None else h.detach() for p, h in zip(self.params, out)]

    def forget(self) -> None:
        """Drop the cache (after the caller changed parameters outside an optimizer)."""
        self._versions = None
        self._loss = None

    @classmethod
    def from_autograd(cls, params: Sequence[Tensor], loss_fn: Callable[[], Tensor]) -> Objective:
        """An objective whose gradient comes from ``loss_fn().backward()``."""
        params = list(params)

        def evaluate() -> Tensor:
            for p in params:
                p.grad = None
            with torch.enable_grad():
                loss = loss_fn()
                loss.backward()
            return loss.detach()

        return cls(params, evaluate, loss_fn)
