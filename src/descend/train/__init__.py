"""``fit``: the descent loop fed by batches of a data set, with its data sources,
schedules, penalties and checkpoints."""

from descend.train.checkpoint import load_checkpoint
from descend.train.data import DataSource, InMemory, Loader, MapDataset, Stream, stream
from descend.train.fit import fit
from descend.train.losses import LOSSES, get_loss
from descend.train.regularization import GradientClipper, Penalty, elastic_net
from descend.train.result import EPOCH_COLUMNS, STEP_COLUMNS, FitResult
from descend.train.schedules import Schedule, Warmup, build_schedule

__all__ = [
    "EPOCH_COLUMNS",
    "LOSSES",
    "STEP_COLUMNS",
    "DataSource",
    "FitResult",
    "GradientClipper",
    "InMemory",
    "Loader",
    "MapDataset",
    "Penalty",
    "Schedule",
    "Stream",
    "Warmup",
    "build_schedule",
    "elastic_net",
    "fit",
    "get_loss",
    "load_checkpoint",
    "stream",
]
