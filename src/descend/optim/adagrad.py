"""AdaGrad (Duchi, Hazan & Singer, 2011)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities
from descend.optim.flat import FusedRule
from descend.optim.optimizer import ForeachList, Optimizer, blocks, check_weight_decay
from descend.validation import check_non_negative, check_positive


class Adagrad(Optimizer):
    r"""AdaGrad: per-coordinate steps shrinking with the sum of squared gradients.

    .. math::
        g_t = \nabla f(\theta_{t-1}) + \lambda\theta_{t-1},\quad
        s_t = s_{t-1} + g_t^2,\quad
        \theta_t = \theta_{t-1} - \frac{\eta}{1 + (t-1)\delta}\,\frac{g_t}{\sqrt{s_t} + \epsilon}

    Same hyperparameters and state as ``torch.optim.Adagrad``.

    Args:
        params: parameters or parameter groups.
        lr: learning rate :math:`\eta \ge 0`.
        lr_decay: :math:`\delta \ge 0`.
        weight_decay: L2 penalty :math:`\lambda \ge 0`.
        initial_accumulator_value: :math:`s_0 \ge 0`.
        eps: :math:`\epsilon > 0`.
        maximize: ascend instead of descend.
        foreach: accepted for ``torch.optim`` compatibility.
        fused: run the whole update as one compiled pass over flat buffers (see
            :mod:`descend.optim.flat`); needs ``torch.compile`` to work on the device.

    Example:
        >>> opt = descend.optim.Adagrad(model.parameters(), lr=0.1)
    """

    capabilities = Capabilities(elementwise=True, couples_weight_decay=True)

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        check_non_negative("lr", lr)
        check_non_negative("lr_decay", lr_decay)
        check_weight_decay(weight_decay)
        check_non_negative("initial_accumulator_value", initial_accumulator_value)
        check_positive("eps", eps)
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=bool(maximize),
            foreach=foreach,
            fused=fused,
        )
        super().__init__(params, defaults)

    def _state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("sum",)

    def _init_state(self, p: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        state.setdefault(
            "sum",
            torch.full_like(
                p, group["initial_accumulator_value"], memory_format=torch.preserve_format
            ),
        )

    def _update(self, group: dict[str, Any], step: int, lists: list[list[Tensor]]) -> None:
        wd, eps = group["weight_decay"], group["eps"]
        clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        grads: ForeachList  # weight decay and scaling replace it by a new list
        for params, grads, sums in blocks(lists):
            if wd != 0:
                grads = torch._foreach_add(grads, params, alpha=wd)
            torch._foreach_addcmul_(sums, grads, grads, 1)
            std = torch._foreach_sqrt(sums)
            torch._foreach_add_(std, eps)
            torch._foreach_addcdiv_(params, grads, std, -clr)

    def fused_rule(self, group: dict[str, Any], step: int) -> FusedRule:
        wd = group["weight_decay"]
        clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        scalars = (-1.0 if group["maximize"] else 1.0, wd, group["eps"], -clr)
        return FusedRule(_fused_adagrad, scalars, (wd != 0,))


def _fused_adagrad(
    tensors: list[Tensor], scalars: tuple[float, ...], flags: tuple[bool, ...]
) -> None:
    """AdaGrad as one pass over flat tensors, for ``torch.compile``; the same operations as
    ``_update``."""
    param, grad, state_sum = tensors
    sign, wd, eps, neg_clr = scalars
    (use_wd,) = flags
    grad = grad * sign
    if use_wd:
        grad = grad + param * wd
    total = state_sum + grad * grad
    state_sum.copy_(total)
    param.copy_(param + neg_clr * (grad / (total.sqrt() + eps)))
