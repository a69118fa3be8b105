"""RAdam: Adam with the variance of its adaptive rate rectified (Liu et al., 2020)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities
from descend.optim.optimizer import (
    Optimizer,
    blocks,
    check_betas,
    check_weight_decay,
    decayed,
)
from descend.validation import check_non_negative, check_positive


class RAdam(Optimizer):
    r"""RAdam: SGD with momentum until the second moment is trustworthy, then a rectified
    Adam step.

    .. math::
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t,\qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\\
        \rho_\infty &= \frac{2}{1-\beta_2} - 1,\qquad
        \rho_t = \rho_\infty - \frac{2t\beta_2^t}{1-\beta_2^t},\qquad
        r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}
                         {(\rho_\infty-4)(\rho_\infty-2)\rho_t}},\\
        \theta_t &= \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\, m_t \cdot
            \begin{cases}
                r_t \sqrt{1-\beta_2^t} / (\sqrt{v_t} + \epsilon) & \rho_t > 5\\
                1 & \text{otherwise}
            \end{cases}

    ``weight_decay`` adds :math:`\lambda\theta` to the gradient, or with
    ``decoupled_weight_decay`` multiplies :math:`\theta` by :math:`1-\eta\lambda` first.
    Same hyperparameters and state as ``torch.optim.RAdam``.

    Args:
        params: parameters or parameter groups.
        lr: learning rate :math:`\eta \ge 0`.
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon > 0`.
        weight_decay: :math:`\lambda \ge 0`.
        decoupled_weight_decay: decay the parameters, not the gradient (AdamW's form).
        maximize: ascend instead of descend.
        foreach: accepted for ``torch.optim`` compatibility; descend always runs the
            blocked multi-tensor path.

    Example:
        >>> opt = descend.optim.RAdam(model.parameters(), lr=1e-3)
    """

    capabilities = Capabilities(elementwise=True, couples_weight_decay=True)

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
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
            decoupled_weight_decay=bool(decoupled_weight_decay),
            maximize=bool(maximize),
            foreach=foreach,
        )
        super().__init__(params, defaults)

    def _state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")

    def _update(self, group: dict[str, Any], step: int, lists: list[list[Tensor]]) -> None:
        beta1, beta2 = group["betas"]
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * beta2**step / bias_correction2
        rectified = rho_t > 5.0
        if rectified:
            rect = math.sqrt(
                (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            )
            step_size = -lr * rect * math.sqrt(bias_correction2) / bias_correction1
        else:
            step_size = -lr / bias_correction1
        for params, grads, exp_avgs, exp_avg_sqs in blocks(lists):
            grads = decayed(params, grads, lr, wd, group["decoupled_weight_decay"])
            torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
            torch._foreach_mul_(exp_avg_sqs, beta2)
            torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
            if rectified:
                denom = torch._foreach_sqrt(exp_avg_sqs)
                torch._foreach_add_(denom, eps)
                torch._foreach_addcdiv_(params, exp_avgs, denom, step_size)
            else:
                torch._foreach_add_(params, exp_avgs, alpha=step_size)
