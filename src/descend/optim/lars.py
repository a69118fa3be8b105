"""LARS: momentum SGD with a layer-wise trust ratio (You, Gitman & Ginsburg, 2017, "Large
Batch Training of Convolutional Networks")."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from descend.optim.capabilities import Capabilities
from descend.optim.optimizer import ForeachList, Optimizer, check_weight_decay
from descend.validation import check_non_negative, check_positive


class LARS(Optimizer):
    r"""LARS: each tensor (a layer's weights) gets its own learning rate, the ratio of its
    norm to its gradient's, so that no layer moves by more than a fixed fraction of itself
    however large the batch (and the global learning rate) grows.

    .. math::
        \lambda_t &= \eta\,\frac{\|\theta_{t-1}\|}{\|g_t\| + \beta\|\theta_{t-1}\|}
            \quad(1 \text{ where } \|\theta_{t-1}\| = 0 \text{ or } \|g_t\| = 0),\\
        b_t &= \mu\, b_{t-1} + \lambda_t\,(g_t + \beta\theta_{t-1})\quad (b_1 = \lambda_1
            (g_1 + \beta\theta_0)),\\
        \theta_t &= \theta_{t-1} - \gamma\,(\lambda_t (g_t + \beta\theta_{t-1}) + \mu b_t
            \text{ if nesterov else } b_t)

    with the norms taken over each whole tensor. The paper's Algorithm 1 keeps the global
    rate :math:`\gamma` inside the buffer (:math:`v_t = \mu v_{t-1} + \gamma\lambda_t(g_t
    + \beta\theta_{t-1})`); here it multiplies the buffer as in ``torch.optim.SGD``, the
    same trajectory at a constant rate, and SGD's when the trust ratio is off. A group with
    ``layer_adaptation=False`` is plain momentum SGD with L2 weight decay: the usual place
    for biases and normalization scales, whose small norms would freeze them
    (:func:`layer_adaptation_groups` makes that split). Not elementwise: a coordinate's
    step depends on its whole tensor. State: ``momentum_buffer``.

    Args:
        params: parameters or parameter groups.
        lr: the global rate :math:`\gamma \ge 0`.
        momentum: :math:`\mu \ge 0`.
        weight_decay: :math:`\beta \ge 0`, added to the gradient and to the ratio's
            denominator.
        nesterov: Nesterov's look-ahead form; needs momentum > 0.
        trust_coefficient: :math:`\eta > 0`, how far a tensor may move relative to its
            norm in one step at :math:`\gamma = 1` (the paper's 0.001).
        layer_adaptation: apply the trust ratio (per group; False: :math:`\lambda_t = 1`).
        maximize: ascend instead of descend.
        foreach: accepted for ``torch.optim`` compatibility.

    Example:
        >>> groups = descend.optim.layer_adaptation_groups(model, weight_decay=5e-4)
        >>> opt = descend.optim.LARS(groups, lr=2.0, momentum=0.9)
    """

    capabilities = Capabilities()
    steps_on_shards = True  # its norms and sums over a DTensor cover all the shards

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        trust_coefficient: float = 1e-3,
        layer_adaptation: bool = True,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
    ) -> None:
        check_non_negative("lr", lr)
        check_non_negative("momentum", momentum)
        check_weight_decay(weight_decay)
        check_positive("trust_coefficient", trust_coefficient)
        if nesterov and momentum <= 0:
            raise ValueError(f"nesterov=True needs momentum > 0, got momentum={momentum}")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            nesterov=bool(nesterov),
            trust_coefficient=trust_coefficient,
            layer_adaptation=bool(layer_adaptation),
            maximize=bool(maximize),
            foreach=foreach,
        )
        super().__init__(params, defaults)

    def _state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("momentum_buffer",) if group["momentum"] != 0 else ()

    def _update(self, group: dict[str, Any], step: int, lists: list[list[Tensor]]) -> None:
        # whole tensors, never blocks: the ratio is a norm over each tensor
        grads: ForeachList  # weight decay and scaling replace it by a new list
        params, grads = lists[0], lists[1]
        lr, momentum, wd = group["lr"], group["momentum"], group["weight_decay"]
        ratios = None
        if group["layer_adaptation"]:
            weight_norms = torch.stack(torch._foreach_norm(params))
            grad_norms = torch.stack(torch._foreach_norm(grads))
            ratios = trust_ratios(
                weight_norms,
                grad_norms,
                group["trust_coefficient"] * weight_norms / (grad_norms + wd * weight_norms),
            )
        if wd != 0:
            grads = torch._foreach_add(grads, params, alpha=wd)
        if ratios is not None:
            grads = torch._foreach_mul(grads, ratios)
        if momentum != 0:
            # the buffer starts as zeros, so the first step's mu * 0 + g is g exactly; no
            # copy_, which FSDP2's sharded (DTensor) parameters do not support
            bufs = lists[2]
            torch._foreach_mul_(bufs, momentum)
            torch._foreach_add_(bufs, grads)
            grads = torch._foreach_add(grads, bufs, alpha=momentum) if group["nesterov"] else bufs
        torch._foreach_add_(params, grads, alpha=-lr)


def trust_ratios(weight_norms: Tensor, update_norms: Tensor, ratios: Tensor) -> list[Tensor]:
    """``ratios`` where both norms are positive, else 1 (a zero tensor, or a tensor that
    does not move, keeps the global rate), as 0-d tensors to scale a tensor list by.

    Computed on the device, so nothing waits for the norms' values.
    """
    both = (weight_norms > 0) & (update_norms > 0)
    return list(torch.where(both, ratios, torch.ones_like(ratios)).unbind())


def layer_adaptation_groups(model: nn.Module, weight_decay: float = 0.0) -> list[dict[str, Any]]:
    """``model``'s trainable parameters as the two groups LARS and LAMB are used with.

    Tensors of two or more dimensions (weight matrices, convolution kernels) take the
    trust ratio and ``weight_decay``; vectors and scalars (biases, normalization scales)
    take neither (``layer_adaptation=False``, ``weight_decay=0``), as in the papers' and
    their reference implementations' runs.

    Example:
        >>> opt = descend.optim.LAMB(layer_adaptation_groups(model, weight_decay=0.01))
    """
    check_weight_decay(weight_decay)
    adapted: list[Tensor] = []
    excluded: list[Tensor] = []
    for p in model.parameters():
        if p.requires_grad:
            (adapted if p.ndim > 1 else excluded).append(p)
    return [
        {"params": adapted, "weight_decay": weight_decay, "layer_adaptation": True},
        {"params": excluded, "weight_decay": 0.0, "layer_adaptation": False},
    ]
