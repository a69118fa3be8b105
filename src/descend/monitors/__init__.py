"""The health monitors: callbacks that watch a run and say what went wrong, with a fix.

On by default in ``minimize`` and ``fit`` (:func:`monitors_for_run`): divergence,
oscillation, a learning rate too small, plateaus, saddle points, vanishing and exploding
gradients, dead ReLU units, gradient noise and overfitting. Each finding is a :class:`Diagnosis` on
``result.diagnoses``; :func:`print_diagnoses` prints them.

This layer sits beside :mod:`descend.callbacks`, below the front ends (``minimize``,
``fit``) that build the default set from it; it reads only what a run hands it (the
history, the objective, the optimizer, the model). The public face of the monitors is
:mod:`descend.diagnostics`, which re-exports every name here.
"""

from descend.monitors.curvature import Spectrum, hessian_operator, lanczos
from descend.monitors.dead_relu import DeadReLUMonitor
from descend.monitors.diagnosis import Diagnosis, Severity, format_diagnoses, print_diagnoses
from descend.monitors.divergence import DivergenceMonitor
from descend.monitors.gradient_noise import GradientNoiseMonitor
from descend.monitors.layer_gradients import LayerGradientMonitor
from descend.monitors.learning_rate import SmallLearningRateMonitor
from descend.monitors.monitor import Monitor, MonitorGroup
from descend.monitors.oscillation import OscillationMonitor
from descend.monitors.overfitting import OverfittingMonitor
from descend.monitors.plateau import PlateauMonitor
from descend.monitors.saddle import SaddleMonitor
from descend.monitors.standard import (
    FIT_MONITORS,
    MODEL_MONITORS,
    MONITORS,
    default_group,
    default_monitors,
    monitors_for_run,
)

__all__ = [
    "FIT_MONITORS",
    "MODEL_MONITORS",
    "MONITORS",
    "DeadReLUMonitor",
    "Diagnosis",
    "DivergenceMonitor",
    "GradientNoiseMonitor",
    "LayerGradientMonitor",
    "Monitor",
    "MonitorGroup",
    "OscillationMonitor",
    "OverfittingMonitor",
    "PlateauMonitor",
    "SaddleMonitor",
    "Severity",
    "SmallLearningRateMonitor",
    "Spectrum",
    "default_group",
    "default_monitors",
    "format_diagnoses",
    "hessian_operator",
    "lanczos",
    "monitors_for_run",
    "print_diagnoses",
]
