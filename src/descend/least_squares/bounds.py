r"""A box :math:`l \le x \le u` for least squares: distances to it, its active faces and the
Coleman-Li scaling that turns it into an unconstrained-looking problem.

Infinite entries of :math:`l` and :math:`u` leave a side open.
"""

from __future__ import annotations

import torch
from torch import Tensor


def in_bounds(x: Tensor, lb: Tensor, ub: Tensor) -> bool:
    r"""Whether :math:`l \le x \le u`."""
    return bool(((x >= lb) & (x <= ub)).all())


def unbounded(lb: Tensor, ub: Tensor) -> bool:
    """Whether the box is all of :math:`\\mathbb{R}^n`."""
    return bool((torch.isneginf(lb) & torch.isposinf(ub)).all())


def step_to_bound(x: Tensor, s: Tensor, lb: Tensor, ub: Tensor) -> tuple[float, Tensor]:
    r"""The largest :math:`t \ge 0` with :math:`x + t s` in the box, and which coordinates hit a
    bound there: ``(t, hits)`` with ``hits`` -1 (lower), 1 (upper) or 0, as int64."""
    moving = s != 0
    safe = torch.where(moving, s, 1.0)
    steps = torch.where(moving, torch.maximum((lb - x) / safe, (ub - x) / safe), torch.inf)
    t = float(steps.min())
    hits = (steps == t).to(torch.int64) * torch.sign(s).to(torch.int64)
    return t, hits


def active_constraints(x: Tensor, lb: Tensor, ub: Tensor, rtol: float = 1e-10) -> Tensor:
    r"""Which bounds hold at ``x``: -1 where :math:`x_i` is within ``rtol``
    :math:`\max(1, |l_i|)` of :math:`l_i` (and nearer it than :math:`u_i`), 1 likewise at
    :math:`u_i`, else 0 (int64). With ``rtol = 0``: exactly on or beyond the bound."""
    active = torch.zeros_like(x, dtype=torch.int64)
    if rtol == 0:
        active[x <= lb] = -1
        active[x >= ub] = 1
        return active
    lower_distance = x - lb
    upper_distance = ub - x
    lower_threshold = rtol * lb.abs().clamp_min(1.0)
    upper_threshold = rtol * ub.abs().clamp_min(1.0)
    lower = torch.isfinite(lb) & (lower_distance <= torch.minimum(upper_distance, lower_threshold))
    upper = torch.isfinite(ub) & (upper_distance <= torch.minimum(lower_distance, upper_threshold))
    active[lower] = -1
    active[upper] = 1
    return active


def strictly_feasible(x: Tensor, lb: Tensor, ub: Tensor, rstep: float = 1e-10) -> Tensor:
    r"""``x`` moved into the interior: each coordinate within ``rstep`` :math:`\max(1,|b|)` of a
    bound :math:`b` is put that far inside (``rstep = 0``: the next float inside); where the
    box is too narrow for that, the midpoint."""
    x = x.clone()
    active = active_constraints(x, lb, ub, rstep)
    lower = active == -1
    upper = active == 1
    if rstep == 0:
        x[lower] = torch.nextafter(lb[lower], ub[lower])
        x[upper] = torch.nextafter(ub[upper], lb[upper])
    else:
        x[lower] = lb[lower] + rstep * lb[lower].abs().clamp_min(1.0)
        x[upper] = ub[upper] - rstep * ub[upper].abs().clamp_min(1.0)
    outside = (x < lb) | (x > ub)
    x[outside] = 0.5 * (lb[outside] + ub[outside])
    return x


def coleman_li_scaling(x: Tensor, g: Tensor, lb: Tensor, ub: Tensor) -> tuple[Tensor, Tensor]:
    r"""The Coleman-Li scaling vector :math:`v` and its derivative :math:`\partial v_i/\partial
    x_i`.

    .. math:: v_i = \begin{cases} u_i - x_i & g_i < 0,\ u_i < \infty \\
                                  x_i - l_i & g_i > 0,\ l_i > -\infty \\
                                  1 & \text{otherwise} \end{cases}

    (the distance to the bound the negative gradient points at). The first-order
    conditions of the box-constrained problem are :math:`v \odot g = 0`, which is what the
    trust-region reflective method drives to zero.

    Reference: T. F. Coleman, Y. Li, "An interior trust region approach for nonlinear
    minimization subject to bounds", SIAM J. Optim. 6(2), 418-445, 1996.
    """
    v = torch.ones_like(x)
    dv = torch.zeros_like(x)
    toward_upper = (g < 0) & torch.isfinite(ub)
    v[toward_upper] = (ub - x)[toward_upper]
    dv[toward_upper] = -1.0
    toward_lower = (g > 0) & torch.isfinite(lb)
    v[toward_lower] = (x - lb)[toward_lower]
    dv[toward_lower] = 1.0
    return v, dv
