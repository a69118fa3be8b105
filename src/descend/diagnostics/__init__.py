"""Diagnostics: make every challenge of gradient descent visible, in numbers, with a fix.

* Health monitors (on by default in ``minimize`` and ``fit``): divergence, oscillation,
  a learning rate too small, plateaus, saddle points, vanishing and exploding gradients,
  dead ReLU units, gradient noise and overfitting. Each finding is a :class:`Diagnosis` on
  ``result.diagnoses``; :func:`print_diagnoses` prints them. They live in
  :mod:`descend.monitors` (below ``minimize`` and ``fit``, which build the default set
  from it) and are re-exported here.
* :func:`gradcheck`: a gradient (and Hessian-vector products) against central finite
  differences, with a verdict per block of coordinates.
* :func:`lr_range_test`: an exponential learning-rate sweep with a suggested rate, for a
  function (as ``minimize`` takes it) or a model with its loss and batches.
"""

from descend.diagnostics.gradcheck import GradcheckReport, gradcheck
from descend.diagnostics.lr_range import LRRangeResult, lr_range_test
from descend.monitors import (
    FIT_MONITORS,
    MODEL_MONITORS,
    MONITORS,
    DeadReLUMonitor,
    Diagnosis,
    DivergenceMonitor,
    GradientNoiseMonitor,
    LayerGradientMonitor,
    Monitor,
    MonitorGroup,
    OscillationMonitor,
    OverfittingMonitor,
    PlateauMonitor,
    SaddleMonitor,
    Severity,
    SmallLearningRateMonitor,
    Spectrum,
    default_group,
    default_monitors,
    format_diagnoses,
    hessian_operator,
    lanczos,
    monitors_for_run,
    print_diagnoses,
)

__all__ = [
    "FIT_MONITORS",
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
    "OverfittingMonitor",
    "PlateauMonitor",
    "SaddleMonitor",
    "Severity",
    "SmallLearningRateMonitor",
    "Spectrum",
    "default_group",
    "default_monitors",
    "format_diagnoses",
    "gradcheck",
    "hessian_operator",
    "lanczos",
    "lr_range_test",
    "monitors_for_run",
    "print_diagnoses",
]
