"""Diagnostics: make every challenge of gradient descent visible, in numbers, with a fix.

* Health monitors (on by default in ``minimize`` and ``fit``): divergence, oscillation,
  a learning rate too small, plateaus, saddle points, vanishing and exploding gradients,
  dead ReLU units and gradient noise. Each finding is a :class:`Diagnosis` on
  ``result.diagnoses``; :func:`print_diagnoses` prints them.
* :func:`gradcheck`: a gradient (and Hessian-vector products) against central finite
  differences, with a verdict per block of coordinates.
* :func:`lr_range_test`: an exponential learning-rate sweep with a suggested rate, for a
  function (as ``minimize`` takes it) or a model with its loss and batches.
"""

from descend.callbacks import set_default_monitors
from descend.diagnostics.curvature import Spectrum, hessian_operator, lanczos
from descend.diagnostics.dead_relu import DeadReLUMonitor
from descend.diagnostics.diagnosis import (
    Diagnosis,
    Severity,
    format_diagnoses,
    print_diagnoses,
)
from descend.diagnostics.divergence import DivergenceMonitor
from descend.diagnostics.gradcheck import GradcheckReport, gradcheck
from descend.diagnostics.gradient_noise import GradientNoiseMonitor
from descend.diagnostics.layer_gradients import LayerGradientMonitor
from descend.diagnostics.learning_rate import SmallLearningRateMonitor
from descend.diagnostics.lr_range import LRRangeResult, lr_range_test
from descend.diagnostics.monitor import Monitor, MonitorGroup
from descend.diagnostics.oscillation import OscillationMonitor
from descend.diagnostics.plateau import PlateauMonitor
from descend.diagnostics.saddle import SaddleMonitor
from descend.diagnostics.standard import (
    MODEL_MONITORS,
    MONITORS,
    default_group,
    default_monitors,
)

set_default_monitors(default_group)

__all__ = [
    "MODEL_MONITORS",
    "MONITORS",
    "DeadReLUMonitor",
    "Diagnosis",
    "DivergenceMonitor",
    "GradcheckReport",
    "GradientNoiseMonitor",
    "LRRangeResult",
    "LayerGradientMonitor",
    "Monitor",
    "MonitorGroup",
    "OscillationMonitor",
    "PlateauMonitor",
    "SaddleMonitor",
    "Severity",
    "SmallLearningRateMonitor",
    "Spectrum",
    "default_monitors",
    "format_diagnoses",
    "gradcheck",
    "hessian_operator",
    "lanczos",
    "lr_range_test",
    "print_diagnoses",
]
