r"""Damped linear least squares by conjugate gradients, matrix-free: the inner solver of the
trust-region methods for large problems (``tr_solver="lsmr"``, SciPy's name for its
LSMR-based solver; CGLS reaches the same solution with the same products).

CGLS is conjugate gradients on the normal equations

.. math:: (J^\top J + \operatorname{diag}(\lambda)^2)\, x = J^\top b

of :math:`\min_x \|Jx - b\|^2 + \|\operatorname{diag}(\lambda) x\|^2`, arranged so that
:math:`J^\top J` is never formed: each iteration takes one product :math:`Jp` and one
:math:`J^\top r`. With :math:`r = b - Jx` and :math:`s = J^\top r - \lambda^2 x`:

.. math:: \alpha = \frac{\|s\|^2}{\|Jp\|^2 + \|\lambda p\|^2}, \quad x \mathrel{+}= \alpha p,
          \quad r \mathrel{-}= \alpha Jp, \quad p \leftarrow s_+ + \frac{\|s_+\|^2}{\|s\|^2} p.

Reference: Å. Björck, *Numerical Methods for Least Squares Problems*, SIAM 1996, 7.4.
"""

from __future__ import annotations

import torch
from torch import Tensor

from descend.least_squares.operator import Jacobian, matvec, rmatvec


def cgls(
    jac: Jacobian,
    b: Tensor,
    damp: Tensor | None = None,
    *,
    rtol: float = 1e-6,
    max_iter: int | None = None,
) -> Tensor:
    r"""The minimizer of :math:`\|Jx - b\|^2 + \|\operatorname{diag}(\text{damp})\,x\|^2`.

    Args:
        jac: the matrix :math:`J` (m x n), dense or a :class:`JacobianOperator`.
        b: the right-hand side (m).
        damp: per-coordinate damping :math:`\lambda \ge 0` (n), or None for none.
        rtol: stop when the normal-equation residual :math:`\|s\|` has fallen by this factor.
        max_iter: iterations (default n, where exact arithmetic would have converged).

    Example:
        >>> cgls(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([2.0, 3.0]))
        tensor([1., 3.])
    """
    n = jac.shape[1]
    damp2 = None if damp is None else damp.square()
    x = torch.zeros(n, dtype=b.dtype, device=b.device)
    r = b.clone()
    s = rmatvec(jac, r)
    p = s.clone()
    gamma = float(s @ s)
    stop = rtol**2 * gamma
    for _ in range(n if max_iter is None else max_iter):
        if gamma <= stop or gamma == 0.0:
            break
        q = matvec(jac, p)
        curvature = float(q @ q) + (0.0 if damp2 is None else float((damp2 * p) @ p))
        if curvature <= 0.0:
            break
        alpha = gamma / curvature
        x = x + alpha * p
        r = r - alpha * q
        s = rmatvec(jac, r)
        if damp2 is not None:
            s = s - damp2 * x
        gamma_next = float(s @ s)
        p = s + (gamma_next / gamma) * p
        gamma = gamma_next
    return x
