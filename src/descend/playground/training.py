"""The data mode's runs: each racer trains the same model, from the same seeded weights on
the same rows, by ``descend.fit`` with its own method, options and batch size, so
stochastic (batch size 1), mini-batch and batch descent train side by side.

Per racer the page gets the train and test loss and the test accuracy per epoch, the
decision boundary of the trained model on a grid over the data, the status, message and
diagnoses of ``fit``, and the Python that reproduces the run.

Example:
    >>> from descend.playground.datasets import make_dataset
    >>> from descend.playground.training import ModelSpec, Trainer, Training, train
    >>> data = make_dataset("moons", n=80, noise=0.2)  # 60 rows to train on, 20 to test
    >>> racers = [Trainer("adam", {"lr": 0.05}, 16), Trainer("gd", {"lr": 0.5}, "full")]
    >>> runs = train(data, ModelSpec(), racers, Training(epochs=5), grid=10)
    >>> [(r["steps"], len(r["test_loss"])) for r in runs]  # 4 batches of 16 an epoch, or 1
    [(20, 5), (5, 5)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from descend.playground.datasets import DataSet, make_model
from descend.playground.json_values import diagnoses_json, finite_lists
from descend.train import fit
from descend.train.result import FitResult

__all__ = [
    "MAX_EPOCHS",
    "MAX_TRAIN_STEPS",
    "ModelSpec",
    "Trainer",
    "TrainerError",
    "Training",
    "train",
    "train_code",
]

#: bounds on one training request: epochs, and optimizer steps per racer
MAX_EPOCHS = 500
MAX_TRAIN_STEPS = 2000


@dataclass(frozen=True)
class ModelSpec:
    """The model every racer trains: :func:`~descend.playground.datasets.make_model`'s
    arguments (its classes come from the data)."""

    kind: str = "mlp"
    layers: int = 1
    width: int = 8
    activation: str = "tanh"


@dataclass(frozen=True)
class Trainer:
    """One racer of the data mode: a method, its options and the batch size (an integer
    >= 1, or ``"full"``)."""

    method: str
    options: dict[str, Any] = field(default_factory=dict)
    batch_size: int | str = "full"


@dataclass(frozen=True)
class Training:
    """What every racer shares: epochs, seed, penalties, schedule, gradient clipping and
    early stopping, as ``descend.fit`` takes them (``clip_grad_norm``: the largest
    gradient norm a step uses, or None; ``early_stopping``: a patience in epochs, or
    None)."""

    epochs: int = 50
    seed: int = 0
    l1: float = 0.0
    l2: float = 0.0
    schedule: str | None = None
    clip_grad_norm: float | None = None
    early_stopping: int | None = None


class TrainerError(ValueError):
    """A racer's training was refused (unknown method, bad option or batch size)."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


def train(
    data: DataSet,
    model: ModelSpec,
    trainers: Sequence[Trainer],
    shared: Training = Training(),
    *,
    grid: int = 60,
) -> list[dict[str, Any]]:
    """Train one model per racer on ``data`` and report each run.

    Returns, per racer: ``method, options, batch_size``, ``epoch, loss, test_loss,
    test_accuracy`` (per epoch), ``train_accuracy`` (at the end), ``steps, status,
    message, diagnoses``, ``boundary`` (``x, y`` of a ``grid`` x ``grid`` lattice over the
    data, ``z``: the predicted class at ``(x[j], y[i])``, ``p``: its probability) and
    ``code``.

    Raises:
        TrainerError: for the first racer whose method, options or batch size ``fit``
            refuses.
    """
    lattice = _lattice(data, grid)
    runs = []
    for i, trainer in enumerate(trainers):
        try:
            res = fit(**_fit_arguments(data, model, trainer, shared))
        except (TypeError, ValueError) as exc:
            raise TrainerError(i, f"{trainer.method}: {' '.join(str(exc).split())}") from None
        runs.append(_report(res, trainer, data, lattice, train_code(data, model, trainer, shared)))
    return runs


