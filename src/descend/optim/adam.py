"""Adam and AMSGrad (Kingma & Ba, 2015; Reddi et al., 2018)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend.optim.optimizer import Optimizer, blocks, check_weight_decay
from descend.validation import check_non_negative, check_positive, check_unit_interval


class Adam(Optimizer):
    r"""Adam: steps scaled by running moments of the gradient.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\\
        \theta_t = \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\,
                   \frac{m_t}{\sqrt{\hat v_t}/\sqrt{1-\beta_2^t} + \epsilon}

    where :math:`\hat v_t = v_t`, or :math:`\max_{s\le t} v_s` with ``amsgrad``.
    ``weight_decay`` adds :math:`\lambda\theta` to the gradient (L2; see :class:`AdamW`
    for the decoupled form). Same hyperparameters and state as ``torch.optim.Adam``.

    Args:
        params: parameters or parameter groups.
        lr: learning rate :math:`\eta \ge 0`.
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon > 0`, added to the denominator.
        weight_decay: L2 penalty :math:`\lambda \ge 0`.
        amsgrad: use the running maximum of :math:`v_t` (AMSGrad).
        maximize: ascend instead of descend.
        foreach: accepted for ``torch.optim`` compatibility; descend always runs the
            blocked multi-tensor path.

    Example:
        >>> opt = descend.optim.Adam(model.parameters(), lr=1e-3)
        >>> loss = loss_fn(model(x), y); loss.backward(); opt.step(); opt.zero_grad()
    """

    decoupled_weight_decay = False

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
    ) -> None:
        check_non_negative("lr", lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        check_unit_interval("betas[0]", betas[0])
        check_unit_interval("betas[1]", betas[1])
        check_positive("eps", eps)
        check_weight_decay(weight_decay)
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=bool(amsgrad),
            maximize=bool(maximize),
            foreach=foreach,
        )
        super().__init__(params, defaults)

    def _state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        if group["amsgrad"]:
            return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
        return ("exp_avg", "exp_avg_sq")

    def _update(self, group: dict[str, Any], step: int, lists: list[list[Tensor]]) -> None:
        beta1, beta2 = group["betas"]
        lr, eps, wd, amsgrad = group["lr"], group["eps"], group["weight_decay"], group["amsgrad"]
        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        step_size = -lr / bias_correction1
        for block in blocks(lists):
            params, grads, exp_avgs, exp_avg_sqs = block[:4]
            if wd != 0:
                if self.decoupled_weight_decay:
                    torch._foreach_mul_(params, 1 - lr * wd)
                else:
                    grads = torch._foreach_add(grads, params, alpha=wd)
            torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
            torch._foreach_mul_(exp_avg_sqs, beta2)
            torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
            if amsgrad:
                torch._foreach_maximum_(block[4], exp_avg_sqs)
                denom = torch._foreach_sqrt(block[4])
            else:
                denom = torch._foreach_sqrt(exp_avg_sqs)
            torch._foreach_div_(denom, bias_correction2_sqrt)
            torch._foreach_add_(denom, eps)
            torch._foreach_addcdiv_(params, exp_avgs, denom, step_size)


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    .. math:: \theta \leftarrow \theta (1 - \eta\lambda), then the Adam step without L2.

    Same arguments as :class:`Adam`; ``weight_decay`` defaults to 0.01 as in
    ``torch.optim.AdamW``.
    """

    decoupled_weight_decay = True

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
    ) -> None:
        super().__init__(
            params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, foreach=foreach
        )
