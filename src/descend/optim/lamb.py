"""LAMB: Adam with a layer-wise trust ratio (You et al., 2019, "Large Batch Optimization for
Deep Learning: Training BERT in 76 minutes")."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities
from descend.optim.lars import trust_ratios
from descend.optim.optimizer import Optimizer, check_betas, check_weight_decay
from descend.validation import check_non_negative, check_number, check_positive


class LAMB(Optimizer):
    r"""LAMB: Adam's direction with AdamW's decay, rescaled per tensor so that its step is
    the learning rate times the tensor's norm.

    .. math::
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t,\qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\\
        r_t &= \frac{m_t/(1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}
            + \lambda\theta_{t-1},\\
        \theta_t &= \theta_{t-1} - \eta\,\frac{\phi(\|\theta_{t-1}\|)}{\|r_t\|}\, r_t
            \quad(\text{ratio } 1 \text{ where } \|\theta_{t-1}\| = 0
            \text{ or } \|r_t\| = 0)

    with the norms taken over each whole tensor (the paper's Algorithm 2). :math:`\phi` is
    the identity, or with ``weight_norm_bounds`` :math:`(\gamma_l, \gamma_u)` the clip
    :math:`\min(\max(z, \gamma_l), \gamma_u)` the paper allows. A group with
    ``layer_adaptation=False`` steps as AdamW (the ratio is 1): the usual place for biases
    and normalization scales (:func:`~descend.optim.layer_adaptation_groups`). Not
    elementwise: a coordinate's step depends on its whole tensor. State: ``exp_avg``,
    ``exp_avg_sq``, as Adam's.

    Args:
        params: parameters or parameter groups.
        lr: learning rate :math:`\eta \ge 0`.
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon > 0` (the paper's 1e-6).
        weight_decay: decoupled decay :math:`\lambda \ge 0`, inside the ratio's norm.
        weight_norm_bounds: :math:`(\gamma_l, \gamma_u)` with
            :math:`0 \le \gamma_l \le \gamma_u`, or None for :math:`\phi(z) = z`.
        layer_adaptation: apply the trust ratio (per group; False: AdamW).
        maximize: ascend instead of descend.
        foreach: accepted for ``torch.optim`` compatibility.

    Example:
        >>> groups = descend.optim.layer_adaptation_groups(model, weight_decay=0.01)
        >>> opt = descend.optim.LAMB(groups, lr=2e-3)
    """

    capabilities = Capabilities()
    steps_on_shards = True  # its norms and sums over a DTensor cover all the shards

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        weight_norm_bounds: tuple[float, float] | None = None,
        layer_adaptation: bool = True,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
    ) -> None:
        check_non_negative("lr", lr)
        betas = check_betas(betas)
        check_positive("eps", eps)
        check_weight_decay(weight_decay)
        if weight_norm_bounds is not None:
            weight_norm_bounds = check_bounds(weight_norm_bounds)
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            weight_norm_bounds=weight_norm_bounds,
            layer_adaptation=bool(layer_adaptation),
            maximize=bool(maximize),
            foreach=foreach,
        )
        super().__init__(params, defaults)

    def _state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")

    def _update(self, group: dict[str, Any], step: int, lists: list[list[Tensor]]) -> None:
        # whole tensors, never blocks: the ratio is a norm over each tensor
        params, grads, exp_avgs, exp_avg_sqs = lists
        beta1, beta2 = group["betas"]
        lr, wd = group["lr"], group["weight_decay"]
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
        denom = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denom, (1 - beta2**step) ** 0.5)
        torch._foreach_add_(denom, group["eps"])
        updates = torch._foreach_div(exp_avgs, denom)
        torch._foreach_div_(updates, 1 - beta1**step)
        if wd != 0:
            torch._foreach_add_(updates, params, alpha=wd)
        if group["layer_adaptation"]:
            weight_norms = torch.stack(torch._foreach_norm(params))
            update_norms = torch.stack(torch._foreach_norm(updates))
            bounds = group["weight_norm_bounds"]
            scaled = weight_norms if bounds is None else weight_norms.clamp(*bounds)
            ratios = trust_ratios(weight_norms, update_norms, scaled / update_norms)
            torch._foreach_mul_(updates, ratios)
        torch._foreach_add_(params, updates, alpha=-lr)


def check_bounds(bounds: Any) -> tuple[float, float]:
    """``weight_norm_bounds`` must be a pair ``0 <= low <= high``; returned as a tuple."""
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise ValueError(f"weight_norm_bounds must be a pair (low, high), got {bounds!r}")
    low = check_non_negative("weight_norm_bounds[0]", bounds[0])
    return (low, check_number("weight_norm_bounds[1]", bounds[1], low=low))
