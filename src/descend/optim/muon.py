"""Muon: momentum orthogonalized by Newton-Schulz (Jordan et al., 2024; Liu et al., 2025,
"Muon is Scalable for LLM Training")."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities
from descend.optim.optimizer import Optimizer, check_weight_decay
from descend.optim.sharded import refuse_sharded
from descend.validation import (
    check_choice,
    check_int,
    check_non_negative,
    check_positive,
    check_unit_interval,
)

#: the quintic's coefficients, chosen for the steepest slope at zero (Jordan's)
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
ADJUST_LR_FNS = (None, "original", "match_rms_adamw")


class Muon(Optimizer):
    r"""Muon: SGD with Nesterov momentum whose step, a matrix, is replaced by the nearest
    semi-orthogonal matrix, so every singular direction moves at the same rate.

    .. math::
        B_t &= \mu B_{t-1} + (1-\mu) G_t,\qquad
        \tilde B_t = \begin{cases} (1-\mu) G_t + \mu B_t & \text{nesterov}\\
                                   B_t & \text{otherwise}\end{cases}\\
        O_t &= \mathrm{NS}_k(\tilde B_t) \approx U V^\top
            \quad (\tilde B_t = U \Sigma V^\top),\\
        \theta_t &= (1 - \eta\lambda)\,\theta_{t-1} - \eta\, a(m, n)\, O_t

    :math:`\mathrm{NS}_k` is :math:`k` steps of the quintic Newton-Schulz iteration
    :math:`X \leftarrow aX + b(XX^\top)X + c(XX^\top)^2X` from
    :math:`X_0 = \tilde B / \max(\|\tilde B\|_F, \epsilon)`, run in bfloat16 (it maps the
    singular values into roughly [0.7, 1.2], which is all the step needs). The shape
    factor :math:`a(m, n)` is :math:`\sqrt{\max(1, m/n)}` (``"original"``, Jordan's) or
    :math:`0.2\sqrt{\max(m, n)}` (``"match_rms_adamw"``, Moonshot's: the update's RMS
    then matches AdamW's, so AdamW's learning rate and weight decay carry over). Same
    hyperparameters, defaults and state (``momentum_buffer``) as ``torch.optim.Muon``,
    plus ``maximize``.

    Muon is for the 2-D weight matrices of hidden layers; give embeddings, output heads,
    biases and norms to another rule (AdamW), in an optimizer of their own.

    Args:
        params: 2-D parameters or parameter groups of them.
        lr: learning rate :math:`\eta \ge 0`.
        weight_decay: decoupled decay :math:`\lambda \ge 0`.
        momentum: :math:`\mu \in [0, 1)`.
        nesterov: look ahead along the momentum.
        ns_coefficients: :math:`(a, b, c)` of the quintic.
        eps: :math:`\epsilon > 0`, the floor of the norm the iteration starts from.
        ns_steps: :math:`k \ge 0` Newton-Schulz steps.
        adjust_lr_fn: None (as ``"original"``), ``"original"`` or ``"match_rms_adamw"``.
        maximize: ascend instead of descend.

    Example:
        >>> hidden = [p for p in model.parameters() if p.ndim == 2]
        >>> opt = descend.optim.Muon(hidden, lr=0.02)
    """

    capabilities = Capabilities()

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
        *,
        maximize: bool = False,
    ) -> None:
        check_options(lr, weight_decay, momentum, ns_coefficients, eps, ns_steps, adjust_lr_fn)
        defaults = dict(
            lr=lr,
            weight_decay=weight_decay,
            momentum=momentum,
            nesterov=bool(nesterov),
            ns_coefficients=tuple(ns_coefficients),
            eps=eps,
            ns_steps=ns_steps,
            adjust_lr_fn=adjust_lr_fn,
            maximize=bool(maximize),
        )
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        check_matrices(self.param_groups[-1]["params"])

    def _state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("momentum_buffer",)

    def _update(self, group: dict[str, Any], step: int, lists: list[list[Tensor]]) -> None:
        muon_update(group, lists)


def muon_update(group: dict[str, Any], lists: list[list[Tensor]]) -> None:
    """Muon's step on ``lists = [params, grads, momentum_buffers]`` (matrices), with the
    hyperparameters of ``group``."""
    lr, wd, momentum = group["lr"], group["weight_decay"], group["momentum"]
    for param, grad, buf in zip(*lists):
        buf.lerp_(grad, 1 - momentum)
        direction = grad.lerp(buf, momentum) if group["nesterov"] else buf
        update = orthogonalize(direction, group["ns_coefficients"], group["ns_steps"], group["eps"])
        param.mul_(1 - lr * wd)
        param.add_(update, alpha=-lr * shape_factor(group["adjust_lr_fn"], param.shape))


def check_options(
    lr: float,
    weight_decay: float,
    momentum: float,
    ns_coefficients: Any,
    eps: float,
    ns_steps: int,
    adjust_lr_fn: str | None,
) -> None:
    """Muon's hyperparameters, each refused by name with its valid range."""
    check_non_negative("lr", lr)
    check_weight_decay(weight_decay)
    check_unit_interval("momentum", momentum)
    if not isinstance(ns_coefficients, (tuple, list)) or len(ns_coefficients) != 3:
        raise ValueError(f"ns_coefficients must be three numbers, got {ns_coefficients!r}")
    check_positive("eps", eps)
    check_int("ns_steps", ns_steps)
    check_choice("adjust_lr_fn", adjust_lr_fn, ADJUST_LR_FNS)


def check_matrices(params: list[Tensor]) -> None:
    """Muon's parameters must be real 2-D weight matrices, each whole on this process."""
    refuse_sharded(params, "Muon orthogonalizes each whole weight matrix")
    for p in params:
        if p.ndim != 2:
            raise ValueError(
                f"Muon takes 2-D parameters (weight matrices), got one of shape "
                f"{tuple(p.shape)}; give it to another optimizer (AdamW)"
            )
        if p.is_complex():
            raise ValueError("Muon does not support complex parameters")


def orthogonalize(
    matrix: Tensor, coefficients: tuple[float, float, float], steps: int, eps: float
) -> Tensor:
    r"""The semi-orthogonal factor :math:`\approx UV^\top` of ``matrix``, by ``steps`` of
    the quintic Newton-Schulz iteration in bfloat16 (returned in bfloat16).

    The iteration runs on the wide orientation (rows <= columns), where
    :math:`XX^\top` is the smaller Gram matrix.
    """
    a, b, c = coefficients
    tall = matrix.size(0) > matrix.size(1)
    x = matrix.bfloat16()
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.T
        poly = torch.addmm(gram, gram, gram, beta=b, alpha=c)
        x = torch.addmm(x, poly, x, beta=a)
    return x.T if tall else x


def shape_factor(adjust_lr_fn: str | None, shape: torch.Size) -> float:
    """The learning-rate factor :math:`a(m, n)` for an m x n matrix."""
    rows, cols = shape[0], shape[1]
    if adjust_lr_fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    return math.sqrt(max(1, rows / cols))
