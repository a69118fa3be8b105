"""Update rules, each a drop-in ``torch.optim.Optimizer`` with torch's hyperparameter names."""

from descend.optim.adagrad import Adagrad
from descend.optim.adam import Adam, AdamW
from descend.optim.bfgs import BFGS
from descend.optim.cg import ConjugateGradient
from descend.optim.lbfgs import LBFGS
from descend.optim.natural_gradient import NaturalGradient
from descend.optim.newton import Newton
from descend.optim.optimizer import Optimizer, StepFailed
from descend.optim.rmsprop import RMSprop
from descend.optim.sgd import SGD
from descend.optim.trust_region import TrustRegion

__all__ = [
    "BFGS",
    "LBFGS",
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "ConjugateGradient",
    "NaturalGradient",
    "Newton",
    "Optimizer",
    "RMSprop",
    "StepFailed",
    "TrustRegion",
]
