r"""The simplex :math:`\{x : x \ge 0,\ \sum_i x_i = s\}` (probability vectors for s = 1,
long-only portfolios fully invested).

The projection is the sort-based algorithm of Held, Wolfe & Crowder (1974), as stated by
Duchi, Shalev-Shwartz, Singer & Chandra, "Efficient projections onto the l1-ball for
learning in high dimensions", ICML 2008, Fig. 1: with :math:`u` the coordinates of
:math:`x` sorted in decreasing order,

.. math::
    \rho = \max\Big\{j : u_j - \tfrac1j\big(\textstyle\sum_{r \le j} u_r - s\big) > 0\Big\},
    \qquad \theta = \tfrac1\rho\big(\textstyle\sum_{r \le \rho} u_r - s\big),
    \qquad P(x)_i = \max(x_i - \theta, 0).

The condition holds exactly for :math:`j \le \rho`, so :math:`\rho` is the count of the
indices where it holds: :math:`O(n \log n)`, no loop and no host synchronization.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from descend.constraints.constraint import Constraint


class Simplex(Constraint):
    r"""The simplex :math:`x \ge 0,\ \sum_i x_i =` ``total`` over all coordinates of x.

    Args:
        total: the sum :math:`s > 0` (1: probability vectors, portfolio weights).

    Example:
        >>> Simplex().project(torch.tensor([0.5, 1.0, -1.0]))  # tensor([0.25, 0.75, 0.])
    """

    def __init__(self, total: float = 1.0) -> None:
        if isinstance(total, bool) or not isinstance(total, (int, float)):
            raise TypeError(f"Simplex: total must be a positive number, got {total!r}")
        if not (math.isfinite(total) and total > 0):
            raise ValueError(f"Simplex: total must be a finite number > 0, got {total!r}")
        self.total = float(total)

    def project(self, x: Tensor) -> Tensor:
        return self._project_last(x.reshape(1, -1)).reshape(x.shape)

    @torch.no_grad()
    def project_rows_(self, rows: Tensor) -> Tensor:
        rows.copy_(self._project_last(rows.detach()))
        return rows

    def _project_last(self, v: Tensor) -> Tensor:
        """The projection of each row of the (K, n) tensor ``v``."""
        u = torch.sort(v, dim=-1, descending=True).values
        excess = torch.cumsum(u, -1) - self.total
        index = torch.arange(1, v.shape[-1] + 1, dtype=v.dtype, device=v.device)
        rho = (u - excess / index > 0).sum(-1, keepdim=True).clamp_min(1)
        theta = excess.gather(-1, rho - 1) / rho.to(v.dtype)
        return torch.clamp(v - theta, min=0.0)

    def active(self, x: Tensor) -> Tensor:
        return -(x.detach() <= 0).to(torch.int64)

    def __repr__(self) -> str:
        return f"Simplex(total={self.total:g})"
