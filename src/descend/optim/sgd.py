"""Stochastic gradient descent, with heavy-ball or Nesterov momentum."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities
from descend.optim.flat import FusedRule
from descend.optim.optimizer import ForeachList, Optimizer, blocks, check_weight_decay
from descend.validation import check_non_negative, check_number


class SGD(Optimizer):
    r"""Gradient descent; batch, stochastic or mini-batch depending only on what the
    gradient was computed from.

    .. math::
        g_t &= \nabla f(\theta_{t-1}) + \lambda\theta_{t-1}\\
        b_t &= \mu b_{t-1} + (1-\tau) g_t \quad (b_1 = g_1)\\
        \theta_t &= \theta_{t-1} - \eta\,(g_t + \mu b_t \text{ if nesterov else } b_t)

    With ``momentum=0`` this is plain gradient descent :math:`\theta \leftarrow \theta -
    \eta g`. Same hyperparameters and state as ``torch.optim.SGD``.

    Args:
        params: parameters or parameter groups.
        lr: learning rate :math:`\eta \ge 0`.
        momentum: :math:`\mu \ge 0` (heavy ball; 0.9 is typical).
        dampening: :math:`\tau \in [0, 1]`, scales the new gradient in the buffer.
        weight_decay: L2 penalty :math:`\lambda \ge 0`.
        nesterov: Nesterov's look-ahead form; needs momentum > 0 and dampening = 0.
        maximize: ascend instead of descend.
        foreach: accepted for ``torch.optim`` compatibility.
        fused: run the whole update as one compiled pass over flat buffers (see
            :mod:`descend.optim.flat`); needs ``torch.compile`` to work on the device.

    Example:
        >>> opt = descend.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    """

    capabilities = Capabilities(elementwise=True, couples_weight_decay=True)

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        check_non_negative("lr", lr)
        check_non_negative("momentum", momentum)
        check_number("dampening", dampening, low=0.0, high=1.0)
        check_weight_decay(weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"nesterov=True needs momentum > 0 and dampening = 0, "
                f"got momentum={momentum}, dampening={dampening}"
            )
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=bool(nesterov),
            maximize=bool(maximize),
            foreach=foreach,
            fused=fused,
        )
        super().__init__(params, defaults)

    def _state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("momentum_buffer",) if group["momentum"] != 0 else ()

    def _init_state(self, p: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        # ``_update`` starts the buffer at the gradient on step 1, so "step" counts the
        # steps since the buffer was made. torch.optim.SGD saves the buffer without a step:
        # a loaded buffer is past its first step. A buffer made after momentum was switched
        # on mid-run starts at the next gradient, as torch's does.
        if group["momentum"] == 0:
            return
        if "momentum_buffer" in state:
            state["step"] = max(state["step"], 1)
        else:
            state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["step"] = 0

    def _update(self, group: dict[str, Any], step: int, lists: list[list[Tensor]]) -> None:
        lr, momentum, wd = group["lr"], group["momentum"], group["weight_decay"]
        dampening, nesterov = group["dampening"], group["nesterov"]
        # plain descent is one pass over each tensor: cutting it into cache-sized blocks
        # saves nothing and costs a call per block
        grads: ForeachList  # weight decay and scaling replace it by a new list
        for block in blocks(lists) if momentum != 0 or wd != 0 else [lists]:
            params, grads = block[0], block[1]
            if wd != 0:
                grads = torch._foreach_add(grads, params, alpha=wd)
            if momentum != 0:
                bufs = block[2]
                if step == 1:
                    torch._foreach_copy_(bufs, grads)
                else:
                    torch._foreach_mul_(bufs, momentum)
                    torch._foreach_add_(bufs, grads, alpha=1 - dampening)
                grads = torch._foreach_add(grads, bufs, alpha=momentum) if nesterov else bufs
            torch._foreach_add_(params, grads, alpha=-lr)

    def _fused_update(self, group: dict[str, Any], step: int, flat: list[Tensor]) -> None:
        if group["momentum"] == 0 and group["weight_decay"] == 0:
            # already one pass: torch's own add_ over the flat buffer is the fused kernel,
            # and nothing needs compiling (negating lr is exact, as negating g is)
            flat[0].add_(flat[1], alpha=group["lr"] if group["maximize"] else -group["lr"])
            return
        super()._fused_update(group, step, flat)

    def fused_rule(self, group: dict[str, Any], step: int) -> FusedRule:
        momentum, wd = group["momentum"], group["weight_decay"]
        # on the first step the buffer is fresh zeros, and 0 * 0 + 1 * g is exactly g: one
        # compiled kernel serves the first step and the rest
        first = step == 1
        scalars = (
            -1.0 if group["maximize"] else 1.0,
            wd,
            0.0 if first else momentum,
            1.0 if first else 1 - group["dampening"],
            momentum,
            -group["lr"],
        )
        flags = (wd != 0, momentum != 0, group["nesterov"])
        return FusedRule(_fused_sgd, scalars, flags)


def _fused_sgd(tensors: list[Tensor], scalars: tuple[float, ...], flags: tuple[bool, ...]) -> None:
    """SGD with momentum as one pass over flat tensors, for ``torch.compile``; the same
    operations as ``_update``."""
    param, grad = tensors[0], tensors[1]
    sign, wd, buf_scale, grad_scale, momentum, neg_lr = scalars
    use_wd, use_momentum, nesterov = flags
    grad = grad * sign
    if use_wd:
        grad = grad + param * wd
    if use_momentum:
        buf = tensors[2] * buf_scale + grad * grad_scale
        tensors[2].copy_(buf)
        grad = grad + buf * momentum if nesterov else buf
    param.copy_(param + grad * neg_lr)
