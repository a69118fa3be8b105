"""Curvature from Hessian-vector products: extreme eigenvalues by Lanczos iteration."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.linalg import vector_norm

from descend.validation import check_int

MatVec = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Spectrum:
    """Ritz pairs from :func:`lanczos`.

    Attributes:
        values: Ritz values, ascending (float64, on the CPU).
        vectors: the matching Ritz vectors as columns, unit length, on the input's device.
        iterations: matrix-vector products used.
    """

    values: Tensor
    vectors: Tensor
    iterations: int

    @property
    def smallest(self) -> float:
        return float(self.values[0])

    @property
    def largest(self) -> float:
        return float(self.values[-1])


def lanczos(matvec: MatVec, start: Tensor, iterations: int) -> Spectrum:
    r"""Approximate the extreme eigenpairs of a symmetric operator by Lanczos iteration.

    From :math:`q_1 = v/\|v\|` it builds the Krylov basis
    :math:`Q_m = [q_1, \dots, q_m]` of :math:`\{v, Av, \dots, A^{m-1}v\}` by the three-term
    recurrence :math:`\beta_{j}q_{j+1} = A q_j - \alpha_j q_j - \beta_{j-1} q_{j-1}`
    (re-orthogonalized against all earlier q, as m is small), and returns the eigenpairs
    of the tridiagonal :math:`T_m = Q_m^\top A Q_m`. The extreme Ritz values converge to
    the extreme eigenvalues of A first (Kaniel-Paige), so 10-20 products find a clearly
    negative eigenvalue of a Hessian of any size; with m = n they are exact.

    Args:
        matvec: :math:`v \mapsto A v` on flat vectors (a Hessian-vector product).
        start: the start vector (nonzero), flat.
        iterations: products at most, an integer >= 1 (fewer when the Krylov space is
            exhausted).

    Example:
        >>> A = torch.diag(torch.tensor([2.0, -1.0, 5.0], dtype=torch.float64))
        >>> smallest = lanczos(lambda v: A @ v, torch.ones(3, dtype=torch.float64), 3).smallest
        >>> abs(smallest - (-1.0)) < 1e-12  # three iterations span the whole space
        True
    """
    iterations = check_int("iterations", iterations, low=1)
    start = start.detach().reshape(-1)
    norm = vector_norm(start)
    if not float(norm) > 0:
        raise ValueError("start must be a nonzero vector")
    basis: list[Tensor] = [start / norm]
    alphas: list[float] = []
    betas: list[float] = []
    scale = 0.0
    steps = min(iterations, start.numel())
    for j in range(steps):
        q = basis[j]
        w = matvec(q).reshape(-1).to(q.dtype)
        alpha = torch.dot(q, w)
        if j == steps - 1:  # the last residual would be measured only to be dropped
            alphas.append(float(alpha))
            break
        w = w - alpha * q
        if j > 0:
            w = w - betas[j - 1] * basis[j - 1]
        stacked = torch.stack(basis, dim=1)
        for _ in range(2):  # twice is enough (Parlett's "twice is enough")
            w = w - stacked @ (stacked.T @ w)
        alpha_f, beta_f = torch.stack([alpha, vector_norm(w)]).double().tolist()
        alphas.append(alpha_f)
        scale = max(scale, abs(alpha_f), beta_f)
        if beta_f <= 1e-10 * max(scale, 1e-300):  # the Krylov space is exhausted
            break
        betas.append(beta_f)
        basis.append(w / beta_f)
    m = len(alphas)
    tri = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if m > 1:
        off = torch.tensor(betas[: m - 1], dtype=torch.float64)
        tri = tri + torch.diag(off, 1) + torch.diag(off, -1)
    values, coefficients = torch.linalg.eigh(tri)
    q_m = torch.stack(basis[:m], dim=1)
    vectors = q_m @ coefficients.to(device=q_m.device, dtype=q_m.dtype)
    return Spectrum(values=values, vectors=vectors, iterations=m)


def hessian_operator(
    loss_fn: Callable[[], Tensor], params: Sequence[Tensor]
) -> Callable[[], MatVec]:
    r"""A factory of exact Hessian-vector products :math:`v \mapsto \nabla^2 f\,v` at ``params``.

    Calling the factory evaluates f and its gradient once with a graph
    (``create_graph=True``); each product of the returned operator is then one more
    backward pass through that graph. Works on flat vectors; leaves ``p.grad`` alone.
    """
    params = list(params)

    def build() -> MatVec:
        with torch.enable_grad():
            loss = loss_fn()
            grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
        live = [(i, g) for i, g in enumerate(grads) if g is not None and g.requires_grad]
        sizes = [p.numel() for p in params]

        def matvec(v: Tensor) -> Tensor:
            if not live:
                return torch.zeros_like(v)
            pieces = torch.split(v, sizes)
            with torch.enable_grad():
                out = torch.autograd.grad(
                    [g for _, g in live],
                    params,
                    grad_outputs=[pieces[i].view_as(params[i]) for i, _ in live],
                    retain_graph=True,
                    allow_unused=True,
                )
            return torch.cat(
                [
                    (torch.zeros_like(p) if h is None else h.detach()).reshape(-1)
                    for p, h in zip(params, out)
                ]
            )

        return matvec

    return build


def hessian_spectrum(
    loss_fn: Callable[[], Tensor] | None,
    params: Sequence[Tensor],
    iterations: int = 10,
    seed: int = 0,
) -> Spectrum | None:
    """Lanczos Ritz pairs of the Hessian of ``loss_fn`` at ``params`` (None if unavailable).

    ``iterations`` Hessian-vector products (at most the number of parameters) from a
    start vector drawn with ``seed``; None when there is no ``loss_fn`` or f is not twice
    differentiable by autograd.
    """
    params = list(params)
    if loss_fn is None or not params:
        return None
    n = sum(p.numel() for p in params)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    start = torch.randn(n, generator=generator, dtype=torch.float64)
    start = start.to(device=params[0].device, dtype=params[0].dtype)
    try:
        operator = hessian_operator(loss_fn, params)()
        return lanczos(operator, start, min(iterations, n))
    except RuntimeError:
        return None
