"""RMSprop (Hinton, 2012), with optional momentum and the centered form (Graves, 2013)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities
from descend.optim.flat import FusedRule
from descend.optim.optimizer import ForeachList, Optimizer, blocks, check_weight_decay
from descend.validation import check_non_negative, check_positive, check_unit_interval


class RMSprop(Optimizer):
    r"""RMSprop: steps divided by a running root-mean-square of the gradient.

    .. math::
        v_t &= \alpha v_{t-1} + (1-\alpha) g_t^2,\qquad
        \bar g_t = \alpha \bar g_{t-1} + (1-\alpha) g_t \ (\text{centered})\\
        d_t &= \sqrt{v_t - \bar g_t^2} + \epsilon \ (\text{centered}) \text{ or }
               \sqrt{v_t} + \epsilon\\
        b_t &= \mu b_{t-1} + g_t / d_t,\qquad \theta_t = \theta_{t-1} - \eta b_t

    (:math:`\mu = 0`: :math:`\theta_t = \theta_{t-1} - \eta g_t/d_t`). Same hyperparameters
    and state as ``torch.optim.RMSprop``.

    Args:
        params: parameters or parameter groups.
        lr: learning rate :math:`\eta \ge 0`.
        alpha: smoothing constant :math:`\alpha \in [0, 1)`.
        eps: :math:`\epsilon > 0`.
        weight_decay: L2 penalty :math:`\lambda \ge 0`, added to the gradient.
        momentum: :math:`\mu \ge 0`.
        centered: divide by the estimated standard deviation rather than the RMS.
        maximize: ascend instead of descend.
        foreach: accepted for ``torch.optim`` compatibility.
        fused: run the whole update as one compiled pass over flat buffers (see
            :mod:`descend.optim.flat`); needs ``torch.compile`` to work on the device.

    Example:
        >>> opt = descend.optim.RMSprop(model.parameters(), lr=1e-3, centered=True)
    """

    capabilities = Capabilities(elementwise=True, couples_weight_decay=True)

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        check_non_negative("lr", lr)
        check_unit_interval("alpha", alpha)
        check_positive("eps", eps)
        check_weight_decay(weight_decay)
        check_non_negative("momentum", momentum)
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=bool(centered),
            maximize=bool(maximize),
            foreach=foreach,
            fused=fused,
        )
        super().__init__(params, defaults)

    def _state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        keys: tuple[str, ...] = ("square_avg",)
        if group["momentum"] > 0:
            keys += ("momentum_buffer",)
        if group["centered"]:
            keys += ("grad_avg",)
        return keys

    def _update(self, group: dict[str, Any], step: int, lists: list[list[Tensor]]) -> None:
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        wd, momentum, centered = group["weight_decay"], group["momentum"], group["centered"]
        grads: ForeachList  # weight decay and scaling replace it by a new list
        for block in blocks(lists):
            params, grads, square_avgs = block[0], block[1], block[2]
            if wd != 0:
                grads = torch._foreach_add(grads, params, alpha=wd)
            torch._foreach_mul_(square_avgs, alpha)
            torch._foreach_addcmul_(square_avgs, grads, grads, 1 - alpha)
            if centered:
                grad_avgs = block[-1]
                torch._foreach_lerp_(grad_avgs, grads, 1 - alpha)
                avg = torch._foreach_addcmul(square_avgs, grad_avgs, grad_avgs, -1)
                torch._foreach_sqrt_(avg)
            else:
                avg = torch._foreach_sqrt(square_avgs)
            torch._foreach_add_(avg, eps)
            if momentum > 0:
                bufs = block[3]
                torch._foreach_mul_(bufs, momentum)
                torch._foreach_addcdiv_(bufs, grads, avg)
                torch._foreach_add_(params, bufs, alpha=-lr)
            else:
                torch._foreach_addcdiv_(params, grads, avg, -lr)

    def fused_rule(self, group: dict[str, Any], step: int) -> FusedRule:
        alpha, wd, momentum = group["alpha"], group["weight_decay"], group["momentum"]
        scalars = (
            -1.0 if group["maximize"] else 1.0,
            wd,
            alpha,
            1 - alpha,
            group["eps"],
            momentum,
            -group["lr"],
        )
        flags = (wd != 0, momentum > 0, group["centered"])
        return FusedRule(_fused_rmsprop, scalars, flags)


def _fused_rmsprop(
    tensors: list[Tensor], scalars: tuple[float, ...], flags: tuple[bool, ...]
) -> None:
    """RMSprop as one pass over flat tensors, for ``torch.compile``; the same operations as
    ``_update``. State order follows ``_state_keys``: square_avg, momentum_buffer?, grad_avg?"""
    param, grad, square_avg = tensors[:3]
    sign, wd, alpha, one_minus_alpha, eps, momentum, neg_lr = scalars
    use_wd, use_momentum, centered = flags
    grad = grad * sign
    if use_wd:
        grad = grad + param * wd
    sq = square_avg * alpha + grad * grad * one_minus_alpha
    square_avg.copy_(sq)
    if centered:
        grad_avg = tensors[-1]
        mean = grad_avg + (grad - grad_avg) * one_minus_alpha  # lerp, kept symbolic (Adam's)
        grad_avg.copy_(mean)
        avg = (sq - mean * mean).sqrt() + eps
    else:
        avg = sq.sqrt() + eps
    if use_momentum:
        buf = tensors[3] * momentum + grad / avg
        tensors[3].copy_(buf)
        param.copy_(param + buf * neg_lr)
    else:
        param.copy_(param + neg_lr * (grad / avg))
