r"""Penalties and gradient clipping for ``fit``.

* L2: :math:`\tfrac{\lambda_2}{2}\sum_i \|w_i\|_2^2` is added to the loss (:class:`Penalty`),
  so its gradient :math:`\lambda_2 w` reaches every optimizer (and the curvature of
  second-order ones).
* L1: :math:`\lambda_1 \sum_i \|w_i\|_1` is not differentiable at 0; it is the optimizer's
  business: :class:`descend.optim.ProximalL1` follows each step with the proximal step
  :math:`w \leftarrow \operatorname{sign}(w)\max(|w| - \eta\lambda_1, 0)` (proximal
  gradient descent, ISTA), which sets small weights exactly to zero.
* Elastic net: both at once; :func:`elastic_net` converts scikit-learn's
  ``(alpha, l1_ratio)`` into ``(l1, l2)``.

Penalties apply to weights, not to biases: every parameter whose name does not end in
``bias`` (:func:`penalized_weights`).
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from descend.validation import check_non_negative, check_number, check_positive


def penalized_weights(model: nn.Module) -> list[Tensor]:
    """The trainable parameters a penalty applies to: all but the biases."""
    return [
        p for name, p in model.named_parameters() if p.requires_grad and not name.endswith("bias")
    ]


class Penalty:
    r"""The L2 term :math:`\frac{\lambda_2}{2}\sum\|w\|_2^2` on a model's weights
    (:func:`penalized_weights`); the L1 term is the optimizer's
    (:class:`~descend.optim.ProximalL1` over :attr:`weights`).

    Args:
        model: the module whose weights are penalized.
        l2: the L2 strength :math:`\lambda_2 \ge 0`.
    """

    def __init__(self, model: nn.Module, l2: float = 0.0) -> None:
        self.l2 = check_non_negative("l2", l2)
        self.weights = penalized_weights(model)

    def l2_term(self) -> Tensor | None:
        r""":math:`\lambda_2\sum\|w\|^2/2` as a differentiable tensor, or None when off."""
        if self.l2 == 0 or not self.weights:
            return None
        squares = cast(Tensor, sum((w * w).sum() for w in self.weights))  # weights: not empty
        return 0.5 * self.l2 * squares


def elastic_net(alpha: float, l1_ratio: float) -> tuple[float, float]:
    r"""``(l1, l2)`` for scikit-learn's elastic net penalty
    :math:`\alpha\,\rho\|w\|_1 + \tfrac{\alpha(1-\rho)}{2}\|w\|_2^2` with :math:`\rho` = l1_ratio.

    Example:
        >>> l1, l2 = elastic_net(alpha=0.01, l1_ratio=0.15)
    """
    alpha = check_non_negative("alpha", alpha)
    ratio = check_number("l1_ratio", l1_ratio, low=0.0, high=1.0)
    return alpha * ratio, alpha * (1.0 - ratio)


class GradientClipper:
    """Clip gradients in place by value and/or global norm; return the pre-clip norm.

    ``clip_value`` clamps each gradient entry to ``[-clip_value, clip_value]``
    (``torch.nn.utils.clip_grad_value_``); ``clip_norm`` then rescales all gradients so
    their global 2-norm is at most ``clip_norm`` (``torch.nn.utils.clip_grad_norm_``).
    The returned norm is the global norm *before* any clipping, as a tensor (no host sync).
    """

    def __init__(self, clip_norm: float | None = None, clip_value: float | None = None) -> None:
        self.clip_norm = None if clip_norm is None else check_positive("clip_grad_norm", clip_norm)
        self.clip_value = (
            None if clip_value is None else check_positive("clip_grad_value", clip_value)
        )

    def __call__(self, params: list[Tensor]) -> Tensor:
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return torch.zeros(())
        if self.clip_value is None and self.clip_norm is not None:
            return torch.nn.utils.clip_grad_norm_(params, self.clip_norm)
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        if self.clip_value is not None:
            torch.nn.utils.clip_grad_value_(params, self.clip_value)
            if self.clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, self.clip_norm)
        return norm
