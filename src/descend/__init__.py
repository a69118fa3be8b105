"""descend: gradient descent, complete, on PyTorch."""

from descend import optim
from descend.callbacks import Callback
from descend.methods import METHODS
from descend.minimize import minimize
from descend.result import History, OptimizeResult, Status
from descend.stopping import StoppingCriteria

__version__ = "0.1.0"
__all__ = [
    "METHODS",
    "Callback",
    "History",
    "OptimizeResult",
    "Status",
    "StoppingCriteria",
    "minimize",
    "optim",
]
