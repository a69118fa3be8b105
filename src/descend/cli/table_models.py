"""A CSV table made ready for a torch model, for the commands that train modules rather
than estimators (``descend tune``, ``descend federated``): the columns read, class labels
numbered, rows split by the seed, features (and a regression target) standardized on the
training rows, and the module each ``--model`` name builds."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from descend.tabular import Scaling, feature_matrix, read_table, target_column

#: identifies a module saved by ``--save`` of tune's and federated's commands
MODULE_FORMAT = "descend.table-module/1"

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
    names: list[str]
    classes: list[Any] | None
    scaling: Scaling


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
        names,
        classes.tolist() if classifier else None,
        scaling,
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


def module_state(model: str, table: TableData, hidden: int, module: Any, target: str) -> dict:
    """What ``descend predict`` needs to use a trained module: plain data and tensors only
    (``torch.load(..., weights_only=True)`` reads it), saved with ``torch.save``."""
    return {
        "format": MODULE_FORMAT,
        "model": model,
        "hidden": hidden,
        "target": target,
        "features": list(table.names),
        "classes": table.classes,
        "scaling": table.scaling.state(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in module.state_dict().items()},
    }


class ModulePredictor:
    """A saved module as ``descend predict`` uses an estimator: ``predict(X)`` on scaled
    features gives class labels (the most probable) or standardized values."""

    def __init__(self, state: dict[str, Any]) -> None:
        import torch

        if state.get("model") not in MODULES:
            raise ValueError(f"unknown saved --model {state.get('model')!r}")
        classes = state.get("classes")
        self.classes = None if classes is None else np.asarray(classes)
        shape = TableData(
            (np.empty(0), np.empty(0)), (np.empty(0), np.empty(0)), classes is not None,
            len(state["features"]), 1 if classes is None else len(classes), "", None,
            list(state["features"]), classes, Scaling.from_state(None, len(state["features"])),
        )  # fmt: skip
        self.module = build_module(state["model"], shape, int(state["hidden"]), seed=0)
        self.module.load_state_dict(state["state_dict"])
        self.module.eval()
        self._torch = torch

    def predict(self, X: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.no_grad():
            out = self.module(torch.as_tensor(X, dtype=torch.float32)).numpy()
        if self.classes is None:
            return out[:, 0].astype(np.float64)
        return self.classes[out.argmax(axis=1)]
