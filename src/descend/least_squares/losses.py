r"""Robust losses: how much a residual of each size counts in the cost.

The cost of residuals :math:`f \in \mathbb{R}^m` under a loss :math:`\rho` with soft margin
:math:`C` (``f_scale``) is

.. math:: F(x) = \tfrac12 \sum_i C^2 \rho\big(f_i(x)^2 / C^2\big),

with :math:`\rho(z) = z` (``"linear"``) giving ordinary least squares. Each loss is a
function of :math:`z = f^2 / C^2`:

=========== =============================================== ==================================
name        :math:`\rho(z)`                                   for large residuals
=========== =============================================== ==================================
linear      :math:`z`                                        quadratic
soft_l1     :math:`2(\sqrt{1 + z} - 1)`                      like :math:`|f|` (smooth L1)
huber       :math:`z` if :math:`z \le 1`, else :math:`2\sqrt z - 1`   like :math:`|f|`
cauchy      :math:`\ln(1 + z)`                               logarithmic
arctan      :math:`\arctan z`                                bounded by :math:`\pi/2`
=========== =============================================== ==================================

Gauss-Newton on a robust cost (Triggs et al., *Bundle adjustment - a modern synthesis*,
2000, section 4.3; as in SciPy's ``least_squares``) keeps the least-squares machinery by
rescaling the residuals and the Jacobian: with :math:`\rho'` and :math:`\rho''` taken at
:math:`z_i` (and :math:`\rho''` divided by :math:`C^2`),

.. math:: s_i = \sqrt{\max(\rho'_i + 2 \rho''_i f_i^2,\ \epsilon)}, \qquad
          \tilde f_i = \frac{\rho'_i}{s_i} f_i, \qquad \tilde J = \operatorname{diag}(s) J,

so that :math:`\tilde J^\top \tilde f = \nabla F` and :math:`\tilde J^\top \tilde J` is the
Hessian of :math:`F` with the residuals' own second derivatives left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

#: ``z -> (rho(z), rho'(z), rho''(z))``, each shaped like ``z``
LossFunction = Callable[[Tensor], tuple[Tensor, Tensor, Tensor]]


def _soft_l1(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    t = 1.0 + z
    return 2.0 * (t.sqrt() - 1.0), t.rsqrt(), -0.5 * t.pow(-1.5)


def _huber(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    inside = z <= 1.0
    # the quadratic piece's branch is taken where z <= 1, so z = 0 never reaches rsqrt's result
    root = z.clamp_min(1.0).sqrt()
    rho = torch.where(inside, z, 2.0 * root - 1.0)
    first = torch.where(inside, torch.ones_like(z), 1.0 / root)
    second = torch.where(inside, torch.zeros_like(z), -0.5 / root.pow(3))
    return rho, first, second


def _cauchy(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    t = 1.0 + z
    return torch.log1p(z), 1.0 / t, -1.0 / t.square()


def _arctan(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    t = 1.0 + z.square()
    return torch.arctan(z), 1.0 / t, -2.0 * z / t.square()


#: the robust losses by name; ``"linear"`` is ordinary least squares and needs no rescaling
LOSSES: dict[str, LossFunction | None] = {
    "linear": None,
    "soft_l1": _soft_l1,
    "huber": _huber,
    "cauchy": _cauchy,
    "arctan": _arctan,
}


@dataclass(frozen=True)
class RobustLoss:
    r"""A loss :math:`\rho` with its soft margin :math:`C`: the cost and the rescaling.

    Attributes:
        rho: ``z -> (rho, rho', rho'')`` (one of :data:`LOSSES`, or the user's own).
        f_scale: :math:`C > 0`, the residual size where inliers end and outliers begin.
    """

    rho: LossFunction
    f_scale: float

    def terms(self, f: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        r""":math:`(C^2\rho(z), \rho'(z), \rho''(z)/C^2)` at :math:`z = (f/C)^2`."""
        c2 = self.f_scale**2
        rho, first, second = self.rho(f.square() / c2)
        return c2 * rho, first, second / c2

    def cost(self, f: Tensor) -> Tensor:
        r""":math:`\tfrac12 \sum_i C^2 \rho(f_i^2 / C^2)`."""
        return 0.5 * self.terms(f)[0].sum()

    def rescale(self, f: Tensor) -> tuple[Tensor, Tensor]:
        r"""``(s, f_tilde)``: the row scaling :math:`s` of the Jacobian and the rescaled
        residuals :math:`\tilde f` of the module's formula."""
        _, first, second = self.terms(f)
        eps = torch.finfo(f.dtype).eps
        row_scale = (first + 2.0 * second * f.square()).clamp_min(eps).sqrt()
        return row_scale, f * first / row_scale


def cost_of(f: Tensor, loss: RobustLoss | None) -> float:
    r"""The cost of residuals ``f``: :math:`\tfrac12\|f\|^2` for the linear loss (None)."""
    return 0.5 * float(f @ f) if loss is None else float(loss.cost(f))