def _fit_arguments(
    data: DataSet, spec: ModelSpec, trainer: Trainer, shared: Training
) -> dict[str, Any]:
    """``descend.fit``'s arguments for one racer (what :func:`train_code` prints)."""
    model = make_model(spec.kind, classes=data.classes, layers=spec.layers, width=spec.width,
                       activation=spec.activation)  # fmt: skip
    return dict(
        model=model, loss="cross_entropy", data=(data.X_train, data.y_train),
        optimizer=trainer.method, batch_size=trainer.batch_size, epochs=shared.epochs,
        max_steps=MAX_TRAIN_STEPS, seed=shared.seed, init="xavier",
        validation=(data.X_test, data.y_test), metric="accuracy", progress=False,
        **_shared_options(shared), **_options(trainer.options),
    )  # fmt: skip


def _shared_options(shared: Training) -> dict[str, Any]:
    chosen: dict[str, Any] = {"l1": shared.l1, "l2": shared.l2}
    if shared.schedule is not None:
        chosen["schedule"] = shared.schedule
    if shared.clip_grad_norm is not None:
        chosen["clip_grad_norm"] = shared.clip_grad_norm
    if shared.early_stopping is not None:
        chosen["early_stopping"] = shared.early_stopping
    return {k: v for k, v in chosen.items() if v}


def _options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}


def _lattice(data: DataSet, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A grid over the data's box, padded by a tenth of its size each side."""
    X = torch.cat([data.X_train, data.X_test])
    low, high = X.min(0).values, X.max(0).values
    pad = 0.1 * (high - low)
    xs = torch.linspace(float(low[0] - pad[0]), float(high[0] + pad[0]), n)
    ys = torch.linspace(float(low[1] - pad[1]), float(high[1] + pad[1]), n)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return xs, ys, torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)


def _report(
    res: FitResult,
    trainer: Trainer,
    data: DataSet,
    lattice: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    code: str,
) -> dict[str, Any]:
    xs, ys, points = lattice
    model = res.model
    with torch.no_grad():
        proba = torch.softmax(model(points), dim=1)
        train_accuracy = (model(data.X_train).argmax(1) == data.y_train).double().mean()
    p, z = proba.max(1)
    n = xs.numel()
    epochs = res.epoch_history
    return {
        "method": trainer.method,
        "options": trainer.options,
        "batch_size": trainer.batch_size,
        "epoch": epochs["epoch"].tolist(),
        "loss": finite_lists(epochs["loss"]),
        "test_loss": finite_lists(epochs["val_loss"]),
        "test_accuracy": finite_lists(epochs["val_metric"]),
        "train_accuracy": float(train_accuracy),
        "steps": res.nit,
        "status": res.status.value,
        "message": res.message,
        "diagnoses": diagnoses_json(res.diagnoses),
        "boundary": {
            "x": xs.tolist(),
            "y": ys.tolist(),
            "z": z.reshape(n, n).tolist(),
            "p": [[round(v, 4) for v in row] for row in p.reshape(n, n).tolist()],
        },
        "code": code,
    }


def train_code(data: DataSet, model: ModelSpec, trainer: Trainer, shared: Training) -> str:
    """The Python that reproduces one racer's training with ``descend.fit``."""
    spec = asdict(model)
    arguments = {
        k: v for k, v in _fit_arguments(data, model, trainer, shared).items()
        if k not in ("model", "loss", "data", "validation")
    }  # fmt: skip
    dataset = _dataset_call(data)
    fit_args = "".join(f"    {k}={v!r},\n" for k, v in arguments.items())
    return (
        "import descend\n"
        "from descend.playground.datasets import make_dataset, make_model\n\n"
        f"data = {dataset}\n"
        f"model = make_model({spec['kind']!r}, classes=data.classes, layers={spec['layers']}, "
        f"width={spec['width']}, activation={spec['activation']!r})\n"
        "res = descend.fit(\n"
        '    model, "cross_entropy", (data.X_train, data.y_train),\n'
        "    validation=(data.X_test, data.y_test),\n"
        f"{fit_args})\n"
        "print(res)\n"
        'test_loss = res.epoch_history["val_loss"]  # per epoch\n'
    )


def _dataset_call(data: DataSet) -> str:
    given = [repr(data.name), *(f"{k}={v!r}" for k, v in data.made_with.items())]
    return f"make_dataset({', '.join(given)})"
