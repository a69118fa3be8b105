"""Update rules, each a drop-in ``torch.optim.Optimizer`` with torch's hyperparameter names,
and what each rule declares about itself (:func:`capabilities`)."""

from descend.optim.adadelta import Adadelta
from descend.optim.adafactor import Adafactor
from descend.optim.adagrad import Adagrad
from descend.optim.adam import Adam, AdamW
from descend.optim.adamax import Adamax
from descend.optim.adopt import ADOPT
from descend.optim.asgd import ASGD
from descend.optim.bfgs import BFGS
from descend.optim.capabilities import Capabilities, capabilities
from descend.optim.cg import ConjugateGradient
from descend.optim.lamb import LAMB
from descend.optim.lars import LARS, layer_adaptation_groups
from descend.optim.lbfgs import LBFGS
from descend.optim.lion import Lion
from descend.optim.muon import Muon
from descend.optim.muon_adamw import MuonWithAdamW, muon_groups
from descend.optim.nadam import NAdam
from descend.optim.natural_gradient import NaturalGradient
from descend.optim.newton import Newton
from descend.optim.optimizer import Optimizer, StepFailed
from descend.optim.prodigy import Prodigy
from descend.optim.proximal import ProximalL1
from descend.optim.radam import RAdam
from descend.optim.rmsprop import RMSprop
from descend.optim.rprop import Rprop
from descend.optim.schedule_free import ScheduleFreeAdamW, ScheduleFreeSGD
from descend.optim.sgd import SGD
from descend.optim.torch_lbfgs import TorchLBFGS
from descend.optim.trust_region import TrustRegion
from descend.optim.yogi import Yogi

__all__ = [
    "ADOPT",
    "ASGD",
    "BFGS",
    "LAMB",
    "LARS",
    "LBFGS",
    "SGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Capabilities",
    "ConjugateGradient",
    "Lion",
    "Muon",
    "MuonWithAdamW",
    "NAdam",
    "NaturalGradient",
    "Newton",
    "Optimizer",
    "Prodigy",
    "ProximalL1",
    "RAdam",
    "RMSprop",
    "Rprop",
    "ScheduleFreeAdamW",
    "ScheduleFreeSGD",
    "StepFailed",
    "TorchLBFGS",
    "TrustRegion",
    "Yogi",
    "capabilities",
    "layer_adaptation_groups",
    "muon_groups",
]
