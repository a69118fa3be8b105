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
    outputs logits (which decides how ``"accuracy"`` reads a single output column).

    A call checks the target against the model's output, whose shape says what the
    target must be: for a ``"float"`` target the output's own shape (a target with as
    many values in another shape, as ``(n,)`` for ``(n, 1)``, is reshaped); for class
    indices (``"long"``) one per row, the output without its class dimension, each in
    ``0 .. C-1`` for the output's C classes (or ``-100``, torch's label for a row to
    ignore). A mismatch is a ValueError naming both shapes, never a silent broadcast.
    Labels are checked only when torch refuses them (on the CPU, at no cost to a
    correct call; an accelerator reports them as a device-side assertion).
    """

    fn: Callable[[Tensor, Tensor], Tensor]
    name: str
    target: str = "float"  # "float": same dtype as the model; "long": class indices
    logits: bool = False
    probabilities: bool = False  # takes outputs in [0, 1] (bce), checked when torch refuses

    def __call__(self, prediction: Tensor, target: Tensor) -> Tensor:
        if self.target == "float":
            target = self._shaped(prediction, target, prediction.shape, "one value per output")
        elif self.target == "long" and not target.is_floating_point():
            rows = prediction.shape[:1] + prediction.shape[2:] if prediction.dim() > 1 else ()
            target = self._shaped(prediction, target, torch.Size(rows), "one class label per row")
            try:
                return self.fn(prediction, target)
            except (IndexError, RuntimeError) as error:
                refused = self._label_error(prediction, target)
                if refused is None:
                    raise  # torch refused something else: its own error says what
                raise refused from error
        if self.probabilities:
            try:
                return self.fn(prediction, target)
            except RuntimeError as error:
                low, high = prediction.min().item(), prediction.max().item()
                if low >= 0.0 and high <= 1.0:
                    raise  # torch refused something else: its own error says what
                raise ValueError(
                    f"loss {self.name!r} takes probabilities in [0, 1] (a sigmoid output), but "
                    f"the model's outputs reach [{low:.3g}, {high:.3g}]; end the model with "
                    "torch.nn.Sigmoid, or use loss='bce_with_logits' on raw scores"
                ) from error
        return self.fn(prediction, target)

    def _shaped(self, prediction: Tensor, target: Tensor, shape: torch.Size, what: str) -> Tensor:
        if target.shape == shape:
            return target
        if target.numel() == shape.numel():
            return target.reshape(shape)
        raise ValueError(
            f"loss {self.name!r}: the target has shape {tuple(target.shape)} but the model's "
            f"output has shape {tuple(prediction.shape)}; {self.name} takes {what}, a target "
            f"of shape {tuple(shape)}"
        )

    def _label_error(self, prediction: Tensor, target: Tensor) -> ValueError | None:
        classes = prediction.shape[1] if prediction.dim() > 1 else prediction.shape[0]
        bad = target[((target < 0) & (target != _IGNORED)) | (target >= classes)]
        if bad.numel() == 0:
            return None
        shown = ", ".join(str(v) for v in bad.unique()[:5].tolist())
        return ValueError(
            f"loss {self.name!r}: labels must be class indices 0..{classes - 1} for the "
            f"model's {classes} outputs (classes), got {shown}; encode the labels as "
            f"0..n_classes-1, or give the model one output per class"
        )


_IGNORED = -100  # torch's ignore_index: a row whose label is this adds nothing to the loss


LOSSES: dict[str, Loss] = {
    "mse": Loss(F.mse_loss, "mse"),
    "mae": Loss(F.l1_loss, "mae"),
    "huber": Loss(F.huber_loss, "huber"),
    "bce": Loss(F.binary_cross_entropy, "bce", probabilities=True),
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
