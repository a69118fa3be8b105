r"""What a feed does around a first-order rule's step: clip the gradient before it, step
the learning-rate schedule after it.

One iteration of a feed with clipping :math:`c` and a schedule :math:`\eta_k`::

    g_k     = clip(grad f(x_k))          (c(g) = g min(1, C / ||g||_2) by norm, or each
                                          entry clamped to [-v, v] by value)
    x_{k+1} = rule(x_k, g_k; eta_k)      (the optimizer's step, at its current lr)
    eta_{k+1} = schedule(k + 1)          (the scheduler stepped once)

as a ``torch.optim`` loop writes it (``clip_grad_norm_`` between ``backward`` and
``step``, ``scheduler.step()`` after ``step``). A function feed has no epochs: each
iteration is both a step and an epoch of the schedule, as in a ``fit`` with one batch per
epoch, so a schedule that torch steps per epoch (``StepLR``, ``ExponentialLR``,
``ReduceLROnPlateau``) moves once per iteration too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import Tensor


class LearningRateSchedule(Protocol):
    """A schedule a feed steps (:class:`descend.train.schedules.Schedule` or ``Warmup``)."""

    def step(self, logs: dict[str, float], at: str) -> None:
        """Step the scheduler if ``at`` (``"step"`` or ``"epoch"``) is its interval;
        ``ReduceLROnPlateau`` reads its monitor (``"loss"``) from ``logs``."""


class StepControls:
    """Gradient clipping before each optimizer step and a schedule after it (or neither).

    Args:
        clip: clips the parameters' gradients in place, e.g.
            :class:`descend.train.regularization.GradientClipper`; None: no clipping.
        schedule: stepped once per iteration with ``{"loss": f(x_k)}`` (the f the step
            was taken from, as a torch loop passes it to ``ReduceLROnPlateau``); None: the
            learning rate stays as the optimizer has it.
    """

    def __init__(
        self,
        clip: Callable[[list[Tensor]], Any] | None = None,
        schedule: LearningRateSchedule | None = None,
    ) -> None:
        self.clip, self.schedule = clip, schedule

    def step(
        self,
        optimizer: torch.optim.Optimizer,
        params: list[Tensor],
        loss: float,
        closure: Callable[[], Tensor] | None = None,
    ) -> None:
        """Clip ``params``' gradients, take one optimizer step, step the schedule."""
        if self.clip is not None:
            self.clip(params)
        # torch's stub types a closure's loss as a float; it is a tensor
        optimizer.step(closure)  # type: ignore[arg-type]
        if self.schedule is not None:
            logs = {"loss": loss}
            self.schedule.step(logs, "step")
            self.schedule.step(logs, "epoch")
