r"""The residuals of one run: :math:`f(x)` with its evaluations counted, and its Jacobian
:math:`J = \partial f / \partial x` by autodiff, the user's function, or matrix-free."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from descend.least_squares.losses import RobustLoss, cost_of
from descend.least_squares.operator import Jacobian, JacobianOperator, scale


class Residuals:
    r"""The residual vector :math:`f: \mathbb{R}^n \to \mathbb{R}^m` the solvers call.

    Jacobians: the user's ``jac`` if given; else, matrix-free, a :class:`JacobianOperator`
    (forward and reverse products, never the matrix); else the dense matrix by
    ``torch.func.jacfwd`` when :math:`m \ge n` (n forward passes) or ``jacrev`` when
    :math:`m < n` (m backward passes), whichever takes fewer.

    Attributes:
        nfev, njev: evaluations of :math:`f` and of :math:`J` so far (the evaluations
            autodiff makes inside a Jacobian are not counted in ``nfev``, as SciPy counts
            none of a finite-difference Jacobian's).
    """

    def __init__(
        self,
        fun: Callable[[Tensor], Tensor],
        jac: Callable[[Tensor], Tensor] | None = None,
        *,
        matrix_free: bool = False,
    ) -> None:
        self.fun = fun
        self.jac = jac
        self.matrix_free = matrix_free
        self.nfev = 0
        self.njev = 0

    def __call__(self, x: Tensor) -> Tensor:
        self.nfev += 1
        return self.fun(x)

    def jacobian(self, x: Tensor, m: int) -> Jacobian:
        r""":math:`J(x)`, for :math:`m` residuals."""
        self.njev += 1
        if self.jac is not None:
            jac = self.jac(x)
            if tuple(jac.shape) != (m, x.numel()):
                raise ValueError(
                    f"jac returned shape {tuple(jac.shape)}; expected (m, n) = {(m, x.numel())}"
                )
            return jac
        if self.matrix_free:
            return JacobianOperator(self.fun, x)
        transform = torch.func.jacfwd if m >= x.numel() else torch.func.jacrev
        # jacfwd can promote float32 to float64 (seen with torch 2.13 on x ** 2)
        return transform(self.fun)(x).to(x.dtype)

    def linearize(
        self, x: Tensor, f: Tensor, loss: RobustLoss | None
    ) -> tuple[Jacobian, Tensor, float]:
        r"""At ``x`` (where the residuals are ``f``): the Jacobian, the residuals and the cost,
        the first two rescaled for the robust loss (:math:`\tilde J, \tilde f`)."""
        jac = self.jacobian(x, f.numel())
        if loss is None:
            return jac, f, cost_of(f, None)
        row_scale, f_tilde = loss.rescale(f)
        return scale(jac, rows=row_scale), f_tilde, cost_of(f, loss)
