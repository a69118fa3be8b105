"""Yogi: Adam whose second moment moves additively, so it cannot forget a large gradient in
a few steps (Zaheer et al., 2018, "Adaptive Methods for Nonconvex Optimization")."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities
from descend.optim.optimizer import Optimizer, blocks, check_betas, check_weight_decay, decayed
from descend.validation import check_non_negative, check_positive


class Yogi(Optimizer):
    r"""Yogi: Adam's step with an additive second-moment update.

    .. math::
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t,\\
        v_t &= v_{t-1} - (1-\beta_2)\,\operatorname{sign}(v_{t-1} - g_t^2)\, g_t^2,\\
        \theta_t &= \theta_{t-1} - \eta\, \frac{m_t}{\sqrt{v_t} + \epsilon}

    (the paper's Algorithm 2, no bias correction; :math:`v_0` = ``initial_accumulator``).
    Adam's :math:`v_t - v_{t-1} = -(1-\beta_2)(v_{t-1} - g_t^2)` changes by a multiple of
    :math:`v_{t-1}`, so a run of small gradients shrinks :math:`v` geometrically and the
    effective rate :math:`\eta/\sqrt{v}` jumps; Yogi's change is at most
    :math:`(1-\beta_2) g_t^2` in size, whatever :math:`v_{t-1}` is. The server rule of
    FedYogi (Reddi et al., 2021). ``weight_decay`` adds :math:`\lambda\theta` to the
    gradient, or with ``decoupled_weight_decay`` multiplies :math:`\theta` by
    :math:`1-\eta\lambda`. State: ``exp_avg``, ``exp_avg_sq``.

    Args:
        params: parameters or parameter groups.
        lr: learning rate :math:`\eta \ge 0` (the paper's default 1e-2).
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon > 0` (the paper's default 1e-3).
        initial_accumulator: :math:`v_0 \ge 0`, every coordinate.
        weight_decay: :math:`\lambda \ge 0`.
        decoupled_weight_decay: decay the parameters, not the gradient.
        maximize: ascend instead of descend.
        foreach: accepted for ``torch.optim`` compatibility.

    Example:
        >>> import torch, descend
        >>> w = torch.zeros(3, requires_grad=True)
        >>> opt = descend.optim.Yogi([w], lr=1e-2)
    """

    capabilities = Capabilities(elementwise=True, couples_weight_decay=True)

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-3,
        initial_accumulator: float = 1e-6,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
    ) -> None:
        check_non_negative("lr", lr)
        betas = check_betas(betas)
        check_positive("eps", eps)
        check_non_negative("initial_accumulator", initial_accumulator)
        check_weight_decay(weight_decay)
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            initial_accumulator=initial_accumulator,
            weight_decay=weight_decay,
            decoupled_weight_decay=bool(decoupled_weight_decay),
            maximize=bool(maximize),
            foreach=foreach,
        )
        super().__init__(params, defaults)

    def _state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")

    def _init_state(self, p: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        state.setdefault("exp_avg", torch.zeros_like(p, memory_format=torch.preserve_format))
        state.setdefault(
            "exp_avg_sq",
            torch.full_like(p, group["initial_accumulator"], memory_format=torch.preserve_format),
        )

    def _update(self, group: dict[str, Any], step: int, lists: list[list[Tensor]]) -> None:
        beta1, beta2 = group["betas"]
        lr, wd = group["lr"], group["weight_decay"]
        for params, grads, exp_avgs, exp_avg_sqs in blocks(lists):
            grads = decayed(params, grads, lr, wd, group["decoupled_weight_decay"])
            torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
            squares = torch._foreach_mul(grads, grads)
            signs = torch._foreach_sub(exp_avg_sqs, squares)
            torch._foreach_sign_(signs)
            torch._foreach_mul_(signs, squares)
            torch._foreach_add_(exp_avg_sqs, signs, alpha=-(1 - beta2))
            denom = torch._foreach_sqrt(exp_avg_sqs)
            torch._foreach_add_(denom, group["eps"])
            torch._foreach_addcdiv_(params, exp_avgs, denom, value=-lr)
