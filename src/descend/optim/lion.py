"""Lion: evolved sign momentum (Chen et al., 2023, "Symbolic Discovery of Optimization
Algorithms")."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities
from descend.optim.optimizer import Optimizer, blocks, check_betas, check_weight_decay
from descend.validation import check_non_negative


class Lion(Optimizer):
    r"""Lion: every coordinate moves by exactly the learning rate, in the sign of an
    interpolation of momentum and gradient.

    .. math::
        c_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t,\\
        \theta_t &= (1 - \eta\lambda)\,\theta_{t-1} - \eta\,\operatorname{sign}(c_t),\\
        m_t &= \beta_2 m_{t-1} + (1-\beta_2) g_t

    The step has the size of the learning rate in every coordinate, so Lion wants a
    learning rate 3-10x smaller than AdamW's and a weight decay 3-10x larger (the paper's
    advice). Weight decay is decoupled. State: ``exp_avg`` (:math:`m`).

    Args:
        params: parameters or parameter groups.
        lr: learning rate :math:`\eta \ge 0`.
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1): the interpolation for the step
            and the momentum's decay.
        weight_decay: decoupled decay :math:`\lambda \ge 0`.
        maximize: ascend instead of descend.
        foreach: accepted for ``torch.optim`` compatibility.

    Example:
        >>> opt = descend.optim.Lion(model.parameters(), lr=1e-4, weight_decay=0.1)
    """

    capabilities = Capabilities(elementwise=True)

    def __init__(
        self,
        params: Any,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
    ) -> None:
        check_non_negative("lr", lr)
        betas = check_betas(betas)
        check_weight_decay(weight_decay)
        defaults = dict(
            lr=lr, betas=betas, weight_decay=weight_decay, maximize=bool(maximize), foreach=foreach
        )
        super().__init__(params, defaults)

    def _state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("exp_avg",)

    def _update(self, group: dict[str, Any], step: int, lists: list[list[Tensor]]) -> None:
        beta1, beta2 = group["betas"]
        lr, wd = group["lr"], group["weight_decay"]
        for params, grads, exp_avgs in blocks(lists):
            if wd != 0:
                torch._foreach_mul_(params, 1 - lr * wd)
            directions = torch._foreach_lerp(exp_avgs, grads, 1 - beta1)
            torch._foreach_sign_(directions)
            torch._foreach_add_(params, directions, alpha=-lr)
            torch._foreach_lerp_(exp_avgs, grads, 1 - beta2)
