r"""Curvature plumbing shared by the second-order optimizers.

Second-order rules see the parameters as one flat vector :math:`x \in \mathbb{R}^n`, however
many tensors they are spread over. This module gives them:

* helpers over :class:`~descend.optim.flat_params.FlatParams` (the parameter list seen as
  one vector, shared with the line searches): :func:`split`, :func:`flatten`,
  :func:`set_grad`;
* :func:`hvp_fn`: Hessian-vector products :math:`v \mapsto \nabla^2 f(x)\,v` at the current
  point, exact by double backward when the closure is descend's
  :class:`~descend.objective.Objective` (``closure.has_hvp``), else by a forward difference
  of gradients through the closure (for a plain ``torch.optim`` closure);
* :func:`dense_hessian`: the full :math:`n \times n` matrix, from batched double backward or
  from :math:`n` products, and :func:`check_dense_hessian_memory`, the budget that refuses
  matrices too large to hold.

Every product is counted in the closure's ``nhev`` when it has one (an Objective does),
whichever way it was computed; a dense Hessian counts as :math:`n` products.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from descend.optim.flat_params import FlatParams

#: columns per batched double-backward when a dense Hessian is assembled: bounds the
#: temporary memory to about this many bytes whatever n is
_CHUNK_BYTES = 1 << 24


def split(flat: FlatParams, vec: Tensor) -> list[Tensor]:
    """Views of the flat ``vec`` shaped like each parameter."""
    return [piece.view_as(p) for piece, p in zip(vec.split(flat.sizes), flat.params)]


def flatten(flat: FlatParams, tensors: Sequence[Tensor | None]) -> Tensor:
    """One new flat vector from tensors shaped like the parameters (``None`` reads as 0)."""
    parts = [
        torch.zeros(n, dtype=flat.dtype, device=flat.device) if t is None else t.reshape(-1)
        for t, n in zip(tensors, flat.sizes)
    ]
    return parts[0].detach().clone() if len(parts) == 1 else torch.cat(parts).detach()


@torch.no_grad()
def set_grad(flat: FlatParams, vec: Tensor) -> None:
    """Write the flat ``vec`` into ``p.grad`` (creating the gradients that are missing)."""
    for p, g in zip(flat.params, split(flat, vec)):
        if p.grad is None:
            p.grad = g.clone()
        else:
            p.grad.copy_(g)


def single_group_params(optimizer: torch.optim.Optimizer, name: str) -> list[Tensor]:
    """The parameters of an optimizer that must have exactly one parameter group."""
    if len(optimizer.param_groups) != 1:
        raise ValueError(
            f"{name} treats all parameters as one vector and takes one parameter group, "
            f"got {len(optimizer.param_groups)}; pass a flat list of parameters"
        )
    return list(optimizer.param_groups[0]["params"])


def evaluate(closure: Callable[[], Any]) -> Any:
    """Call ``closure`` with gradients enabled (steps run under ``torch.no_grad``)."""
    with torch.enable_grad():
        return closure()


def require_closure(closure: Any, name: str) -> Callable[[], Any]:
    if closure is None or not callable(closure):
        raise ValueError(
            f"{name}.step needs a closure that re-evaluates the loss and fills p.grad "
            f"(as for torch.optim.LBFGS), got {closure!r}"
        )
    return closure


def _count(closure: Any, k: int) -> None:
    if isinstance(getattr(closure, "nhev", None), int):
        closure.nhev += k


def has_exact_hvp(closure: Any, params: Sequence[Tensor] | None = None) -> bool:
    """Whether ``closure`` offers exact Hessian-vector products (descend's Objective) with
    respect to exactly ``params`` (when given)."""
    if not (callable(getattr(closure, "hvp", None)) and bool(getattr(closure, "has_hvp", False))):
        return False
    if params is None:
        return True
    own = getattr(closure, "params", None)
    return own is not None and [id(p) for p in own] == [id(p) for p in params]


def finite_difference_step(x_norm: float, v_norm: float, dtype: torch.dtype) -> float:
    r"""The forward-difference step :math:`h = \sqrt{u}\,(1 + \|x\|) / \|v\|`.

    :math:`u` is the unit roundoff of ``dtype``. Balancing the truncation error
    :math:`O(h\|v\|^2)` against the cancellation error :math:`O(u\|\nabla f\|/h)` gives
    :math:`h \propto \sqrt{u}`; scaling by :math:`1 + \|x\|` makes the perturbation of
    :math:`x` relative, dividing by :math:`\|v\|` makes it independent of the length of
    :math:`v` (Nocedal & Wright 2006, §8.1; Knoll & Keyes 2004, §2.2).
    """
    return math.sqrt(torch.finfo(dtype).eps) * (1.0 + x_norm) / v_norm


class HessianVectorProduct:
    r"""The map :math:`v \mapsto \nabla^2 f(x)\,v` at the point the parameters hold now.

    Built once per optimizer step, after the closure was evaluated at :math:`x` (so
    ``p.grad`` holds :math:`\nabla f(x)`), and used while the parameters stay at :math:`x`.

    * Exact (``exact`` is True) when ``closure.has_hvp``: double backward through the
      objective, counted in its ``nhev``. When the objective exposes its ``loss_fn`` the
      gradient's graph :math:`\nabla f(x)` is built once, on the first product, and each
      product is one backward pass through it (``retain_graph``): the same numbers as
      ``closure.hvp``, which re-runs the forward pass and the first backward every time
      (3x faster on small problems, 1.3x on an MLP); otherwise each product calls
      ``closure.hvp``. The graph lives as long as this operator (one optimizer step).
    * Otherwise a forward difference of gradients,

      .. math:: \nabla^2 f(x)\,v \approx \frac{\nabla f(x + h v) - \nabla f(x)}{h},
                \qquad h = \sqrt{u}\,\frac{1 + \|x\|}{\|v\|},

      with one closure call at :math:`x + h v` per product. Its error is
      :math:`O(\sqrt{u})` relative (about 1e-8 in float64, 3e-4 in float32). The
      parameters are restored bit for bit and ``p.grad`` is set back to
      :math:`\nabla f(x)` after each product. The closure must be deterministic (the same
      batch every call) for the difference to mean anything.

    Attributes:
        count: products computed by this operator.
        exact: whether products are exact.
    """

    def __init__(self, closure: Any, flat: FlatParams, grad: Tensor, x: Tensor | None = None):
        self.closure = closure
        self.flat = flat
        self.grad = grad
        self.exact = has_exact_hvp(closure, flat.params)
        self.count = 0
        self._graph: list[tuple[int, Tensor]] | None = None
        self._versions: list[int] = []
        if not self.exact:
            self.x = flat.gather() if x is None else x
            self.x_norm = float(torch.linalg.vector_norm(self.x))

    def __call__(self, v: Tensor) -> Tensor:
        self.count += 1
        flat = self.flat
        if self.exact:
            if not callable(getattr(self.closure, "loss_fn", None)):
                return flatten(flat, self.closure.hvp(split(flat, v)))
            _count(self.closure, 1)
            return self._through_gradient_graph(v)
        _count(self.closure, 1)
        v_norm = float(torch.linalg.vector_norm(v))
        if v_norm == 0.0:
            return torch.zeros_like(v)
        h = finite_difference_step(self.x_norm, v_norm, flat.dtype)
        flat.assign_axpy(self.x, h, v)
        try:
            evaluate(self.closure)
            g_plus = flat.gather_grad()
        finally:
            flat.assign(self.x)
            set_grad(flat, self.grad)
        return (g_plus - self.grad) / h

    def _through_gradient_graph(self, v: Tensor) -> Tensor:
        flat = self.flat
        versions = [p._version for p in flat.params]
        if self._graph is None or versions != self._versions:
            # (re)built after the parameters were written, even with the same values (a
            # trust-region step restores them after a rejected trial): autograd refuses
            # saved tensors modified in place
            self._versions = versions
            with torch.enable_grad():
                loss = self.closure.loss_fn()
                grads = torch.autograd.grad(loss, flat.params, create_graph=True, allow_unused=True)
            self._graph = [(i, g) for i, g in enumerate(grads) if g is not None and g.requires_grad]
        if not self._graph:  # f is at most linear in the parameters
            return torch.zeros_like(v)
        pieces = split(flat, v)
        with torch.enable_grad():
            out = torch.autograd.grad(
                [g for _, g in self._graph],
                flat.params,
                [pieces[i] for i, _ in self._graph],
                retain_graph=True,
                allow_unused=True,
            )
        return flatten(flat, out)


def hvp_fn(closure: Any, params: Sequence[Tensor]) -> Callable[[Tensor], Tensor]:
    r"""Hessian-vector products at the current parameters, as a function of a flat vector.

    Evaluates ``closure`` once (at the current point, to get the gradient the finite
    difference needs; an Objective returns its cached value), then returns
    :class:`HessianVectorProduct`: exact when the closure is an Objective with
    ``has_hvp``, a forward difference of gradients otherwise.

    Example:
        >>> from descend.objective import Objective
        >>> x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
        >>> objective = Objective.from_autograd([x], lambda: (x**3).sum())  # H = diag(6x)
        >>> hvp = hvp_fn(objective, [x])
        >>> hvp(torch.ones(x.numel(), dtype=x.dtype))
        tensor([ 6., 12.], dtype=torch.float64)
    """
    flat = FlatParams(params)
    evaluate(closure)
    return HessianVectorProduct(closure, flat, flat.gather_grad())


def dense_hessian_bytes(n: int, dtype: torch.dtype) -> int:
    """Bytes a dense Newton step holds: the n x n Hessian and its Cholesky factor."""
    return 2 * n * n * torch.finfo(dtype).bits // 8


def check_dense_hessian_memory(n: int, dtype: torch.dtype, max_mb: float) -> None:
    """Raise ValueError when a dense Hessian of ``n`` parameters exceeds ``max_mb`` MiB."""
    need = dense_hessian_bytes(n, dtype)
    if need > max_mb * 2**20:
        raise ValueError(
            f"exact Newton needs a dense {n} x {n} Hessian and its Cholesky factor "
            f"({need / 2**20:.1f} MiB in {str(dtype).removeprefix('torch.')}), more than "
            f"hessian_memory_mb={max_mb:g}; use method 'newton-cg' "
            "(descend.optim.Newton(params, mode='cg')) or 'trust-region', which need only "
            "Hessian-vector products, or raise hessian_memory_mb"
        )


def dense_hessian(closure: Any, params: Sequence[Tensor], grad: Tensor | None = None) -> Tensor:
    r"""The :math:`n \times n` Hessian :math:`\nabla^2 f(x)` at the current parameters.

    With an Objective that has a ``loss_fn``, the rows come from double backward with
    batched cotangents (``torch.autograd.grad(..., is_grads_batched=True)``, vmapped over
    columns of the identity, in chunks bounded to about 16 MiB); if an operation cannot be
    vmapped, column by column through ``closure.hvp``. Without one, :math:`n` forward
    differences of gradients. The result is symmetrized, :math:`(H + H^\top)/2`. Counts
    :math:`n` products in ``closure.nhev``.

    ``grad`` is :math:`\nabla f(x)` as a flat vector; when omitted the closure is evaluated
    to get it (only the finite-difference path needs it).
    """
    flat = FlatParams(params)
    n = flat.numel
    loss_fn = getattr(closure, "loss_fn", None)
    if has_exact_hvp(closure, flat.params) and callable(loss_fn):
        try:
            hessian = _batched_hessian(loss_fn, flat)
        except RuntimeError:
            hessian = None
        if hessian is not None:
            _count(closure, n)
            return _symmetrize(hessian)
    if grad is None:
        evaluate(closure)
        grad = flat.gather_grad()
    hvp = HessianVectorProduct(closure, flat, grad)
    eye = torch.eye(n, dtype=flat.dtype, device=flat.device)
    hessian = torch.stack([hvp(eye[i]) for i in range(n)])
    return _symmetrize(hessian)


def _batched_hessian(loss_fn: Callable[[], Tensor], flat: FlatParams) -> Tensor:
    n = flat.numel
    chunk = max(1, min(n, _CHUNK_BYTES // max(1, n * torch.finfo(flat.dtype).bits // 8)))
    with torch.enable_grad():
        loss = loss_fn()
        grads = torch.autograd.grad(loss, flat.params, create_graph=True, allow_unused=True)
        pairs = [(g, p) for g, p in zip(grads, flat.params) if g is not None]
        if not pairs or not any(g.requires_grad for g, _ in pairs):
            return torch.zeros(n, n, dtype=flat.dtype, device=flat.device)
        live = [(g, p) for g, p in pairs if g.requires_grad]
        outputs = [g for g, _ in live]
        rows = torch.empty(n, n, dtype=flat.dtype, device=flat.device)
        offsets = _offsets(flat)
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            basis = torch.zeros(stop - start, n, dtype=flat.dtype, device=flat.device)
            cols = torch.arange(stop - start, device=flat.device)
            basis[cols, cols + start] = 1.0
            cotangents = [
                basis[:, offsets[id(p)] : offsets[id(p)] + p.numel()].reshape(-1, *p.shape)
                for _, p in live
            ]
            blocks = torch.autograd.grad(
                outputs,
                flat.params,
                cotangents,
                retain_graph=True,
                allow_unused=True,
                is_grads_batched=True,
            )
            rows[start:stop] = torch.cat(
                [
                    torch.zeros(stop - start, p.numel(), dtype=flat.dtype, device=flat.device)
                    if b is None
                    else b.reshape(stop - start, -1)
                    for b, p in zip(blocks, flat.params)
                ],
                dim=1,
            )
    return rows.detach()


def _offsets(flat: FlatParams) -> dict[int, int]:
    out, at = {}, 0
    for p, k in zip(flat.params, flat.sizes):
        out[id(p)] = at
        at += k
    return out


def _symmetrize(hessian: Tensor) -> Tensor:
    return hessian.add_(hessian.mT.clone()).mul_(0.5)
