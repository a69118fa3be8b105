"""Prodigy: Adam with its learning rate estimated on the fly (Mishchenko & Defazio, 2024,
"Prodigy: An Expeditiously Adaptive Parameter-Free Learner")."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities
from descend.optim.optimizer import Closure, ForeachList, Optimizer, check_betas, check_weight_decay
from descend.validation import check_non_negative, check_number, check_positive, check_unit_interval


class Prodigy(Optimizer):
    r"""Prodigy: Adam whose step is scaled by :math:`d_t`, an estimate of the distance
    from the start to a solution, grown from a tiny :math:`d_0`; ``lr`` stays 1.

    With :math:`\gamma_t = d_t\,\eta\,\rho_t` (:math:`\rho_t` Adam's bias correction with
    ``use_bias_correction``, else 1) and all sums over every parameter:

    .. math::
        r_t &= \beta_3 r_{t-1} + \tfrac{d_t}{d_0}\gamma_t\,
              \langle g_t,\ \theta_0 - \theta_t\rangle,\qquad
        s_t = \beta_3 s_{t-1} + \tfrac{d_t}{d_0}\gamma_t\, g_t,\\
        m_t &= \beta_1 m_{t-1} + d_t(1-\beta_1) g_t,\qquad
        v_t = \beta_2 v_{t-1} + d_t^2(1-\beta_2) g_t^2,\\
        \hat d_{t} &= c\,\frac{r_t}{\|s_t\|_1},\qquad
        d_{t+1} = \min\bigl(\max(d_t, \hat d_t, \ldots),\ \omega\, d_t\bigr),\\
        \theta_{t+1} &= \theta_t - \gamma_t\,\frac{m_t}{\sqrt{v_t} + d_{t+1}\epsilon}

    (:math:`d` never falls: the running maximum of :math:`\hat d`, growing at most by the
    factor :math:`\omega` per step; with ``safeguard_warmup`` :math:`s` accumulates
    :math:`d_t/d_0 \cdot d_t\, g_t`, without the learning rate). ``weight_decay``
    multiplies :math:`\theta` by :math:`1 - \gamma_t\lambda` (``decouple``) or adds
    :math:`\lambda\theta` to the gradient. Same hyperparameters, group keys (``d``,
    ``d_max``, ``d_numerator``, ``k``) and state (``s``, ``p0``, ``exp_avg``,
    ``exp_avg_sq``) as the authors' ``prodigyopt.Prodigy``; :math:`d` is one number for
    all groups, read from the device once per step (the authors read it per parameter).
    A frozen group (``lr=0``) does not move, not even by weight decay.

    Args:
        params: parameters or parameter groups; groups may differ in ``lr`` only by
            being 0 (frozen).
        lr: :math:`\eta \ge 0`, a multiplier on the estimated rate: leave it at 1.
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        beta3: :math:`\beta_3 \in [0, 1)` for :math:`r` and :math:`s`; None:
            :math:`\sqrt{\beta_2}`.
        eps: :math:`\epsilon > 0`.
        weight_decay: :math:`\lambda \ge 0`.
        decouple: decoupled weight decay (AdamW's form).
        use_bias_correction: Adam's bias correction in :math:`\gamma_t`.
        safeguard_warmup: leave the learning rate out of :math:`s` (for warmup schedules).
        d0: the initial estimate :math:`d_0 > 0`.
        d_coef: :math:`c > 0`, a multiplier on the estimate.
        growth_rate: :math:`\omega \ge 1`, the most :math:`d` may grow per step.
        maximize: ascend instead of descend.

    Example:
        >>> opt = descend.optim.Prodigy(model.parameters(), weight_decay=0.01)
    """

    capabilities = Capabilities()
    steps_on_shards = True  # its norms and sums over a DTensor cover all the shards

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        betas: tuple[float, float] = (0.9, 0.999),
        beta3: float | None = None,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decouple: bool = True,
        use_bias_correction: bool = False,
        safeguard_warmup: bool = False,
        d0: float = 1e-6,
        d_coef: float = 1.0,
        growth_rate: float = math.inf,
        *,
        maximize: bool = False,
    ) -> None:
        check_non_negative("lr", lr)
        betas = check_betas(betas)
        if beta3 is not None:
            check_unit_interval("beta3", beta3)
        check_positive("eps", eps)
        check_weight_decay(weight_decay)
        check_positive("d0", d0)
        check_positive("d_coef", d_coef)
        if growth_rate != math.inf:
            check_number("growth_rate", growth_rate, low=1.0)
        defaults = dict(
            lr=lr,
            betas=betas,
            beta3=beta3,
            eps=eps,
            weight_decay=weight_decay,
            decouple=bool(decouple),
            use_bias_correction=bool(use_bias_correction),
            safeguard_warmup=bool(safeguard_warmup),
            d0=d0,
            d_coef=d_coef,
            growth_rate=growth_rate,
            d=d0,
            d_max=d0,
            d_numerator=0.0,
            k=0,
            maximize=bool(maximize),
        )
        super().__init__(params, defaults)

    def _state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("s", "p0", "exp_avg", "exp_avg_sq")

    def _init_state(self, p: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        state.setdefault("p0", p.detach().clone(memory_format=torch.preserve_format))
        super()._init_state(p, state, group)

    @torch.no_grad()
    # torch's stub: a closure returns a float; descend's return the loss tensor
    def step(self, closure: Closure | None = None) -> Tensor | None:  # type: ignore[override]
        """One step; the estimate :math:`d` is shared by all groups."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        first = self.param_groups[0]
        lr = max(group["lr"] for group in self.param_groups)
        for group in self.param_groups:
            if group["lr"] not in (lr, 0.0):
                raise ValueError(
                    "Prodigy: param groups may differ in lr only by lr=0 (frozen); got "
                    f"lr={group['lr']!r} beside lr={lr!r}"
                )
        beta1, beta2 = first["betas"]
        beta3 = math.sqrt(beta2) if first["beta3"] is None else first["beta3"]
        k, d, d0 = first["k"], first["d"], first["d0"]
        rho = 1.0
        if first["use_bias_correction"]:
            rho = math.sqrt(1 - beta2 ** (k + 1)) / (1 - beta1 ** (k + 1))
        dlr = d * lr * rho
        s_rate = (d / d0) * (d if first["safeguard_warmup"] else dlr)
        # per bucket, on the parameters' device: <g, theta_0 - theta> and ||s||_1
        dots, norms = [], []
        updates = []
        for group in self.param_groups:
            for _, lists, _ in self._buckets(group):
                if group["lr"] == 0:  # frozen: no step, no say in d
                    continue
                if group["maximize"]:
                    lists[1] = list(torch._foreach_neg(lists[1]))
                grads: ForeachList  # weight decay replaces it by a new list
                params, grads, ss, p0s, exp_avgs, exp_avg_sqs = lists
                wd = group["weight_decay"]
                if wd != 0 and not group["decouple"]:
                    grads = torch._foreach_add(grads, params, alpha=wd)
                travelled = torch._foreach_sub(p0s, params)
                products = torch._foreach_mul(grads, travelled)
                dots.append(sum(product.sum() for product in products))
                torch._foreach_mul_(exp_avgs, beta1)
                torch._foreach_add_(exp_avgs, grads, alpha=d * (1 - beta1))
                torch._foreach_mul_(exp_avg_sqs, beta2)
                torch._foreach_addcmul_(exp_avg_sqs, grads, grads, d * d * (1 - beta2))
                torch._foreach_mul_(ss, beta3)
                torch._foreach_add_(ss, grads, alpha=s_rate)
                norms.append(sum(s.abs().sum() for s in ss))
                updates.append((group, params, exp_avgs, exp_avg_sqs))
        # the step's reads from the device, one a bucket
        dot = sum(float(t) for t in dots)
        d_numerator = first["d_numerator"] * beta3 + (d / d0) * dlr * dot
        d_denom = sum(float(t) for t in norms)
        if d_denom == 0:  # no gradient, or a zero one: no information about d, no step
            return loss
        d_hat = first["d_coef"] * d_numerator / d_denom
        if d == d0:
            d = max(d, d_hat)
        d_max = max(first["d_max"], d_hat)
        d = min(d_max, d * first["growth_rate"])
        for group in self.param_groups:
            group.update(d_numerator=d_numerator, d=d, d_max=d_max, k=group["k"] + 1)
        for group, params, exp_avgs, exp_avg_sqs in updates:
            denom = torch._foreach_sqrt(exp_avg_sqs)
            torch._foreach_add_(denom, d * group["eps"])
            if group["weight_decay"] != 0 and group["decouple"]:
                torch._foreach_mul_(params, 1 - group["weight_decay"] * dlr)
            torch._foreach_addcdiv_(params, exp_avgs, denom, -dlr)
        return loss
