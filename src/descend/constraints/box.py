r"""Boxes :math:`\{x : l \le x \le u\}`, and the nonnegative orthant :math:`l = 0, u = \infty`.

The projection clips each coordinate: :math:`P(x)_i = \min(\max(x_i, l_i), u_i)`.
Infinite entries of :math:`l` and :math:`u` leave a side open; :math:`l_i = u_i` fixes
:math:`x_i`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from descend.constraints.constraint import Constraint


class Box(Constraint):
    r"""The box :math:`l \le x \le u`, coordinate by coordinate.

    Args:
        low: the lower bounds :math:`l`: one number for every coordinate, or one per
            coordinate (a sequence, array or tensor); ``-inf`` or None: unbounded below.
        high: the upper bounds :math:`u`, likewise (``inf`` or None: unbounded above).

    Example:
        >>> box = Box([0.0, -1.0], [1.0, math.inf])
        >>> box.project(torch.tensor([2.0, -3.0]))  # tensor([1., -1.])
    """

    def __init__(self, low: Any = -math.inf, high: Any = math.inf) -> None:
        self.low = _bounds_vector("low", low, -math.inf)
        self.high = _bounds_vector("high", high, math.inf)
        if self.low.dim() == 1 and self.high.dim() == 1 and len(self.low) != len(self.high):
            raise ValueError(
                f"low has {len(self.low)} entries but high has {len(self.high)}; give one "
                "per coordinate (or a single number) for each"
            )
        crossed = self.low > self.high
        if crossed.any():
            i = int(crossed.reshape(-1).nonzero()[0])
            lo = self.low.reshape(-1)[min(i, self.low.numel() - 1)].item()
            hi = self.high.reshape(-1)[min(i, self.high.numel() - 1)].item()
            where = f" at coordinate {i}" if crossed.dim() == 1 else ""
            raise ValueError(f"bounds: low > high{where} ({lo:g} > {hi:g}); need low <= high")
        sizes = {t.numel() for t in (self.low, self.high) if t.dim() == 1}
        self.size = sizes.pop() if sizes else None

    def lower(self, like: Tensor) -> Tensor:
        """:math:`l` with ``like``'s shape, dtype and device."""
        return _shaped(self.low, like)

    def upper(self, like: Tensor) -> Tensor:
        """:math:`u` with ``like``'s shape, dtype and device."""
        return _shaped(self.high, like)

    def project(self, x: Tensor) -> Tensor:
        self.check_size(x.numel())
        return torch.clamp(x, self.lower(x), self.upper(x))

    @torch.no_grad()
    def project_(self, x: Tensor) -> Tensor:
        self.check_size(x.numel())
        x.clamp_(self.lower(x), self.upper(x))
        return x

    @torch.no_grad()
    def project_rows_(self, rows: Tensor) -> Tensor:
        self.check_size(rows.shape[-1])
        like = rows[0]
        rows.clamp_(self.lower(like), self.upper(like))  # l and u broadcast over the rows
        return rows

    def active(self, x: Tensor) -> Tensor:
        x = x.detach()
        mask = torch.zeros_like(x, dtype=torch.int64)
        mask[x <= self.lower(x)] = -1
        mask[x >= self.upper(x)] = 1
        return mask

    def __repr__(self) -> str:
        return f"Box(low={_show(self.low)}, high={_show(self.high)})"


class NonNegative(Box):
    r"""The nonnegative orthant :math:`x \ge 0`, for any number of coordinates.

    Example:
        >>> NonNegative().project(torch.tensor([-1.0, 2.0]))  # tensor([0., 2.])
    """

    def __init__(self) -> None:
        super().__init__(0.0, math.inf)

    def __repr__(self) -> str:
        return "NonNegative()"


def _bounds_vector(name: str, value: Any, unbounded: float) -> Tensor:
    """``value`` as float64: a 0-d tensor for one number, a vector for one per coordinate;
    None entries are ``unbounded``."""
    if value is None:
        return torch.tensor(unbounded, dtype=torch.float64)
    if isinstance(value, Tensor):
        array = value.detach().cpu().to(torch.float64).numpy()
    else:
        try:
            array = np.asarray(
                [unbounded if v is None else v for v in value]
                if isinstance(value, (list, tuple))
                else value,
                dtype=np.float64,
            )
        except (TypeError, ValueError) as exc:
            raise TypeError(f"bounds: {name} must be numbers, got {value!r}: {exc}") from None
    if array.ndim > 1:
        raise ValueError(f"bounds: {name} must be a number or a vector, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"bounds: {name} is empty; give one bound per coordinate")
    if np.isnan(array).any():
        i = int(np.flatnonzero(np.isnan(array))[0]) if array.ndim else 0
        raise ValueError(f"bounds: {name} is NaN at coordinate {i}; use None or ±inf for no bound")
    return torch.from_numpy(array.copy())


def _shaped(bound: Tensor, like: Tensor) -> Tensor:
    bound = bound.to(dtype=like.dtype, device=like.device)
    return bound.expand(like.shape) if bound.dim() == 0 else bound.reshape(like.shape)


def _show(bound: Tensor) -> str:
    return f"{bound.item():g}" if bound.dim() == 0 else np.array2string(bound.numpy(), threshold=6)
