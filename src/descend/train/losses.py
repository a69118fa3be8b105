"""Losses and metrics by name, each a mean over the rows of a batch.

Every named loss is a ``torch.nn.functional`` function with ``reduction="mean"``; a
callable ``loss(prediction, target) -> scalar tensor`` is used as it is. All of them are
means over rows, so a pass over chunks of rows weights each chunk by its row count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class Loss:
    """A loss of (prediction, target), the kind of target it takes, and whether the model
    outputs logits (which decides how ``"accuracy"`` reads a single output column)."""

    fn: Callable[[Tensor, Tensor], Tensor]
    name: str
    target: str = "float"  # "float": same dtype as the model; "long": class indices
    logits: bool = False

    def __call__(self, prediction: Tensor, target: Tensor) -> Tensor:
        mismatched = prediction.shape != target.shape
        if self.target == "float" and mismatched and prediction.numel() == target.numel():
            target = target.reshape(prediction.shape)
        return self.fn(prediction, target)


LOSSES: dict[str, Loss] = {
    "mse": Loss(F.mse_loss, "mse"),
    "mae": Loss(F.l1_loss, "mae"),
    "huber": Loss(F.huber_loss, "huber"),
    "bce": Loss(F.binary_cross_entropy, "bce"),
    "bce_with_logits": Loss(F.binary_cross_entropy_with_logits, "bce_with_logits", logits=True),
    "cross_entropy": Loss(F.cross_entropy, "cross_entropy", target="long", logits=True),
    "nll": Loss(F.nll_loss, "nll", target="long"),
}
_ALIASES = {
    "l2": "mse",
    "squared_error": "mse",
    "l1": "mae",
    "absolute_error": "mae",
    "logistic": "bce_with_logits",
    "log_loss": "bce_with_logits",
    "crossentropy": "cross_entropy",
}


def get_loss(loss: str | Callable[[Tensor, Tensor], Tensor]) -> Loss:
    """The :class:`Loss` called ``loss`` (see ``LOSSES``), or a callable wrapped as one."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str):
        key = _ALIASES.get(loss.lower(), loss.lower())
        if key not in LOSSES:
            names = ", ".join([*LOSSES, *_ALIASES])
            raise ValueError(f"unknown loss {loss!r}; valid names: {names}, or a callable")
        return LOSSES[key]
    if isinstance(loss, torch.nn.Module) or callable(loss):
        name = getattr(loss, "__name__", type(loss).__name__)
        return Loss(loss, name, target="keep")
    raise TypeError(f"loss must be a name or a callable (prediction, target), got {loss!r}")


def _accuracy(loss: Loss) -> Callable[[Tensor, Tensor], Tensor]:
    def accuracy(prediction: Tensor, target: Tensor) -> Tensor:
        if prediction.dim() > 1 and prediction.shape[-1] > 1:
            labels = prediction.argmax(dim=-1)
        else:
            threshold = 0.0 if loss.logits else 0.5
            labels = (prediction.reshape(-1) > threshold).long()
        return (labels.reshape(-1) == target.reshape(-1).long()).double().mean()

    return accuracy


def get_metric(
    metric: str | Callable[[Tensor, Tensor], Tensor], loss: Loss
) -> tuple[str, Callable]:
    """``(name, fn)`` for a metric given by name (``accuracy``, ``mse``, ``mae``) or callable.

    ``fn(prediction, target)`` returns the mean over the batch's rows.
    """
    if isinstance(metric, str):
        key = metric.lower()
        if key == "accuracy":
            return "accuracy", _accuracy(loss)
        if key in ("mse", "mae"):
            return key, LOSSES[key]
        raise ValueError(
            f"unknown metric {metric!r}; valid names: accuracy, mse, mae, "
            "or a callable (prediction, target)"
        )
    if callable(metric):
        return getattr(metric, "__name__", "metric"), metric
    raise TypeError(f"metric must be a name or a callable, got {metric!r}")
