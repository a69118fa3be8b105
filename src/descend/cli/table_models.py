"""A CSV table made ready for a torch model, for the commands that train modules rather
than estimators (``descend tune``, ``descend federated``): the columns read, class labels
numbered, rows split by the seed, features (and a regression target) standardized on the
training rows, and the module each ``--model`` name builds."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from descend.tabular import Scaling, feature_matrix, read_table, target_column

#: ``--model`` names: (classifier?, hidden layer?)
MODULES = {
    "logistic": (True, False),
    "linear": (False, False),
    "mlp-classifier": (True, True),
    "mlp-regressor": (False, True),
}


class TableData(NamedTuple):
    """Training and held-out rows (float32 features), the loss, metric and model shape."""

    train: tuple[np.ndarray, np.ndarray]
    held_out: tuple[np.ndarray, np.ndarray]
    classifier: bool
    features: int
    outputs: int
    loss: str
    metric: str | None


def read_for_module(
    data: Path, target: str, model: str, held_out: float, seed: int, flag: str
) -> TableData:
    """The table split into training rows and a seeded ``held_out`` share (``flag`` names
    that option in errors), standardized on the training rows."""
    if model not in MODULES:
        raise ValueError(f"unknown --model {model!r}; valid: {', '.join(MODULES)}")
    if not 0.0 < held_out < 1.0:
        raise ValueError(f"{flag} must be in (0, 1), got {held_out:g}")
    classifier = MODULES[model][0]
    columns = read_table(data)
    y_raw = target_column(columns, target, "logistic" if classifier else "linear", data)
    names = [name for name in columns if name != target]
    if not names:
        raise ValueError(f"{str(data)!r} has no feature columns besides {target!r}")
    X = feature_matrix(columns, names, data)
    if classifier:
        classes, y = np.unique(y_raw, return_inverse=True)
        outputs = len(classes)
    else:
        y, outputs = np.asarray(y_raw, dtype=np.float64), 1
    order = np.random.default_rng(seed).permutation(len(y))
    held = max(1, round(held_out * len(y)))
    if held >= len(y):
        raise ValueError(f"{flag} {held_out:g} of {len(y)} rows leaves no training rows")
    train, test = order[held:], order[:held]
    scaling = Scaling.fit(X[train], None if classifier else y[train], True)
    X_train, y_train = scaling.forward(X[train], y[train])
    X_test, y_test = scaling.forward(X[test], y[test])
    return TableData(
        (X_train.astype(np.float32), y_train),
        (X_test.astype(np.float32), y_test),
        classifier,
        X.shape[1],
        outputs,
        "cross_entropy" if classifier else "mse",
        "accuracy" if classifier else None,
    )


def build_module(model: str, table: TableData, hidden: int, seed: int | None = None) -> Any:
    """The torch module ``--model`` names: linear, or one hidden ReLU layer; its weights
    drawn from ``seed`` (the global RNG restored after), or from the global RNG if None."""
    import torch

    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        if not MODULES[model][1]:
            return torch.nn.Linear(table.features, table.outputs)
        return torch.nn.Sequential(
            torch.nn.Linear(table.features, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, table.outputs),
        )
