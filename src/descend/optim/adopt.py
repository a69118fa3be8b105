"""ADOPT: Adam that converges with any beta2 (Taniguchi et al., 2024, "ADOPT: Modified Adam
Can Converge with Any beta2 with the Optimal Rate")."""

from __future__ import annotations

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


class ADOPT(Optimizer):
    r"""ADOPT: the gradient is normalized by the second moment of the *previous* steps,
    before the momentum, and the normalized gradient is clipped.

    .. math::
        v_0 &= g_0^2 \quad\text{(the first step only measures the gradient)},\\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\,
            \operatorname{clip}\Bigl(\frac{g_t}{\max(\sqrt{v_{t-1}}, \epsilon)},\ t^{p}\Bigr),\\
        \theta_t &= \theta_{t-1} - \eta\, m_t,\qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2

    for :math:`t \ge 1` after the first step; :math:`\operatorname{clip}(x, c)` bounds each
    coordinate to :math:`[-c, c]` (the paper's stabilizer, :math:`p = 1/4`; None switches
    it off, the paper's first version). Because :math:`v_{t-1}` does not contain
    :math:`g_t`, the step is an unbiased direction and Adam's non-convergence for small
    :math:`\beta_2` goes away. ``weight_decay`` adds :math:`\lambda\theta` to the gradient,
    or with ``decoupled_weight_decay`` multiplies :math:`\theta` by :math:`1-\eta\lambda`.
    State: ``exp_avg``, ``exp_avg_sq``, as the authors' implementation.

    Args:
        params: parameters or parameter groups.
        lr: learning rate :math:`\eta \ge 0`.
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon > 0`, the floor of the normalizer.
        weight_decay: :math:`\lambda \ge 0`.
        decoupled_weight_decay: decay the parameters, not the gradient.
        clip_exponent: :math:`p \ge 0` of the clipping bound :math:`t^p`; None: no clip.
        maximize: ascend instead of descend.
        foreach: accepted for ``torch.optim`` compatibility.

    Example:
        >>> opt = descend.optim.ADOPT(model.parameters(), lr=1e-3)
    """

    capabilities = Capabilities(elementwise=True, couples_weight_decay=True)

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.9999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        clip_exponent: float | None = 0.25,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
    ) -> None:
        check_non_negative("lr", lr)
        betas = check_betas(betas)
        check_positive("eps", eps)
        check_weight_decay(weight_decay)
        if clip_exponent is not None:
            check_non_negative("clip_exponent", clip_exponent)
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            decoupled_weight_decay=bool(decoupled_weight_decay),
            clip_exponent=clip_exponent,
            maximize=bool(maximize),
            foreach=foreach,
        )
        super().__init__(params, defaults)

    def _state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")

    def _update(self, group: dict[str, Any], step: int, lists: list[list[Tensor]]) -> None:
        beta1, beta2 = group["betas"]
        lr, wd, exponent = group["lr"], group["weight_decay"], group["clip_exponent"]
        for params, grads, exp_avgs, exp_avg_sqs in blocks(lists):
            grads = decayed(params, grads, lr, wd, group["decoupled_weight_decay"])
            if step == 1:
                torch._foreach_addcmul_(exp_avg_sqs, grads, grads)
                continue
            denom = torch._foreach_sqrt(exp_avg_sqs)
            torch._foreach_clamp_min_(denom, group["eps"])
            normed = torch._foreach_div(grads, denom)
            if exponent is not None:
                bound = (step - 1) ** exponent
                torch._foreach_clamp_min_(normed, -bound)
                torch._foreach_clamp_max_(normed, bound)
            torch._foreach_lerp_(exp_avgs, normed, 1 - beta1)
            torch._foreach_add_(params, exp_avgs, alpha=-lr)
            torch._foreach_mul_(exp_avg_sqs, beta2)
            torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
