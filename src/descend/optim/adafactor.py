"""Adafactor: adaptive steps with a factored second moment (Shazeer & Stern, 2018)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities
from descend.optim.optimizer import Optimizer, check_weight_decay
from descend.validation import check_non_negative, check_number


class Adafactor(Optimizer):
    r"""Adafactor: a second moment kept as row and column factors for matrices, a relative
    step size, and the update's RMS clipped.

    .. math::
        \hat\beta_{2,t} &= 1 - t^{\tau},\qquad \rho_t = \min(\eta, 1/\sqrt t),\qquad
        \alpha_t = \max\bigl(\epsilon_2, \operatorname{RMS}(\theta_{t-1})\bigr)\,\rho_t,\\
        R_t &= \hat\beta_{2,t} R_{t-1}
            + (1-\hat\beta_{2,t})\,\operatorname{mean}_{\text{cols}}(G_t^2),\quad
        C_t = \hat\beta_{2,t} C_{t-1}
            + (1-\hat\beta_{2,t})\,\operatorname{mean}_{\text{rows}}(G_t^2),\\
        \hat V_t &= \frac{R_t C_t}{\max(\operatorname{mean}(R_t),\ \epsilon_1)}
            \ \text{(matrices; vectors keep } \hat V_t \text{ whole)},\\
        U_t &= \frac{G_t}{\max(\sqrt{\hat V_t},\ \epsilon_1)},\qquad
        \theta_t = (1 - \eta\lambda)\,\theta_{t-1}
            - \frac{\alpha_t}{\max(1, \operatorname{RMS}(U_t)/d)}\, U_t

    A tensor of two or more dimensions is factored over its last two (leading dimensions
    are a batch of matrices), so the state costs :math:`m + n`, not :math:`mn`, per
    matrix. As in ``torch.optim.Adafactor`` (same hyperparameters, same state:
    ``row_var``, ``col_var`` or ``variance``), ``lr`` caps the relative step size and
    scales the decoupled weight decay, and :math:`\epsilon_1` bounds the denominator
    rather than being added to it. Not elementwise: the step of a coordinate depends on
    the RMS of its whole tensor.

    Args:
        params: parameters or parameter groups; real only.
        lr: the cap :math:`\eta \ge 0` on the relative step size.
        beta2_decay: :math:`\tau \le 0`.
        eps: :math:`(\epsilon_1, \epsilon_2)`, each :math:`\ge 0`; :math:`\epsilon_1`
            None means the machine epsilon of the parameter's dtype.
        d: clipping threshold :math:`d \ge 1` on the update's RMS.
        weight_decay: decoupled decay :math:`\lambda \ge 0`.
        foreach: accepted for ``torch.optim`` compatibility.
        maximize: ascend instead of descend.

    Example:
        >>> opt = descend.optim.Adafactor(model.parameters())
    """

    capabilities = Capabilities()

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
    ) -> None:
        check_non_negative("lr", lr)
        check_number("beta2_decay", beta2_decay, high=0.0)
        if not isinstance(eps, (tuple, list)) or len(eps) != 2:
            raise ValueError(f"eps must be a pair (eps1 or None, eps2), got {eps!r}")
        if eps[0] is not None:
            check_non_negative("eps[0]", eps[0])
        check_non_negative("eps[1]", eps[1])
        check_number("d", d, low=1.0)
        check_weight_decay(weight_decay)
        defaults = dict(
            lr=lr,
            beta2_decay=beta2_decay,
            eps=(eps[0], eps[1]),
            d=d,
            weight_decay=weight_decay,
            maximize=bool(maximize),
            foreach=foreach,
        )
        super().__init__(params, defaults)

    def _init_state(self, p: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        if p.is_complex():
            raise RuntimeError("Adafactor does not support complex parameters")
        if p.dim() > 1:
            state.setdefault("row_var", p.new_zeros((*p.shape[:-1], 1)))
            state.setdefault("col_var", p.new_zeros((*p.shape[:-2], 1, p.shape[-1])))
        else:
            state.setdefault("variance", torch.zeros_like(p, memory_format=torch.preserve_format))

    def _update(self, group: dict[str, Any], step: int, lists: list[list[Tensor]]) -> None:
        lr, wd, d = group["lr"], group["weight_decay"], group["d"]
        eps1, eps2 = group["eps"]
        one_minus_beta2 = step ** group["beta2_decay"]
        rho = min(lr, 1 / step**0.5)
        for param, grad in zip(*lists):
            state = self.state[param]
            floor = torch.finfo(param.dtype).eps if eps1 is None else eps1
            # the relative step, from the parameter before this step's decay; as a tensor,
            # so nothing waits on the device
            alpha = _rms(param).clamp_(min=eps2).mul_(rho)
            if wd != 0:
                param.mul_(1 - lr * wd)
            if grad.dim() > 1:
                row_var, col_var = state["row_var"], state["col_var"]
                # mean of squares along an axis as a squared norm: no g*g the size of g
                rows = torch.linalg.vector_norm(grad, dim=-1, keepdim=True)
                row_var.lerp_(rows.square_().div_(grad.shape[-1]), one_minus_beta2)
                cols = torch.linalg.vector_norm(grad, dim=-2, keepdim=True)
                col_var.lerp_(cols.square_().div_(grad.shape[-2]), one_minus_beta2)
                variance = row_var @ col_var
                variance.div_(row_var.mean(dim=-2, keepdim=True).clamp_(min=floor))
            else:
                state["variance"].lerp_(grad * grad, one_minus_beta2)
                variance = state["variance"].clone()
            update = variance.clamp_(min=floor * floor).rsqrt_().mul_(grad)
            clip = (torch.linalg.vector_norm(update) / (update.numel() ** 0.5 * d)).clamp_(min=1.0)
            param.sub_(update.mul_(alpha.div_(clip)))


def _rms(tensor: Tensor) -> Tensor:
    return torch.linalg.vector_norm(tensor) / tensor.numel() ** 0.5
