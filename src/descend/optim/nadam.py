"""NAdam: Adam with Nesterov momentum (Dozat, 2016)."""

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
    own_scalar,
    scalar_state,
)
from descend.validation import check_non_negative, check_positive


class NAdam(Optimizer):
    r"""NAdam: Adam whose step looks ahead along the momentum, with a warming momentum.

    .. math::
        \mu_t &= \beta_1\bigl(1 - \tfrac12\, 0.96^{t\psi}\bigr),\qquad
        \Pi_t = \prod_{i\le t}\mu_i,\\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t,\qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\qquad
        d_t = \sqrt{v_t / (1-\beta_2^t)} + \epsilon,\\
        \theta_t &= \theta_{t-1}
            - \eta\,\frac{1-\mu_t}{1-\Pi_t}\,\frac{g_t}{d_t}
            - \eta\,\frac{\mu_{t+1}}{1-\Pi_t\,\mu_{t+1}}\,\frac{m_t}{d_t}

    with :math:`\psi` the ``momentum_decay``. ``weight_decay`` adds :math:`\lambda\theta`
    to the gradient, or with ``decoupled_weight_decay`` multiplies :math:`\theta` by
    :math:`1-\eta\lambda` first (NAdamW). Same hyperparameters and state as
    ``torch.optim.NAdam``: ``mu_product`` (:math:`\Pi_t`) is kept per parameter as torch
    keeps it, a 0-d tensor of torch's scalar dtype, so checkpoints move both ways.

    Args:
        params: parameters or parameter groups.
        lr: learning rate :math:`\eta \ge 0`.
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon > 0`.
        weight_decay: :math:`\lambda \ge 0`.
        momentum_decay: :math:`\psi \ge 0`.
        decoupled_weight_decay: decay the parameters, not the gradient.
        maximize: ascend instead of descend.
        foreach: accepted for ``torch.optim`` compatibility; descend always runs the
            blocked multi-tensor path.

    Example:
        >>> import copy
        >>> twin = copy.deepcopy(model)
        >>> opt = descend.optim.NAdam(model.parameters(), lr=2e-3)
        >>> ref = torch.optim.NAdam(twin.parameters(), lr=2e-3)
        >>> for _ in range(5):
        ...     for m, o in ((model, opt), (twin, ref)):
        ...         o.zero_grad(); loss_fn(m(X), y).backward(); o.step()
        >>> all(torch.allclose(p, q) for p, q in zip(model.parameters(), twin.parameters()))
        True
    """

    capabilities = Capabilities(elementwise=True, couples_weight_decay=True)

    def __init__(
        self,
        params: Any,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
    ) -> None:
        check_non_negative("lr", lr)
        betas = check_betas(betas)
        check_positive("eps", eps)
        check_weight_decay(weight_decay)
        check_non_negative("momentum_decay", momentum_decay)
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            decoupled_weight_decay=bool(decoupled_weight_decay),
            maximize=bool(maximize),
            foreach=foreach,
        )
        super().__init__(params, defaults)

    def _state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")

    def _init_state(self, p: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        state.setdefault("mu_product", scalar_state(1.0))
        super()._init_state(p, state, group)

    def _advance_scalars(self, state: dict[str, Any], group: dict[str, Any]) -> tuple[float, ...]:
        mu = _momentum(group, state["step"])
        # in torch's scalar dtype, as torch multiplies it: the product's rounding is part
        # of the trajectory
        product = own_scalar(state, "mu_product")
        product.mul_(mu)
        return (product.item(),)

    def _update(
        self, group: dict[str, Any], step: int, lists: list[list[Tensor]], *scalars: float
    ) -> None:
        (mu_product,) = scalars  # from _advance_scalars
        _, beta2 = group["betas"]
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        mu, mu_next = _momentum(group, step), _momentum(group, step + 1)
        grad_scale = -lr * (1 - mu) / (1 - mu_product)
        avg_scale = -lr * mu_next / (1 - mu_product * mu_next)
        bias_correction2 = 1 - beta2**step
        for params, grads, exp_avgs, exp_avg_sqs in blocks(lists):
            grads = decayed(params, grads, lr, wd, group["decoupled_weight_decay"])
            torch._foreach_lerp_(exp_avgs, grads, 1 - group["betas"][0])
            torch._foreach_mul_(exp_avg_sqs, beta2)
            torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
            denom = torch._foreach_div(exp_avg_sqs, bias_correction2)
            torch._foreach_sqrt_(denom)
            torch._foreach_add_(denom, eps)
            torch._foreach_addcdiv_(params, grads, denom, grad_scale)
            torch._foreach_addcdiv_(params, exp_avgs, denom, avg_scale)


def _momentum(group: dict[str, Any], step: int) -> float:
    """:math:`\\mu_t = \\beta_1 (1 - 0.5 \\cdot 0.96^{t\\psi})`, the momentum of step t."""
    return group["betas"][0] * (1.0 - 0.5 * 0.96 ** (step * group["momentum_decay"]))
