"""Adamax: Adam with the infinity norm (Kingma & Ba, 2015, section 7.1)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities
from descend.optim.optimizer import ForeachList, Optimizer, blocks, check_betas, check_weight_decay
from descend.validation import check_non_negative, check_positive


class Adamax(Optimizer):
    r"""Adamax: Adam's step over an exponentially weighted infinity norm of the gradients.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\qquad
        u_t = \max(\beta_2 u_{t-1},\ |g_t| + \epsilon),\qquad
        \theta_t = \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\,\frac{m_t}{u_t}

    ``weight_decay`` adds :math:`\lambda\theta` to the gradient. Same hyperparameters and
    state (``exp_avg``, ``exp_inf``) as ``torch.optim.Adamax``.

    Args:
        params: parameters or parameter groups.
        lr: learning rate :math:`\eta \ge 0`.
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon > 0`.
        weight_decay: L2 penalty :math:`\lambda \ge 0`.
        maximize: ascend instead of descend.
        foreach: accepted for ``torch.optim`` compatibility.

    Example:
        >>> opt = descend.optim.Adamax(model.parameters(), lr=2e-3)
    """

    capabilities = Capabilities(elementwise=True, couples_weight_decay=True)

    def __init__(
        self,
        params: Any,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
    ) -> None:
        check_non_negative("lr", lr)
        betas = check_betas(betas)
        check_positive("eps", eps)
        check_weight_decay(weight_decay)
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            maximize=bool(maximize),
            foreach=foreach,
        )
        super().__init__(params, defaults)

    def _state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_inf")

    def _update(self, group: dict[str, Any], step: int, lists: list[list[Tensor]]) -> None:
        beta1, beta2 = group["betas"]
        wd = group["weight_decay"]
        step_size = -group["lr"] / (1 - beta1**step)
        grads: ForeachList  # weight decay and scaling replace it by a new list
        for params, grads, exp_avgs, exp_infs in blocks(lists):
            if wd != 0:
                grads = torch._foreach_add(grads, params, alpha=wd)
            torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
            norm = torch._foreach_abs(grads)
            torch._foreach_add_(norm, group["eps"])
            torch._foreach_mul_(exp_infs, beta2)
            torch._foreach_maximum_(exp_infs, norm)
            torch._foreach_addcdiv_(params, exp_avgs, exp_infs, step_size)
