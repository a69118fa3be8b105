"""descend: gradient descent, complete, on PyTorch."""

from descend import optim
from descend.callbacks import Callback
from descend.methods import METHODS
from descend.minimize import minimize
from descend.multistart import MultistartResult, multistart
from descend.result import History, OptimizeResult, Status
from descend.stopping import StoppingCriteria
from descend.train import FitResult, fit

# last: diagnostics sits above minimize and fit, and registers their default monitors;
# runs (descend.runs.record(result, config)) sits beside it
from descend import diagnostics  # isort: skip
from descend import runs  # isort: skip

__version__ = "0.1.0"
__all__ = [
    "METHODS",
    "Callback",
    "FitResult",
    "History",
    "MultistartResult",
    "OptimizeResult",
    "Status",
    "StoppingCriteria",
    "diagnostics",
    "fit",
    "minimize",
    "multistart",
    "optim",
    "runs",
]
