"""A test problem: a function with known minima, a standard start and plotting bounds."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass(frozen=True)
class Problem:
    """A benchmark function of ``x`` (shape ``(..., n)``) returning shape ``(...)``.

    The function is batched over leading dimensions, so a grid for a contour plot or a
    batch of restarts is evaluated in one call.

    Attributes:
        name: registry key (``"rosenbrock"``).
        fn: the function, written with torch ops (autodiff gives the gradient).
        dim: the dimension ``n``.
        minima: the known global (and, where listed, local) minimizers, each a tuple.
        f_min: the global minimum value f*.
        start: the standard starting point.
        bounds: per-coordinate ``(low, high)`` for plots and random starts.
        description: one line for tables.
        reference: where the function and its minima are published.
        local_minima: known local (non-global) minimizers, each a tuple.
        saddles: known saddle points (and other non-minimal stationary points).
    """

    name: str
    fn: Callable[[Tensor], Tensor]
    dim: int
    minima: tuple[tuple[float, ...], ...]
    f_min: float
    start: tuple[float, ...]
    bounds: tuple[tuple[float, float], ...]
    description: str = ""
    reference: str = ""
    local_minima: tuple[tuple[float, ...], ...] = field(default=())
    saddles: tuple[tuple[float, ...], ...] = field(default=())

    def __call__(self, x: Tensor) -> Tensor:
        """f at ``x`` of shape ``(..., dim)``; the result has shape ``(...)``."""
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise ValueError(
                f"problem {self.name!r} takes x of shape (..., {self.dim}), "
                f"got shape {tuple(x.shape)}"
            )
        return self.fn(x)

    def x0(self, dtype: torch.dtype = torch.float64) -> Tensor:
        """The standard start as a tensor."""
        return torch.tensor(self.start, dtype=dtype)

    def distance_to_minimum(self, x: Sequence[float] | Tensor) -> float:
        """Euclidean distance from ``x`` to the nearest known global minimizer.

        NaN when the problem has no minimizer (``f_min = -inf``, as for the monkey saddle).
        """
        if not self.minima:
            return math.nan
        point = torch.as_tensor(x, dtype=torch.float64).reshape(-1)
        return min(
            torch.linalg.vector_norm(point - torch.tensor(m, dtype=torch.float64)).item()
            for m in self.minima
        )
