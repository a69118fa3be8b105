"""An ill-conditioned quadratic bowl with a chosen condition number."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from descend.problems.problem import Problem
from descend.problems.registry import register
from descend.validation import check_int, check_number

__all__ = ["QuadraticForm", "quadratic"]

#: the registered ``quadratic`` (2-D) and its family ``quadratic-<n>d`` use these
DEFAULT_CONDITION_NUMBER = 100.0
DEFAULT_SEED = 0


class QuadraticForm:
    r"""The function :math:`f(x) = \tfrac12 x^\top A x` for a symmetric matrix ``A``.

    Batched: ``x`` of shape ``(..., n)`` gives shape ``(...)``.

    Attributes:
        matrix: ``A`` (float64, shape ``(n, n)``), also the Hessian of f.
    """

    def __init__(self, matrix: Tensor) -> None:
        self.matrix = matrix

    def __call__(self, x: Tensor) -> Tensor:
        a = self.matrix.to(dtype=x.dtype, device=x.device)
        return 0.5 * ((x @ a) * x).sum(-1)

    def __repr__(self) -> str:
        return f"QuadraticForm(n={self.matrix.shape[0]})"


def quadratic(n: int, condition_number: float, seed: int | None = None) -> Problem:
    r"""An n-dimensional quadratic bowl whose Hessian has condition number ``condition_number``.

    .. math:: f(x) = \tfrac12 x^\top A x, \quad A = Q\,\mathrm{diag}(\lambda_1..\lambda_n)\,Q^\top,
              \quad \lambda_i = \kappa^{(i-1)/(n-1)}

    The eigenvalues are log-spaced from 1 to :math:`\kappa`, so :math:`\kappa(A) = \kappa`
    exactly. With a ``seed``, ``Q`` is a random orthogonal matrix (Haar-distributed, from
    the QR factorization of a Gaussian matrix drawn with a ``torch.Generator`` seeded by
    ``seed``), so the valley is not aligned with the axes; without one, ``Q = I``. The
    minimum is f = 0 at x = 0; the start is (1, ..., 1). Gradient descent with step
    :math:`\eta \le 2/\kappa` contracts the slowest direction by :math:`1 - \eta` per step,
    so it needs on the order of :math:`\kappa` steps: the textbook case for momentum.

    Args:
        n: the dimension, an integer >= 1.
        condition_number: :math:`\kappa \ge 1` (must be 1 when n = 1).
        seed: an integer >= 0 for a rotated bowl, or None for a diagonal one.

    Example:
        >>> p = quadratic(10, 1e3, seed=0)
        >>> torch.linalg.cond(p.fn.matrix)  # tensor(1000.0000, dtype=torch.float64)
    """
    n = check_int("n", n, low=1)
    kappa = check_number("condition_number", condition_number, low=1.0)
    if n == 1 and kappa != 1.0:
        raise ValueError(
            f"condition_number must be 1 when n = 1 (one eigenvalue), got {condition_number!r}"
        )
    if seed is not None:
        seed = check_int("seed", seed, low=0)

    eigenvalues = torch.logspace(0.0, math.log10(kappa), n, dtype=torch.float64)
    if seed is None:
        matrix = torch.diag(eigenvalues)
    else:
        generator = torch.Generator().manual_seed(seed)
        gaussian = torch.randn(n, n, generator=generator, dtype=torch.float64)
        q, r = torch.linalg.qr(gaussian)
        # Fixing the signs of R's diagonal makes Q Haar-distributed, not just orthogonal.
        q = q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, 1.0)
        matrix = (q * eigenvalues) @ q.T
        matrix = 0.5 * (matrix + matrix.T)

    default = (kappa, seed) == (DEFAULT_CONDITION_NUMBER, DEFAULT_SEED)
    if default:
        name = "quadratic" if n == 2 else f"quadratic-{n}d"
    else:
        name = f"quadratic-{n}d-kappa{kappa:g}" + ("" if seed is None else f"-seed{seed}")
    layout = "diagonal" if seed is None else f"rotated (seed {seed})"
    return Problem(
        name=name,
        fn=QuadraticForm(matrix),
        dim=n,
        minima=((0.0,) * n,),
        f_min=0.0,
        start=(1.0,) * n,
        bounds=((-1.5, 1.5),) * n,
        description=f"ill-conditioned bowl 1/2 x'Ax, condition number {kappa:g}, {layout}",
        reference="eigenvalues log-spaced in [1, kappa]; Nocedal & Wright, Numerical "
        "Optimization, 2nd ed., sec. 3.3 (steepest descent on quadratics)",
    )


def _default_family(n: int) -> Problem:
    return quadratic(n, DEFAULT_CONDITION_NUMBER, seed=DEFAULT_SEED)


register(_default_family(2), family=_default_family)
