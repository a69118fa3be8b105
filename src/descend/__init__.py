"""descend: gradient descent, complete, on PyTorch."""

from descend import optim
from descend.callbacks import Callback
from descend.methods import METHODS
from descend.minimize import minimize
from descend.result import History, OptimizeResult, Status
from descend.stopping import StoppingCriteria
from descend.train import FitResult, fit

__version__ = "0.1.0"
__all__ = [
    "METHODS",
    "Callback",
    "FitResult",
    "History",
    "OptimizeResult",
    "Status",
    "StoppingCriteria",
    "fit",
    "minimize",
    "optim",
]
