"""ASGD: stochastic gradient descent with iterate averaging (Polyak & Juditsky, 1992)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities
from descend.optim.optimizer import (
    ForeachList,
    Optimizer,
    blocks,
    check_weight_decay,
    own_scalar,
    scalar_state,
)
from descend.validation import check_non_negative


class ASGD(Optimizer):
    r"""Averaged SGD: decaying SGD steps, and a running average of the iterates from
    step :math:`t_0` on.

    .. math::
        \theta_t &= (1 - \lambda_d \eta_{t-1})\,\theta_{t-1} - \eta_{t-1} g_t,\qquad
        \bar\theta_t = \bar\theta_{t-1} + \mu_{t-1} (\theta_t - \bar\theta_{t-1}),\\
        \eta_t &= \frac{\eta}{(1 + \lambda_d \eta t)^{\alpha}},\qquad
        \mu_t = \frac{1}{\max(1,\ t - t_0)}

    with :math:`\eta_0 = \eta`, :math:`\mu_0 = 1`. The averaged iterate
    :math:`\bar\theta` is ``state["ax"]``; the parameters themselves follow the SGD path.
    ``weight_decay`` adds :math:`\lambda\theta` to the gradient. Same hyperparameters and
    state as ``torch.optim.ASGD``; ``eta`` and ``mu`` are kept per parameter as torch keeps
    them (0-d tensors of torch's scalar dtype), so checkpoints move both ways.

    Args:
        params: parameters or parameter groups.
        lr: learning rate :math:`\eta \ge 0`.
        lambd: decay term :math:`\lambda_d \ge 0`; it also shrinks the parameters each step.
        alpha: power :math:`\alpha \ge 0` of the step-size decay.
        t0: the step :math:`t_0 \ge 0` from which the average starts.
        weight_decay: L2 penalty :math:`\lambda \ge 0`.
        foreach: accepted for ``torch.optim`` compatibility.
        maximize: ascend instead of descend.

    Example:
        >>> opt = descend.optim.ASGD(model.parameters(), lr=1e-2, t0=100)
        >>> for _ in range(3):
        ...     opt.zero_grad(); loss_fn(model(X), y).backward(); opt.step()
        >>> averaged = [opt.state[p]["ax"] for p in model.parameters()]
        >>> [a.shape for a in averaged]
        [torch.Size([1, 3]), torch.Size([1])]
    """

    capabilities = Capabilities(elementwise=True, couples_weight_decay=True)

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0.0,
        foreach: bool | None = None,
        maximize: bool = False,
    ) -> None:
        check_non_negative("lr", lr)
        check_non_negative("lambd", lambd)
        check_non_negative("alpha", alpha)
        check_non_negative("t0", t0)
        check_weight_decay(weight_decay)
        defaults = dict(
            lr=lr,
            lambd=lambd,
            alpha=alpha,
            t0=t0,
            weight_decay=weight_decay,
            maximize=bool(maximize),
            foreach=foreach,
        )
        super().__init__(params, defaults)

    def _state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("ax",)

    def _init_state(self, p: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        state.setdefault("eta", scalar_state(group["lr"]))
        state.setdefault("mu", scalar_state(1.0))
        super()._init_state(p, state, group)

    def _advance_scalars(self, state: dict[str, Any], group: dict[str, Any]) -> tuple[float, ...]:
        """This step's ``eta`` and ``mu`` (set by the previous step), and the next ones."""
        step, lr, lambd = state["step"], group["lr"], group["lambd"]
        eta, mu = own_scalar(state, "eta"), own_scalar(state, "mu")
        now = (eta.item(), mu.item())
        eta.fill_(lr / (1 + lambd * lr * step) ** group["alpha"])
        mu.fill_(1 / max(1, step - group["t0"]))
        return now

    def _update(
        self, group: dict[str, Any], step: int, lists: list[list[Tensor]], *scalars: float
    ) -> None:
        eta, mu = scalars  # from _advance_scalars
        wd, lambd = group["weight_decay"], group["lambd"]
        grads: ForeachList  # weight decay replaces it by a new list
        for params, grads, axs in blocks(lists):
            if wd != 0:
                grads = torch._foreach_add(grads, params, alpha=wd)
            torch._foreach_mul_(params, 1 - lambd * eta)
            torch._foreach_add_(params, grads, alpha=-eta)
            if mu != 1:
                differences = torch._foreach_sub(params, axs)
                torch._foreach_mul_(differences, mu)
                torch._foreach_add_(axs, differences)
            else:
                torch._foreach_copy_(axs, params)
