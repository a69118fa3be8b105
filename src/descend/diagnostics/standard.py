"""The standard set of health monitors that every run gets unless told otherwise."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from descend.diagnostics.dead_relu import DeadReLUMonitor
from descend.diagnostics.divergence import DivergenceMonitor
from descend.diagnostics.gradient_noise import GradientNoiseMonitor
from descend.diagnostics.layer_gradients import LayerGradientMonitor
from descend.diagnostics.learning_rate import SmallLearningRateMonitor
from descend.diagnostics.monitor import Monitor, MonitorGroup
from descend.diagnostics.oscillation import OscillationMonitor
from descend.diagnostics.plateau import PlateauMonitor
from descend.diagnostics.saddle import SaddleMonitor

#: the monitors by name, in the order they run
MONITORS: dict[str, type[Monitor]] = {
    "divergence": DivergenceMonitor,
    "oscillation": OscillationMonitor,
    "lr_too_small": SmallLearningRateMonitor,
    "plateau": PlateauMonitor,
    "saddle": SaddleMonitor,
    "gradient_noise": GradientNoiseMonitor,
    "layer_gradients": LayerGradientMonitor,
    "dead_relu": DeadReLUMonitor,
}

#: those that need a network (``model``), added only when the run has one
MODEL_MONITORS = ("layer_gradients", "dead_relu")


def default_monitors(*, model: Any = None, off: Iterable[str] = (), **run: Any) -> list[Monitor]:
    """Fresh instances of the standard monitors, with their default settings.

    Every run of ``minimize`` gets these unless ``monitors=`` says otherwise; ``fit``
    adds the network monitors (``layer_gradients``, ``dead_relu``) for its model. Each
    checks only every few steps and reads what the loop already recorded, so together
    they cost a few percent of a step at most (``benchmarks/monitor_overhead.py``).

    Args:
        model: the network being trained, if any (adds the network monitors).
        off: names from :data:`MONITORS` to leave out.
        **run: ignored (what runners know about the run; the monitors take it in ``bind``).

    Example:
        >>> descend.minimize(f, x0, monitors=default_monitors(off=["oscillation"]))
    """
    off = list(off) if not isinstance(off, str) else [off]
    for name in off:
        if name not in MONITORS:
            raise ValueError(f"unknown monitor {name!r} in off; valid names: {', '.join(MONITORS)}")
    chosen = []
    for name, cls in MONITORS.items():
        if name in off or (name in MODEL_MONITORS and model is None):
            continue
        chosen.append(cls(model) if name in MODEL_MONITORS else cls())
    return chosen


def default_group(**run: Any) -> list[MonitorGroup]:
    """The standard monitors as one :class:`MonitorGroup` (what runs get by default)."""
    return [MonitorGroup(default_monitors(**run))]
