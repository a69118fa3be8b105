r"""Step sizes from curvature bounds: the :math:`1/L` step of (proximal) gradient descent.

If :math:`\nabla f` is :math:`L`-Lipschitz, :math:`\|\nabla f(x) - \nabla f(y)\|_2 \le
L\|x - y\|_2`, a gradient or proximal gradient step of length :math:`\eta \le 1/L` never
increases :math:`f` (the descent lemma, :math:`f(x - \eta g) \le f(x) - \eta(1 -
L\eta/2)\|g\|^2`), and :math:`\eta = 1/L` gives ISTA's :math:`O(1/k)` rate. For a twice
differentiable :math:`f`, :math:`L = \sup_x \lambda_{\max}(\nabla^2 f(x))`.

* :func:`largest_eigenvalue`: :math:`\lambda_{\max}` of a symmetric positive semi-definite
  operator, a matrix (exactly, by ``eigvalsh``) or a matrix-vector product such as a
  Hessian-vector product (by power iteration).
* :func:`lipschitz_constant`: :math:`L` for a linear model :math:`z = Xw + b` under a loss
  whose second derivative in :math:`z` is at most :math:`c` (squared error 1, logistic
  1/4, multinomial 1/2, squared hinge 2), with sample weights and an L2 term.

Example:
    >>> lr = 1.0 / lipschitz_constant(X, curvature=0.25, fit_intercept=True)  # logistic
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from descend.validation import check_int, check_non_negative

#: a Gram matrix up to this size is decomposed exactly; above it, power iteration
EXACT_MAX_DIM = 512
#: power iteration approaches lambda_max from below: the estimate is raised by this factor
POWER_MARGIN = 1.1


@torch.no_grad()
def largest_eigenvalue(
    operator: Tensor | Callable[[Tensor], Tensor],
    dim: int | None = None,
    *,
    iterations: int = 50,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> float:
    r""":math:`\lambda_{\max}` of a symmetric positive semi-definite operator.

    A matrix is decomposed exactly (``torch.linalg.eigvalsh``). A function ``v -> A v``
    (e.g. a Hessian-vector product) is power-iterated: :math:`v \leftarrow Av/\|Av\|_2`
    from a seeded random start, returning :math:`\|Av\|_2` for the last unit :math:`v`,
    which approaches :math:`\lambda_{\max}` from below at the rate
    :math:`(\lambda_2/\lambda_{\max})^k`.

    Args:
        operator: a symmetric (n, n) tensor, or a function of a vector of length ``dim``.
        dim: the vector length, needed for a function.
        iterations: power iterations, >= 1.
        dtype, device: of the start vector (for a function).
        seed: of the start vector: the same seed gives the same estimate.

    Example:
        >>> largest_eigenvalue(torch.diag(torch.tensor([1.0, 3.0])))
        3.0
    """
    if isinstance(operator, Tensor):
        if operator.ndim != 2 or operator.shape[0] != operator.shape[1]:
            raise ValueError(f"operator must be a square matrix, got shape {tuple(operator.shape)}")
        return float(torch.linalg.eigvalsh(operator)[-1])
    if dim is None:
        raise ValueError("dim (the vector length) is needed when operator is a function")
    dim = check_int("dim", dim, low=1)
    iterations = check_int("iterations", iterations, low=1)
    generator = torch.Generator().manual_seed(seed)
    v = torch.randn(dim, generator=generator, dtype=dtype).to(device or "cpu")
    v /= torch.linalg.vector_norm(v)
    top = 0.0
    for _ in range(iterations):
        w = operator(v)
        top = float(torch.linalg.vector_norm(w))
        if top == 0 or not math.isfinite(top):
            break
        v = w / top
    return top


@torch.no_grad()
def lipschitz_constant(
    X: Tensor,
    *,
    weights: Tensor | None = None,
    curvature: float = 1.0,
    l2: float = 0.0,
    fit_intercept: bool = False,
    exact_max_dim: int = EXACT_MAX_DIM,
) -> float:
    r"""An upper bound of the gradient's Lipschitz constant for a linear model,

    .. math::
        L = c\,\lambda_{\max}\big(\tilde X^\top S \tilde X / n\big) + \lambda_2,

    for :math:`f(w) = \frac1n\sum_i s_i\,\ell(\tilde x_i^\top w) + \frac{\lambda_2}2\|w\|^2`
    with :math:`\ell'' \le c`: :math:`\tilde X` is ``X`` with a column of ones when
    ``fit_intercept``, :math:`S = \operatorname{diag}(s)` the sample weights. Exact
    (``eigvalsh`` of the Gram matrix) up to ``exact_max_dim`` columns; above, power
    iteration on :math:`v \mapsto \tilde X^\top S \tilde X v / n`, raised by
    :data:`POWER_MARGIN` since it approaches from below.

    Args:
        X: the (n, d) features.
        weights: the sample weights (n,), >= 0 (None: all 1).
        curvature: :math:`c \ge 0`, the bound of the loss's second derivative in the output.
        l2: :math:`\lambda_2 \ge 0`.
        fit_intercept: the model has an intercept (a column of ones).
        exact_max_dim: the largest width decomposed exactly.

    Returns:
        :math:`L`, at least ``1e-12`` (so :math:`1/L` is finite).

    Example:
        >>> lipschitz_constant(X, curvature=1.0, fit_intercept=True)  # least squares
    """
    check_non_negative("curvature", curvature)
    check_non_negative("l2", l2)
    Xd = X.detach().to(torch.float64)
    n = Xd.shape[0]
    if fit_intercept:
        Xd = torch.cat([Xd, torch.ones(n, 1, dtype=torch.float64, device=Xd.device)], dim=1)
    if weights is not None:
        Xd = Xd * weights.to(Xd).sqrt().reshape(-1, 1)
    d = Xd.shape[1]
    if d <= exact_max_dim:
        top = largest_eigenvalue(Xd.T @ Xd / n)
    else:
        top = POWER_MARGIN * largest_eigenvalue(lambda v: Xd.T @ (Xd @ v) / n, d, device=Xd.device)
    return max(curvature * top + l2, 1e-12)
