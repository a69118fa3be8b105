"""Adam and AMSGrad (Kingma & Ba, 2015; Reddi et al., 2018)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities
from descend.optim.flat import FusedRule
from descend.optim.optimizer import Optimizer, blocks, check_betas, check_weight_decay, decayed
from descend.validation import check_non_negative, check_positive


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
        fused: run the whole update as one compiled pass over flat buffers (see
            :mod:`descend.optim.flat`); needs ``torch.compile`` to work on the device.

    Example:
        >>> import copy
        >>> twin = copy.deepcopy(model)
        >>> opt = descend.optim.Adam(model.parameters(), lr=1e-2)
        >>> ref = torch.optim.Adam(twin.parameters(), lr=1e-2)
        >>> for _ in range(5):
        ...     for m, o in ((model, opt), (twin, ref)):
        ...         o.zero_grad(); loss_fn(m(X), y).backward(); o.step()
        >>> all(torch.allclose(p, q) for p, q in zip(model.parameters(), twin.parameters()))
        True
    """

    capabilities = Capabilities(elementwise=True, couples_weight_decay=True)

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
        fused: bool | None = None,
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
            amsgrad=bool(amsgrad),
            maximize=bool(maximize),
            foreach=foreach,
            fused=fused,
        )
        super().__init__(params, defaults)

    def _state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        if group["amsgrad"]:
            return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
        return ("exp_avg", "exp_avg_sq")

    def _update(self, group: dict[str, Any], step: int, lists: list[list[Tensor]]) -> None:
        adam_update(group, step, lists, decoupled=self.decoupled_weight_decay)

    def fused_rule(self, group: dict[str, Any], step: int) -> FusedRule:
        beta1, beta2 = group["betas"]
        lr, wd = group["lr"], group["weight_decay"]
        decoupled = self.decoupled_weight_decay and wd != 0
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        scalars = (
            -1.0 if group["maximize"] else 1.0,
            0.0 if decoupled else wd,
            1 - lr * wd if decoupled else 1.0,
            1 - beta1,
            beta2,
            1 - beta2,
            group["eps"] * bias_correction2_sqrt,
            -lr / (1 - beta1**step) * bias_correction2_sqrt,
        )
        flags = (wd != 0 and not decoupled, group["amsgrad"])
        return FusedRule(_fused_adam, scalars, flags)


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    .. math:: \theta \leftarrow \theta (1 - \eta\lambda), then the Adam step without L2.

    Same arguments as :class:`Adam`; ``weight_decay`` defaults to 0.01 as in
    ``torch.optim.AdamW``.
    """

    capabilities = Capabilities(elementwise=True)

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
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            foreach=foreach,
            fused=fused,
        )


def adam_update(
    group: dict[str, Any], step: int, lists: list[list[Tensor]], *, decoupled: bool
) -> None:
    """Adam's step (AdamW's with ``decoupled``) on ``lists = [params, grads, exp_avg,
    exp_avg_sq, max_exp_avg_sq?]`` at ``step``, with the hyperparameters of ``group``."""
    beta1, beta2 = group["betas"]
    lr, eps, wd, amsgrad = group["lr"], group["eps"], group["weight_decay"], group["amsgrad"]
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    step_size = -lr / bias_correction1
    for block in blocks(lists):
        params, grads, exp_avgs, exp_avg_sqs = block[:4]
        grads = decayed(params, grads, lr, wd, decoupled)
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
        if amsgrad:
            torch._foreach_maximum_(block[4], exp_avg_sqs)
            denom = torch._foreach_sqrt(block[4])
        else:
            denom = torch._foreach_sqrt(exp_avg_sqs)
        # torch divides the denominator by bias_correction2_sqrt, a pass of its own;
        # scaling eps and the step size by it instead is the same step to rounding
        torch._foreach_add_(denom, eps * bias_correction2_sqrt)
        torch._foreach_addcdiv_(params, exp_avgs, denom, step_size * bias_correction2_sqrt)


def _fused_adam(tensors: list[Tensor], scalars: tuple[float, ...], flags: tuple[bool, ...]) -> None:
    """Adam/AdamW/AMSGrad as one pass over flat tensors, for ``torch.compile``.

    The operations are ``_update``'s, in the same order, so the two agree to rounding.
    Decoupled decay multiplies by a factor that is exactly 1 when off; L2 decay and AMSGrad
    are static flags (they add a term or a buffer).
    """
    param, grad, exp_avg, exp_avg_sq = tensors[:4]
    sign, l2, decay, one_minus_beta1, beta2, one_minus_beta2, eps, step_size = scalars
    use_l2, amsgrad = flags
    grad = grad * sign
    param_now = param * decay
    if use_l2:
        grad = grad + param_now * l2
    # lerp written out: torch.lerp with a Python-float weight makes the compiler bake the
    # weight in as a constant, and a schedule cycling beta1 would recompile every step
    m = exp_avg + (grad - exp_avg) * one_minus_beta1
    v = exp_avg_sq * beta2 + grad * grad * one_minus_beta2
    exp_avg.copy_(m)
    exp_avg_sq.copy_(v)
    if amsgrad:
        v = torch.maximum(tensors[4], v)
        tensors[4].copy_(v)
    denom = v.sqrt() + eps
    param.copy_(param_now + step_size * (m / denom))
