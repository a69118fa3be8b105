"""descend: gradient descent, complete, on PyTorch."""

from descend import diagnostics, optim, runs
from descend.callbacks import Callback
from descend.engine.stopping import StoppingCriteria
from descend.least_squares import LeastSquaresResult, least_squares
from descend.methods import METHODS
from descend.minimize import minimize
from descend.multistart import MultistartResult, multistart
from descend.result import History, OptimizeResult, Status
from descend.train import FitResult, fit
from descend.version import __version__ as __version__

__all__ = [
    "METHODS",
    "Callback",
    "FitResult",
    "History",
    "LeastSquaresResult",
    "MultistartResult",
    "OptimizeResult",
    "Status",
    "StoppingCriteria",
    "diagnostics",
    "fit",
    "least_squares",
    "minimize",
    "multistart",
    "optim",
    "runs",
]
