"""The standard set of health monitors that every run gets unless told otherwise, and
:func:`monitors_for_run`, which turns a run's ``monitors=`` argument into callbacks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from descend.callbacks import Callback, as_callbacks
from descend.monitors.dead_relu import DeadReLUMonitor
from descend.monitors.divergence import DivergenceMonitor
from descend.monitors.gradient_noise import GradientNoiseMonitor
from descend.monitors.layer_gradients import LayerGradientMonitor
from descend.monitors.learning_rate import SmallLearningRateMonitor
from descend.monitors.monitor import Monitor, MonitorGroup
from descend.monitors.oscillation import OscillationMonitor
from descend.monitors.overfitting import OverfittingMonitor
from descend.monitors.plateau import PlateauMonitor
from descend.monitors.saddle import SaddleMonitor

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
    "overfitting": OverfittingMonitor,
}

#: those that need a network (``model``), added only when the run has one
MODEL_MONITORS = ("layer_gradients", "dead_relu")

#: those that read a training run's epochs (``fit``: validation loss), added only when the
#: run trains a model
FIT_MONITORS = ("overfitting",)


def default_monitors(*, model: Any = None, off: Iterable[str] = (), **run: Any) -> list[Monitor]:
    """Fresh instances of the standard monitors, with their default settings.

    Every run of ``minimize`` gets these unless ``monitors=`` says otherwise; ``fit``
    adds the network monitors (``layer_gradients``, ``dead_relu``) for its model and the
    epoch monitor (``overfitting``, silent without validation data). Each
    checks only every few steps and reads what the loop already recorded, so together
    they cost a few percent of a step at most (``benchmarks/monitor_overhead.py``).

    Args:
        model: the network being trained, if any (adds the network and epoch monitors).
        off: names from :data:`MONITORS` to leave out.
        **run: ignored (what runners know about the run; the monitors take it in ``bind``).

    Example:
        >>> chosen = default_monitors(off=["oscillation"])
        >>> res = descend.minimize(lambda x: (x**2).sum(), [1.0], "gd", lr=1.5, monitors=chosen)
        >>> [d.kind for d in res.diagnoses]
        ['divergence']
    """
    off = list(off) if not isinstance(off, str) else [off]
    for name in off:
        if name not in MONITORS:
            raise ValueError(f"unknown monitor {name!r} in off; valid names: {', '.join(MONITORS)}")
    chosen: list[Monitor] = []
    for name, cls in MONITORS.items():
        if name in off or (name in MODEL_MONITORS + FIT_MONITORS and model is None):
            continue
        if name in MODEL_MONITORS:  # their classes take the network
            chosen.append(cast("type[LayerGradientMonitor | DeadReLUMonitor]", cls)(model))
        else:
            chosen.append(cls())
    return chosen


def default_group(**run: Any) -> list[MonitorGroup]:
    """The standard monitors as one :class:`MonitorGroup` (what runs get by default)."""
    return [MonitorGroup(default_monitors(**run))]


def monitors_for_run(monitors: Any, **run: Any) -> list[Callback]:
    """The health monitors a run asked for: ``"default"`` (or True) for the standard set
    (:func:`default_group`, given ``run``: ``model`` for ``fit``), None or False for none,
    else callbacks as :func:`descend.callbacks.as_callbacks` takes them.

    Example:
        >>> callbacks = monitors_for_run("default", model=model)  # one group of all of them
        >>> [type(c).__name__ for c in callbacks], monitors_for_run(None)
        (['MonitorGroup'], [])
    """
    if monitors is None or monitors is False:
        return []
    if monitors is True or (isinstance(monitors, str) and monitors == "default"):
        return list(default_group(**run))
    if isinstance(monitors, str):
        raise ValueError(
            f"monitors must be 'default', None or a list of monitors, got {monitors!r}"
        )
    return as_callbacks(monitors)
