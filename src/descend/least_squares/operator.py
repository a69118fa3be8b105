r"""The Jacobian of the residuals, dense or matrix-free, and the products the solvers take.

A dense Jacobian is a tensor :math:`J \in \mathbb{R}^{m \times n}`. A matrix-free one is a
:class:`JacobianOperator`: :math:`v \mapsto Jv` by forward-mode autodiff
(``torch.func.jvp``, one pass of the residuals' cost) and :math:`u \mapsto J^\top u` by
reverse mode (one ``torch.func.vjp`` at :math:`x`, its backward pass reused for every
product), so memory stays :math:`O(m + n)` however large the problem. Either kind can carry
diagonal scalings on both sides, :math:`\operatorname{diag}(r)\, J \operatorname{diag}(c)`,
which the robust losses (rows) and the trust-region scalings (columns) need.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch import Tensor


class JacobianOperator:
    r""":math:`\operatorname{diag}(r)\, J(x) \operatorname{diag}(c)` for residuals ``fun`` at
    ``x``, applied without forming :math:`J`.

    Attributes:
        shape: ``(m, n)``.

    Example:
        >>> op = JacobianOperator(lambda x: x.square(), torch.tensor([1.0, 2.0]))
        >>> op.matvec(torch.ones(2))  # tensor([2., 4.])
    """

    def __init__(
        self,
        fun: Callable[[Tensor], Tensor],
        x: Tensor,
        rows: Tensor | None = None,
        cols: Tensor | None = None,
        _vjp: Callable[[Tensor], tuple[Tensor, ...]] | None = None,
        _m: int | None = None,
    ) -> None:
        self._fun = fun
        self._x = x
        if _vjp is None:
            # torch's stub allows a third value, which only has_aux=True returns
            f, _vjp = torch.func.vjp(fun, x)  # type: ignore[misc]
            _m = f.numel()
        assert _m is not None  # given with _vjp
        self._vjp = _vjp
        self.shape = (_m, x.numel())
        self.rows = rows
        self.cols = cols

    def scaled(self, rows: Tensor | None = None, cols: Tensor | None = None) -> JacobianOperator:
        """This operator with further diagonal scalings (``rows`` left, ``cols`` right)."""
        return JacobianOperator(
            self._fun,
            self._x,
            _combine(self.rows, rows),
            _combine(self.cols, cols),
            self._vjp,
            self.shape[0],
        )

    def matvec(self, v: Tensor) -> Tensor:
        r""":math:`\operatorname{diag}(r) J \operatorname{diag}(c)\, v`."""
        if self.cols is not None:
            v = self.cols * v
        out = torch.func.jvp(self._fun, (self._x,), (v,))[1].to(self._x.dtype)
        return out if self.rows is None else self.rows * out

    def rmatvec(self, u: Tensor) -> Tensor:
        r""":math:`\operatorname{diag}(c) J^\top \operatorname{diag}(r)\, u`."""
        if self.rows is not None:
            u = self.rows * u
        out = self._vjp(u)[0]
        return out if self.cols is None else self.cols * out

    def dense(self) -> Tensor:
        """The matrix, column by column (n forward passes): for inspection, not the solvers."""
        eye = torch.eye(self.shape[1], dtype=self._x.dtype, device=self._x.device)
        return torch.stack([self.matvec(e) for e in eye], dim=1)

    def __repr__(self) -> str:
        return f"JacobianOperator(shape={self.shape}, dtype={self._x.dtype})"


#: a Jacobian as the solvers take it
Jacobian = Tensor | JacobianOperator


def matvec(jac: Jacobian, v: Tensor) -> Tensor:
    r""":math:`J v`."""
    return jac @ v if isinstance(jac, Tensor) else jac.matvec(v)


def rmatvec(jac: Jacobian, u: Tensor) -> Tensor:
    r""":math:`J^\top u`."""
    return u @ jac if isinstance(jac, Tensor) else jac.rmatvec(u)


def scale(jac: Jacobian, rows: Tensor | None = None, cols: Tensor | None = None) -> Jacobian:
    r""":math:`\operatorname{diag}(\text{rows})\, J \operatorname{diag}(\text{cols})`."""
    if isinstance(jac, JacobianOperator):
        return jac.scaled(rows, cols)
    if rows is not None:
        jac = rows[:, None] * jac
    if cols is not None:
        jac = jac * cols
    return jac


def known_dense(jac: Jacobian) -> Tensor:
    """``jac`` on a path that needs its entries (method ``"lm"``, ``tr_solver="exact"``,
    ``x_scale="jac"``), which ``least_squares`` never runs matrix-free."""
    return cast(Tensor, jac)


def column_norms(jac: Tensor) -> Tensor:
    r""":math:`\|J_{:,j}\|_2` for each column j."""
    return torch.linalg.vector_norm(jac, dim=0)


def jacobian_scale(jac: Tensor, previous: Tensor | None = None) -> Tensor:
    r"""The variables' inverse scale from the Jacobian (Moré 1977): the column norms
    :math:`\|J_{:,j}\|` (1 where a column is zero), or their running maximum with
    ``previous``."""
    norms = column_norms(jac)
    if previous is None:
        return torch.where(norms == 0, 1.0, norms)
    return torch.maximum(norms, previous)


def _combine(old: Tensor | None, new: Tensor | None) -> Tensor | None:
    if old is None:
        return new
    return old if new is None else old * new
