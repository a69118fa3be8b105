"""Update rules, each a drop-in ``torch.optim.Optimizer`` with torch's hyperparameter names,
and what each rule declares about itself (:func:`capabilities`)."""

from descend.optim.adagrad import Adagrad
from descend.optim.adam import Adam, AdamW
from descend.optim.bfgs import BFGS
from descend.optim.capabilities import Capabilities, capabilities
from descend.optim.cg import ConjugateGradient
from descend.optim.lbfgs import LBFGS
from descend.optim.natural_gradient import NaturalGradient
from descend.optim.newton import Newton
from descend.optim.optimizer import Optimizer, StepFailed
from descend.optim.proximal import ProximalL1
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
    "Capabilities",
    "ConjugateGradient",
    "NaturalGradient",
    "Newton",
    "Optimizer",
    "ProximalL1",
    "RMSprop",
    "StepFailed",
    "TrustRegion",
    "capabilities",
]
