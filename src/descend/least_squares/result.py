"""What :func:`descend.least_squares` returns."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor

from descend.least_squares.operator import Jacobian


@dataclass
class Solution:
    """A solver's answer, in tensors (the front end turns it into the caller's kind).

    ``fun`` holds the residuals before any robust-loss rescaling; ``jac`` and ``grad`` are
    those the solver worked with (rescaled by the loss, as SciPy's are).
    """

    x: Tensor
    cost: float
    fun: Tensor
    jac: Jacobian
    grad: Tensor
    optimality: float
    active_mask: Tensor
    status: int


@dataclass
class LeastSquaresResult(Mapping[str, Any]):
    r"""The outcome of :func:`descend.least_squares`; also a read-only mapping, as SciPy's is.

    Attributes:
        x: the solution, of the kind ``x0`` was given as (NumPy for lists and arrays).
        cost: :math:`F(x) = \tfrac12 \sum_i C^2 \rho(f_i^2 / C^2)` (half the sum of squares
            for the linear loss).
        fun: the residuals :math:`f(x)`.
        jac: the Jacobian at ``x`` (rescaled by the robust loss, so that :math:`J^\top J` is
            the Gauss-Newton Hessian of the cost); a
            :class:`~descend.least_squares.operator.JacobianOperator` when the run was
            matrix-free (``tr_solver="lsmr"`` without ``jac=``).
        grad: the gradient of the cost at ``x``.
        optimality: the first-order measure the gtol test read (the infinity norm of the
            gradient, scaled by the distance to the bounds for ``trf``, of its free part for
            ``dogbox``; for ``lm``, the infinity norm of the gradient).
        active_mask: per coordinate, -1 at a lower bound, 1 at an upper bound, else 0.
        nfev, njev: evaluations of the residuals and of the Jacobian.
        status: -1..4 as SciPy's (see :mod:`descend.least_squares.status`); ``success`` is
            ``status > 0``.
        message: the status in words.
        method: ``"lm"``, ``"trf"`` or ``"dogbox"``.
        time: seconds the run took.
    """

    x: Any
    cost: float
    fun: Any
    jac: Any
    grad: Any
    optimality: float
    active_mask: Any
    nfev: int
    njev: int
    status: int
    message: str
    method: str = ""
    time: float = 0.0

    @property
    def success(self) -> bool:
        return self.status > 0

    def keys(self) -> KeysView[str]:
        return dict.fromkeys(self).keys()

    def items(self) -> ItemsView[str, Any]:
        return {key: self[key] for key in self}.items()

    def values(self) -> ValuesView[Any]:
        return {key: self[key] for key in self}.values()

    def __iter__(self) -> Iterator[str]:
        return iter(RESULT_KEYS)

    def __len__(self) -> int:
        return len(RESULT_KEYS)

    def __getitem__(self, key: str) -> Any:
        if key not in RESULT_KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in RESULT_KEYS

    def __repr__(self) -> str:
        x = self.x.detach().cpu().numpy() if isinstance(self.x, Tensor) else self.x
        return (
            "LeastSquaresResult(\n"
            f"      method: {self.method}\n"
            f"      status: {self.status} ({'success' if self.success else 'failure'})\n"
            f"     message: {self.message}\n"
            f"        cost: {self.cost:.10g}\n"
            f"           x: {np.array2string(np.asarray(x), threshold=8, precision=6)}\n"
            f"  optimality: {self.optimality:.3e}\n"
            f"        nfev: {self.nfev}   njev: {self.njev}\n"
            f"        time: {self.time:.3g} s\n)"
        )


#: the mapping's keys, in SciPy's order, then descend's
RESULT_KEYS = (
    "x",
    "cost",
    "fun",
    "jac",
    "grad",
    "optimality",
    "active_mask",
    "nfev",
    "njev",
    "status",
    "message",
    "success",
    "method",
    "time",
)
