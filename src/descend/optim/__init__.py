"""Update rules, each a drop-in ``torch.optim.Optimizer`` with torch's hyperparameter names."""

from descend.optim.adagrad import Adagrad
from descend.optim.adam import Adam, AdamW
from descend.optim.bfgs import BFGS
from descend.optim.cg import ConjugateGradient
from descend.optim.lbfgs import LBFGS
from descend.optim.optimizer import Optimizer, StepFailed
from descend.optim.rmsprop import RMSprop
from descend.optim.sgd import SGD

__all__ = [
    "SGD",
    "Adagrad",
    "RMSprop",
    "Adam",
    "AdamW",
    "Optimizer",
    "StepFailed",
    "BFGS",
    "LBFGS",
    "ConjugateGradient",
]
