"""Adadelta (Zeiler, 2012)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities
from descend.optim.optimizer import ForeachList, Optimizer, blocks, check_weight_decay
from descend.validation import check_non_negative, check_number, check_positive


class Adadelta(Optimizer):
    r"""Adadelta: steps in the units of the parameters, the RMS of past steps over the RMS
    of past gradients.

    .. math::
        v_t &= \rho v_{t-1} + (1-\rho) g_t^2,\qquad
        \Delta_t = \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g_t,\\
        u_t &= \rho u_{t-1} + (1-\rho) \Delta_t^2,\qquad
        \theta_t = \theta_{t-1} - \eta \Delta_t

    ``weight_decay`` adds :math:`\lambda\theta` to the gradient. Same hyperparameters and
    state (``square_avg`` :math:`v`, ``acc_delta`` :math:`u`) as ``torch.optim.Adadelta``.

    Args:
        params: parameters or parameter groups.
        lr: the factor :math:`\eta \ge 0` on :math:`\Delta_t` (1 in the paper).
        rho: decay rate :math:`\rho \in [0, 1]`.
        eps: :math:`\epsilon > 0`; it also sets the size of the first steps.
        weight_decay: L2 penalty :math:`\lambda \ge 0`.
        maximize: ascend instead of descend.
        foreach: accepted for ``torch.optim`` compatibility.

    Example:
        >>> opt = descend.optim.Adadelta(model.parameters())
    """

    capabilities = Capabilities(elementwise=True, couples_weight_decay=True)

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
    ) -> None:
        check_non_negative("lr", lr)
        check_number("rho", rho, low=0.0, high=1.0)
        check_positive("eps", eps)
        check_weight_decay(weight_decay)
        defaults = dict(
            lr=lr,
            rho=rho,
            eps=eps,
            weight_decay=weight_decay,
            maximize=bool(maximize),
            foreach=foreach,
        )
        super().__init__(params, defaults)

    def _state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("square_avg", "acc_delta")

    def _update(self, group: dict[str, Any], step: int, lists: list[list[Tensor]]) -> None:
        rho, eps, wd = group["rho"], group["eps"], group["weight_decay"]
        grads: ForeachList  # weight decay and scaling replace it by a new list
        for params, grads, square_avgs, acc_deltas in blocks(lists):
            if wd != 0:
                grads = torch._foreach_add(grads, params, alpha=wd)
            torch._foreach_mul_(square_avgs, rho)
            torch._foreach_addcmul_(square_avgs, grads, grads, 1 - rho)
            std = torch._foreach_add(square_avgs, eps)
            torch._foreach_sqrt_(std)
            deltas = torch._foreach_add(acc_deltas, eps)
            torch._foreach_sqrt_(deltas)
            torch._foreach_div_(deltas, std)
            torch._foreach_mul_(deltas, grads)
            torch._foreach_mul_(acc_deltas, rho)
            torch._foreach_addcmul_(acc_deltas, deltas, deltas, 1 - rho)
            torch._foreach_add_(params, deltas, alpha=-group["lr"])
