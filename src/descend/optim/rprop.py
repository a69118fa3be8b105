"""Rprop: resilient backpropagation (Riedmiller & Braun, 1993)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities
from descend.optim.optimizer import Optimizer, blocks
from descend.validation import check_non_negative, check_number


class Rprop(Optimizer):
    r"""Rprop: each coordinate moves by its own step size against the sign of its
    gradient; the step grows while the sign holds and shrinks when it flips.

    .. math::
        s_t = g_t\, g_{t-1}^{\ast},\qquad
        \delta_t = \operatorname{clip}\Bigl(\delta_{t-1} \cdot
            \begin{cases} \eta^+ & s_t > 0\\ \eta^- & s_t < 0\\ 1 & s_t = 0\end{cases},
            \ \delta_{\min},\ \delta_{\max}\Bigr),\\
        g_t^{\ast} = \begin{cases} 0 & s_t < 0\\ g_t & \text{otherwise}\end{cases},\qquad
        \theta_t = \theta_{t-1} - \delta_t \operatorname{sign}(g_t^{\ast})

    starting from :math:`\delta_0 = \eta` (``lr``) and :math:`g_0^{\ast} = 0`: after a
    sign flip the coordinate waits a step (Rprop without backtracking, "Rprop-"). Meant
    for full batches: a noisy gradient's sign flips at random. Same hyperparameters and
    state (``prev`` :math:`g^{\ast}`, ``step_size`` :math:`\delta`) as
    ``torch.optim.Rprop``; there is no weight decay, as in torch.

    Args:
        params: parameters or parameter groups.
        lr: initial step size :math:`\eta \ge 0`.
        etas: :math:`(\eta^-, \eta^+)` with :math:`0 < \eta^- < 1 < \eta^+`.
        step_sizes: :math:`(\delta_{\min}, \delta_{\max})`, with
            :math:`0 \le \delta_{\min} \le \delta_{\max}`.
        maximize: ascend instead of descend.
        foreach: accepted for ``torch.optim`` compatibility.

    Example:
        >>> opt = descend.optim.Rprop(model.parameters(), lr=1e-2)
    """

    capabilities = Capabilities(elementwise=True)

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50.0),
        *,
        foreach: bool | None = None,
        maximize: bool = False,
    ) -> None:
        check_non_negative("lr", lr)
        etaminus, etaplus = _pair("etas", etas)
        check_number("etas[0]", etaminus, low=0.0, high=1.0, low_open=True, high_open=True)
        check_number("etas[1]", etaplus, low=1.0, low_open=True)
        smallest, largest = _pair("step_sizes", step_sizes)
        check_non_negative("step_sizes[0]", smallest)
        check_number("step_sizes[1]", largest, low=smallest)
        defaults = dict(
            lr=lr,
            etas=(etaminus, etaplus),
            step_sizes=(smallest, largest),
            maximize=bool(maximize),
            foreach=foreach,
        )
        super().__init__(params, defaults)

    def _state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("prev", "step_size")

    def _init_state(self, p: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        # a complex number is two reals: both parts start at lr
        lr = complex(group["lr"], group["lr"]) if p.is_complex() else group["lr"]
        state.setdefault("prev", torch.zeros_like(p, memory_format=torch.preserve_format))
        state.setdefault("step_size", torch.full_like(p, lr))

    def _update(self, group: dict[str, Any], step: int, lists: list[list[Tensor]]) -> None:
        etaminus, etaplus = group["etas"]
        smallest, largest = group["step_sizes"]
        for params, grads, prevs, step_sizes in blocks(lists):
            signs = torch._foreach_mul(grads, prevs)
            torch._foreach_sign_(signs)
            for sign, grad, prev, step_size in zip(signs, grads, prevs, step_sizes):
                flipped = sign < 0
                factor = torch.ones_like(sign).masked_fill_(sign > 0, etaplus)
                step_size.mul_(factor.masked_fill_(flipped, etaminus)).clamp_(smallest, largest)
                prev.copy_(grad.masked_fill(flipped, 0))
            directions = torch._foreach_sign(prevs)
            torch._foreach_addcmul_(params, directions, step_sizes, -1)


def _pair(name: str, value: Any) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be a pair, got {value!r}")
    return (value[0], value[1])
