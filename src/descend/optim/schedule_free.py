"""Schedule-Free SGD and AdamW (Defazio et al., 2024, "The Road Less Scheduled")."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities
from descend.optim.optimizer import (
    Closure,
    Optimizer,
    blocks,
    check_betas,
    check_weight_decay,
)
from descend.validation import check_int, check_non_negative, check_positive, check_unit_interval


class _ScheduleFree(Optimizer):
    r"""The schedule-free averaging both rules share.

    Three sequences: the base iterate :math:`z`, the average :math:`x` and the point
    :math:`y` where the gradient is taken,

    .. math::
        y_t &= (1-\beta)\, z_t + \beta\, x_t,\qquad
        z_{t+1} = z_t - \gamma_t\, d_t,\\
        x_{t+1} &= (1 - c_{t+1})\, x_t + c_{t+1}\, z_{t+1},\qquad
        c_{t+1} = \frac{w_{t+1}}{\sum_{i \le t+1} w_i},\quad
        w_t = t^r\, (\max_{i \le t}\gamma_i)^{p}

    with :math:`d_t` the rule's direction at :math:`y_t` (plus :math:`\lambda y_t` for
    weight decay) and :math:`\gamma_t = \eta \min(1, t/\text{warmup})`. Only :math:`z` and
    one of :math:`x, y` are stored: in train mode the parameters hold :math:`y`, in eval
    mode :math:`x`; :meth:`train` and :meth:`eval` switch between them (call ``eval()``
    before evaluating or saving the model, ``train()`` before stepping again). Unlike the
    authors' package, an optimizer starts in train mode, so a loop that never switches
    (``minimize``, ``fit``) steps as it should; at the start :math:`x = y = z`. The
    averaging counters (``k``, ``weight_sum``, ``lr_max``, ``train_mode``) live in each
    param group, as in the authors' implementation, so they travel with
    ``state_dict``.
    """

    @staticmethod
    def _with_counters(defaults: dict[str, Any]) -> dict[str, Any]:
        """``defaults`` with the averaging counters, empty, in train mode."""
        return dict(k=0, weight_sum=0.0, lr_max=-1.0, train_mode=True, **defaults)

    def _state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("z",)

    def _init_state(self, p: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        state.setdefault("z", p.detach().clone(memory_format=torch.preserve_format))
        super()._init_state(p, state, group)

    def _momentum(self, group: dict[str, Any]) -> float:
        raise NotImplementedError

    @torch.no_grad()
    # torch's stub: a closure returns a float; descend's return the loss tensor
    def step(self, closure: Closure | None = None) -> Tensor | None:  # type: ignore[override]
        """One step at :math:`y`; raises if the optimizer is in eval mode."""
        if not all(group["train_mode"] for group in self.param_groups):
            raise RuntimeError(
                f"{type(self).__name__}.step() in eval mode: call optimizer.train() first"
            )
        for group in self.param_groups:
            lr = self._scheduled_lr(group, group["k"] + 1)
            group["lr_max"] = max(lr, group["lr_max"])
            group["k"] += 1
            group["weight_sum"] += self._weight(group)
        return super().step(closure)

    @torch.no_grad()
    def eval(self) -> None:
        """Put the average :math:`x = y + (1 - 1/\\beta)(z - y)` in the parameters."""
        self._switch(train=False)

    @torch.no_grad()
    def train(self) -> None:
        """Put the gradient point :math:`y = x + (1 - \\beta)(z - x)` in the parameters."""
        self._switch(train=True)

    def _switch(self, *, train: bool) -> None:
        for group in self.param_groups:
            if group["train_mode"] == train:
                continue
            beta = self._momentum(group)
            weight = 1 - beta if train else 1 - 1 / beta
            for p in group["params"]:
                if "z" in self.state[p]:
                    p.lerp_(self.state[p]["z"], weight)
            group["train_mode"] = train

    @staticmethod
    def _scheduled_lr(group: dict[str, Any], k: int) -> float:
        warmup = group["warmup_steps"]
        return group["lr"] * (k / warmup if k < warmup else 1.0)

    @staticmethod
    def _weight(group: dict[str, Any]) -> float:
        return group["k"] ** group["r"] * group["lr_max"] ** group["weight_lr_power"]

    def _average_and_step(
        self, group: dict[str, Any], params: list[Tensor], zs: list[Tensor], directions: Any
    ) -> None:
        """y and z after the step along ``directions`` (x never stored)."""
        weight_sum = group["weight_sum"]
        ckp1 = self._weight(group) / weight_sum if weight_sum else 0.0
        lr = self._scheduled_lr(group, group["k"])
        if group["weight_decay"] != 0:
            directions = torch._foreach_add(directions, params, alpha=group["weight_decay"])
        torch._foreach_lerp_(params, zs, ckp1)
        torch._foreach_add_(params, directions, alpha=lr * (self._momentum(group) * (1 - ckp1) - 1))
        torch._foreach_sub_(zs, directions, alpha=lr)


def _check_averaging(warmup_steps: int, r: float, weight_lr_power: float) -> None:
    check_int("warmup_steps", warmup_steps)
    check_non_negative("r", r)
    check_non_negative("weight_lr_power", weight_lr_power)


class ScheduleFreeSGD(_ScheduleFree):
    r"""Schedule-Free SGD: momentum as interpolation and averaging, no learning-rate
    schedule (the averaging does what a decaying schedule would).

    The direction is the gradient: :math:`d_t = \nabla f(y_t)`, and
    :math:`\beta` is ``momentum``. See :class:`_ScheduleFree` for the sequences and the
    train/eval switch. Same hyperparameters and state (``z``) as the ``schedulefree``
    package's ``SGDScheduleFree``.

    Args:
        params: parameters or parameter groups.
        lr: learning rate :math:`\eta \ge 0`; larger than for plain SGD (default 1).
        momentum: :math:`\beta \in (0, 1)`, the interpolation between :math:`z` and
            :math:`x`.
        weight_decay: :math:`\lambda \ge 0`, evaluated at :math:`y`.
        warmup_steps: linear warmup of :math:`\gamma_t` over this many steps.
        r: power of :math:`t` in the averaging weights, :math:`\ge 0`.
        weight_lr_power: power :math:`p \ge 0` of the largest rate so far in the weights.
        maximize: ascend instead of descend.
        foreach: accepted for ``torch.optim`` compatibility.

    Example:
        >>> opt = descend.optim.ScheduleFreeSGD(model.parameters(), lr=1.0)
        >>> opt.train(); ...; opt.step(); ...; opt.eval()  # evaluate at the average
    """

    capabilities = Capabilities(elementwise=True, couples_weight_decay=True)

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
    ) -> None:
        check_non_negative("lr", lr)
        check_unit_interval("momentum", momentum)
        check_positive("momentum", momentum)
        check_weight_decay(weight_decay)
        _check_averaging(warmup_steps, r, weight_lr_power)
        defaults = dict(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            warmup_steps=warmup_steps,
            r=r,
            weight_lr_power=weight_lr_power,
            maximize=bool(maximize),
            foreach=foreach,
        )
        super().__init__(params, self._with_counters(defaults))

    def _momentum(self, group: dict[str, Any]) -> float:
        return group["momentum"]

    def _update(self, group: dict[str, Any], step: int, lists: list[list[Tensor]]) -> None:
        for params, grads, zs in blocks(lists):
            self._average_and_step(group, params, zs, grads)


class ScheduleFreeAdamW(_ScheduleFree):
    r"""Schedule-Free AdamW: Adam's normalized gradient as the direction, with
    schedule-free averaging instead of momentum and a schedule.

    .. math::
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\qquad
        d_t = \frac{g_t}{\sqrt{v_t / (1-\beta_2^t)} + \epsilon}

    at :math:`g_t = \nabla f(y_t)`, with :math:`\beta = \beta_1`; weight decay
    :math:`\lambda y_t` is added to the normalized direction (decoupled from the
    normalization, as AdamW). See :class:`_ScheduleFree` for the sequences and the
    train/eval switch. Same hyperparameters and state (``z``, ``exp_avg_sq``) as the
    ``schedulefree`` package's ``AdamWScheduleFree``.

    Args:
        params: parameters or parameter groups.
        lr: learning rate :math:`\eta \ge 0`.
        betas: :math:`(\beta_1, \beta_2)`; :math:`\beta_1 \in (0, 1)`,
            :math:`\beta_2 \in [0, 1)`.
        eps: :math:`\epsilon > 0`.
        weight_decay: :math:`\lambda \ge 0`, evaluated at :math:`y`.
        warmup_steps: linear warmup of :math:`\gamma_t` over this many steps.
        r: power of :math:`t` in the averaging weights, :math:`\ge 0`.
        weight_lr_power: power :math:`p \ge 0` of the largest rate so far in the weights.
        maximize: ascend instead of descend.
        foreach: accepted for ``torch.optim`` compatibility.

    Example:
        >>> opt = descend.optim.ScheduleFreeAdamW(model.parameters(), lr=2.5e-3)
        >>> opt.train(); ...; opt.step(); ...; opt.eval()  # evaluate at the average
    """

    capabilities = Capabilities(elementwise=True)

    def __init__(
        self,
        params: Any,
        lr: float = 2.5e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
    ) -> None:
        check_non_negative("lr", lr)
        betas = check_betas(betas)
        check_positive("betas[0]", betas[0])
        check_positive("eps", eps)
        check_weight_decay(weight_decay)
        _check_averaging(warmup_steps, r, weight_lr_power)
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            warmup_steps=warmup_steps,
            r=r,
            weight_lr_power=weight_lr_power,
            maximize=bool(maximize),
            foreach=foreach,
        )
        super().__init__(params, self._with_counters(defaults))

    def _state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("z", "exp_avg_sq")

    def _momentum(self, group: dict[str, Any]) -> float:
        return group["betas"][0]

    def _update(self, group: dict[str, Any], step: int, lists: list[list[Tensor]]) -> None:
        beta2 = group["betas"][1]
        bias_correction2 = 1 - beta2 ** group["k"]
        for params, grads, zs, exp_avg_sqs in blocks(lists):
            torch._foreach_mul_(exp_avg_sqs, beta2)
            torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
            denom = torch._foreach_div(exp_avg_sqs, bias_correction2)
            torch._foreach_sqrt_(denom)
            torch._foreach_add_(denom, group["eps"])
            self._average_and_step(group, params, zs, torch._foreach_div(grads, denom))
