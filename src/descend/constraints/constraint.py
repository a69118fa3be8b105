r"""A closed convex feasible set :math:`C`, known by its Euclidean projection.

Every set in :mod:`descend.constraints` answers the same questions, and the descent
methods need nothing else:

* the projection :math:`P_C(x) = \arg\min_{z \in C} \|z - x\|_2`;
* the projected gradient :math:`P_C(x - \nabla f(x)) - x`, which is zero exactly at the
  points that satisfy the first-order conditions of :math:`\min_{x \in C} f(x)` (for a
  convex :math:`C`; Bertsekas, *Nonlinear Programming*, 3rd ed., Prop. 1.1.3 and 2.1.2);
  its largest component is SciPy's L-BFGS-B ``pgtol`` test;
* which coordinates sit on a bound (the active set).

A set applies to a tensor of any shape, coordinate by coordinate in its flattened order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor


class Constraint(ABC):
    """A closed convex set with a Euclidean projection (see the module's docstring)."""

    #: the number of coordinates the set is defined for; None: any number
    size: int | None = None

    @abstractmethod
    def project(self, x: Tensor) -> Tensor:
        r""":math:`P_C(x)`, a new tensor of ``x``'s shape, dtype and device."""

    @abstractmethod
    def active(self, x: Tensor) -> Tensor:
        """Which coordinates of ``x`` sit on a bound: an int64 tensor of ``x``'s shape, -1 at
        a lower bound, 1 at an upper bound, 0 elsewhere (SciPy's ``active_mask``)."""

    @torch.no_grad()
    def project_(self, x: Tensor) -> Tensor:
        """Project ``x`` in place (also a leaf that requires grad) and return it."""
        x.copy_(self.project(x.detach()))
        return x

    @torch.no_grad()
    def project_rows_(self, rows: Tensor) -> Tensor:
        """Project each row of a (K, n) tensor in place (K points, e.g. K restarts stepped
        together) and return it."""
        for row in rows:
            self.project_(row)
        return rows

    def projected_gradient(self, x: Tensor, grad: Tensor) -> Tensor:
        r""":math:`P_C(x - g) - x`: zero exactly at a stationary point of f on C."""
        x = x.detach()
        return self.project(x - grad) - x

    def contains(self, x: Tensor, atol: float = 0.0) -> bool:
        """Whether ``x`` lies in the set, within ``atol`` in each coordinate."""
        x = x.detach()
        return bool(torch.linalg.vector_norm(self.project(x) - x, ord=float("inf")) <= atol)

    def check_size(self, n: int, name: str = "bounds", against: str = "x0") -> None:
        """Refuse a set made for another number of coordinates than ``n`` (those of
        ``against``)."""
        if self.size is not None and self.size != n:
            raise ValueError(
                f"{name} has {self.size} (low, high) pairs but {against} has {n} coordinates; "
                "give one pair per coordinate"
            )
