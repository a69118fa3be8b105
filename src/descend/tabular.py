"""Estimators trained on a CSV table: read it, hold out a seeded validation split,
standardize, fit one of :mod:`descend.estimators`.

One function, :func:`train`, serves ``descend fit`` and the rerun of a recorded fit
(:func:`rerun_fit`, the runner ``descend runs rerun`` uses), so a rerun repeats every
seeded choice (the split, the initialization, the batches). scikit-learn (behind the
estimators) is imported only when a table is fitted, so the command line and the runs
store work without it.

Example:
    >>> table = np.column_stack([X.numpy(), (y[:, 0] > 0).numpy()])  # three features, a label
    >>> np.savetxt("train.csv", table, fmt="%g", delimiter=",", header="a,b,c,label", comments="")
    >>> run = train({"data": "train.csv", "target": "label", "model": "logistic",
    ...              "optimizer": "auto", "batch_size": "auto", "epochs": None, "lr": None,
    ...              "validation_split": 0.2, "seed": 0, "standardize": True,
    ...              "penalty": "l2", "alpha": 1e-3, "l1_ratio": None})
    >>> run.estimator.score(*run.held_out) > 0.8  # accuracy on the held-out fifth
    True
"""

from __future__ import annotations

import hashlib
import re
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from descend.extras import require
from descend.validation import check_non_negative, check_number, nearest

__all__ = [
    "CLASSIFIERS",
    "MODELS",
    "Scaling",
    "TrainedRun",
    "data_identity",
    "feature_matrix",
    "file_sha256",
    "locate_data",
    "penalties",
    "penalty_label",
    "penalty_params",
    "read_table",
    "rerun_fit",
    "target_column",
    "train",
]

#: model names (``descend fit --model``) and the estimator each one builds
MODELS = {
    "logistic": "LogisticRegression",
    "linear": "LinearRegression",
    "svm": "LinearSVC",
    "mlp-classifier": "MLPClassifier",
    "mlp-regressor": "MLPRegressor",
}
CLASSIFIERS = ("logistic", "svm", "mlp-classifier")


# ---------------------------------------------------------------------------------------
# reading tables

_AS_UTF8 = (
    "save it as UTF-8, e.g. iconv -f latin1 -t utf-8 {path.name} > {path.stem}-utf8{path.suffix}"
)


def read_table(path: Path) -> dict[str, np.ndarray]:
    """The columns of a CSV file (or .tsv, .csv.gz) as NumPy arrays, by name."""
    pa = require("pyarrow", "data", feature="reading a CSV table")
    pacsv = require("pyarrow.csv", "data", feature="reading a CSV table")
    if path.is_dir():
        raise ValueError(f"cannot read {str(path)!r}: it is a folder; give a CSV file")
    if not path.is_file():
        raise ValueError(f"cannot read {str(path)!r}: no such file")
    delimiter = "\t" if path.name.lower().endswith(".tsv") else ","
    try:
        table = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=delimiter))
        names = list(table.column_names)
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"cannot read {str(path)!r}: it is not UTF-8 text (byte {exc.object[exc.start]:#x} "
            f"at byte {exc.start} of its header); {_AS_UTF8.format(path=path)}"
        ) from None
    except (pa.ArrowInvalid, OSError) as exc:
        message = " ".join(str(exc).split())
        raise ValueError(f"cannot read {str(path)!r} as CSV: {message}") from None
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        where = "; ".join(
            f"{name!r} in columns {', '.join(str(i + 1) for i, n in enumerate(names) if n == name)}"
            for name in repeated
        )
        raise ValueError(f"{str(path)!r} names two columns the same: {where}; rename them")
    for name, column in zip(names, table.columns):
        if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            raise ValueError(
                f"cannot read {str(path)!r}: column {name!r} is not UTF-8 text; "
                f"{_AS_UTF8.format(path=path)}"
            )
    if table.num_rows == 0:
        raise ValueError(f"{str(path)!r} has no rows")
    return {
        name: column.to_numpy(zero_copy_only=False) for name, column in zip(names, table.columns)
    }


def feature_matrix(columns: dict[str, np.ndarray], names: list[str], path: Path) -> np.ndarray:
    """The named columns as a float64 matrix; a missing or non-numeric one is an error."""
    missing = [name for name in names if name not in columns]
    if missing:
        raise ValueError(
            f"{str(path)!r} has no column(s) {', '.join(map(repr, missing))}; "
            f"columns: {', '.join(columns)}"
        )
    text = [name for name in names if columns[name].dtype.kind not in "biuf"]
    if text:
        raise ValueError(
            f"feature column(s) {', '.join(map(repr, text))} of {str(path)!r} are not "
            "numeric; encode them as numbers (or drop them) first"
        )
    X = np.column_stack([columns[name].astype(np.float64) for name in names])
    _check_finite(X, names, path)
    return X


def _check_finite(values: np.ndarray, names: list[str], path: Path) -> None:
    """One line naming the first missing (empty, NaN) or infinite cell, by column and row."""
    bad = ~np.isfinite(values.reshape(len(values), -1))
    if not bad.any():
        return
    row, column = (int(i) for i in np.argwhere(bad)[0])
    value = values.reshape(len(values), -1)[row, column]
    what = "is empty or NaN" if np.isnan(value) else f"is {value:g}"
    others = int(bad.sum()) - 1
    more = f" ({others} more such cell{'s' * (others != 1)})" if others else ""
    raise ValueError(
        f"{str(path)!r}: column {names[column]!r} {what} at row {row + 1} (line {row + 2} of "
        f"the file){more}; fill or drop such rows first"
    )


def target_column(columns: dict[str, np.ndarray], target: str, model: str, path: Path) -> Any:
    """The target column, checked against the model: numbers for a regressor; text
    labels of a classifier as ``str``."""
    if target not in columns:
        raise ValueError(
            f"{str(path)!r} has no column {target!r} (--target); columns: {', '.join(columns)}"
        )
    y = columns[target]
    if model not in CLASSIFIERS and y.dtype.kind not in "biuf":
        raise ValueError(
            f"target column {target!r} is not numeric; --model {model} predicts numbers "
            f"(use --model {' or '.join(CLASSIFIERS)} for labels)"
        )
    if y.dtype.kind == "f":
        _check_finite(y, [target], path)
    if y.dtype.kind == "O":  # text labels: one kind of label, never None
        if any(v is None for v in y):
            raise ValueError(f"target column {target!r} has empty values")
        y = y.astype(str)
    return y


# ---------------------------------------------------------------------------------------
# fitting


class TrainedRun(NamedTuple):
    """What :func:`train` made: the fitted estimator, its scaling and the data it saw."""

    estimator: Any
    scaling: Scaling
    features: list[str]
    X_train: np.ndarray
    y_train: np.ndarray
    held_out: tuple[np.ndarray, np.ndarray] | None
    notes: list[str]


def train(config: dict[str, Any], *, distributed: bool = False) -> TrainedRun:
    """Read the table, split, scale and fit as ``config`` (``descend fit``'s options) says.

    ``config`` holds ``data`` (the CSV file), ``target``, ``model`` (a key of
    :data:`MODELS`), ``optimizer``, ``batch_size`` (text: an integer, ``full`` or
    ``auto``), ``epochs``, ``lr``, ``validation_split`` (in [0, 1)), ``seed``,
    ``standardize``, and ``penalty``, ``alpha``, ``l1_ratio`` (:func:`penalty_params`;
    absent or None: the model's own), and ``checkpoint`` (a file path) with ``resume``
    (continue from it when it exists). The warnings the fit raised come back as ``notes``,
    in the words of ``descend fit`` (:func:`in_cli_words`).

    ``distributed``: this process is one rank of a process group whose ranks all call
    ``train`` alike (``descend fit --nproc``); each reads the table and makes the same
    split, then fits on its share of the rows (the estimator's ``distributed=True``),
    so every rank ends with the model one process fitting every row reaches.
    """
    train_test_split = require(
        "sklearn.model_selection", "estimators", feature="descend fit"
    ).train_test_split

    data, target, model = Path(config["data"]), config["target"], config["model"]
    validation_split, seed = config["validation_split"], config["seed"]
    optimizer, batch_size = config["optimizer"], config["batch_size"]
    epochs, lr, standardize = config["epochs"], config["lr"], config["standardize"]
    columns = read_table(data)
    y = target_column(columns, target, model, data)
    features = [name for name in columns if name != target]
    if not features:
        raise ValueError(f"{str(data)!r} has no feature columns besides {target!r}")
    X = feature_matrix(columns, features, data)

    held_out = None
    X_train, y_train = X, y
    if validation_split > 0:
        stratify = y if model in CLASSIFIERS and _stratifiable(y, validation_split) else None
        try:
            X_train, X_val, y_train, y_val = train_test_split(
                X, y, test_size=validation_split, random_state=seed, stratify=stratify
            )
        except ValueError as exc:
            raise ValueError(f"--validation-split {validation_split:g}: {exc}") from None
        held_out = (X_val, y_val)

    scaling = Scaling.fit(X_train, y_train if model not in CLASSIFIERS else None, standardize)
    X_train, y_train = scaling.forward(X_train, y_train)
    if held_out is not None:
        held_out = scaling.forward(*held_out)

    penalty = penalty_params(
        model, config.get("penalty"), config.get("alpha"), config.get("l1_ratio")
    )
    estimator = _estimator(model, optimizer, batch_size, epochs, lr, seed).set_params(**penalty)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        X_fit, y_fit, validation = _rows_to_fit(X_train, y_train, held_out, distributed)
        estimator.fit(
            X_fit,
            y_fit,
            validation=validation,
            distributed=distributed,
            checkpoint=config.get("checkpoint"),
            resume=bool(config.get("resume")),
        )
    notes = [in_cli_words(" ".join(str(warning.message).split())) for warning in caught]
    return TrainedRun(estimator, scaling, features, X_train, y_train, held_out, notes)


def _rows_to_fit(
    X: np.ndarray, y: np.ndarray, held_out: Any, distributed: bool
) -> tuple[np.ndarray, np.ndarray, Any]:
    """``(X, y)`` and ``validation=`` for the estimator's fit: all rows, or when
    ``distributed`` this rank's contiguous share of each (in rank order, all rows)."""
    if not distributed:
        return X, y, held_out
    import torch.distributed as dist

    from descend.estimators.rank_rows import rows_of_rank

    if len(X) < dist.get_world_size():
        raise ValueError(
            f"{dist.get_world_size()} processes (--nproc x --nnodes) for {len(X)} training "
            "rows: each process needs one at least; use fewer processes"
        )
    if held_out is not None:
        held_out = tuple(rows_of_rank(part) for part in held_out)
    return rows_of_rank(X), rows_of_rank(y), held_out


#: the estimator's parameters that ``descend fit`` sets, by its flags
CLI_FLAGS = {"max_epochs": "--epochs"}


def in_cli_words(note: str) -> str:
    """An estimator's message with the parameters ``descend fit`` sets named by their flags:
    ``max_epochs=200`` becomes ``--epochs 200``, ``raise max_epochs`` ``raise --epochs``."""
    for name, flag in CLI_FLAGS.items():
        note = re.sub(rf"\b{name}=", f"{flag} ", note)
        note = re.sub(rf"\b{name}\b", flag, note)
    return note


def rerun_fit(config: dict[str, Any]) -> Any:
    """The runner of recorded ``descend fit`` runs: the new run's FitResult, trained on
    the recorded data wherever it is found (:func:`locate_data`). A run of ``nproc *
    nnodes`` ranks runs again on as many ranks of this machine
    (:func:`descend.distributed.launch.run_on_ranks`): the same shares, the same sums."""
    # a fresh run, as the recorded one ended: it neither resumes nor writes a checkpoint
    fresh = {**config, "data": str(locate_data(config)), "checkpoint": None, "resume": False}
    ranks = int(config.get("nproc", 1)) * int(config.get("nnodes", 1))
    if ranks == 1:
        return train(fresh).estimator._fit_result
    from descend.distributed.launch import run_on_ranks

    return run_on_ranks(__name__, _rerun_rank.__name__, {"config": fresh}, nproc=ranks)[0]


def _rerun_rank(config: dict[str, Any]) -> Any:
    """One rank of a rerun: rank 0's FitResult (the one the recorded run kept), detached
    from its trainer, whose network (DistributedDataParallel) cannot leave the process."""
    import dataclasses

    import torch.distributed as dist

    result = train(config, distributed=True).estimator._fit_result
    return dataclasses.replace(result, _state_fn=None) if dist.get_rank() == 0 else None


# ---------------------------------------------------------------------------------------
# the penalty on the weights


def penalties(model: str) -> tuple[str, ...]:
    """The ``--penalty`` values ``model`` takes, as its estimator declares them: ``none``
    and the options of its ``penalty`` parameter (``l2``, ``l1``, ``elasticnet`` for the
    linear models), or ``l2`` alone for an estimator whose only penalty is the L2 term
    its ``alpha`` scales (the MLPs)."""
    constraints = _estimator_class(model)._parameter_constraints
    if "penalty" not in constraints:
        return ("l2",)
    options = next(rule.options for rule in constraints["penalty"] if hasattr(rule, "options"))
    return ("none", *sorted(options, key=lambda name: (len(name), name)))


def penalty_params(
    model: str, penalty: str | None, alpha: float | None, l1_ratio: float | None
) -> dict[str, Any]:
    r"""The estimator's parameters for ``--penalty``, ``--alpha`` and ``--l1-ratio``.

    The objective is the mean loss plus :math:`\alpha R(W)`, with :math:`R` the
    ``penalty`` (``l2``: :math:`\tfrac12\|W\|_2^2`, ``l1``: :math:`\|W\|_1`,
    ``elasticnet``: :math:`\rho\|W\|_1 + \tfrac{1-\rho}{2}\|W\|_2^2` with :math:`\rho`
    = ``l1_ratio``; see :mod:`descend.estimators.linear`). None leaves the model's own.

    Raises:
        ValueError: a penalty the model does not take (naming those it does), ``alpha``
            not a finite number >= 0, ``l1_ratio`` outside [0, 1], or a setting that would
            change nothing: ``alpha`` with no penalty, ``l1_ratio`` without elasticnet.
    """
    choices = penalties(model)
    if penalty is not None and penalty not in choices:
        if len(choices) == 1:
            raise ValueError(
                f"--penalty {penalty!r}: --model {model} takes only {choices[0]}; "
                "--alpha 0 turns its penalty off"
            )
        guess = nearest(penalty, choices)
        hint = f" (did you mean {guess}?)" if guess else ""
        raise ValueError(f"--penalty {penalty!r}: --model {model} takes {_listed(choices)}{hint}")
    params: dict[str, Any] = {}
    if alpha is not None:
        params["alpha"] = check_non_negative("--alpha", alpha)
    if l1_ratio is not None:
        params["l1_ratio"] = check_number("--l1-ratio", l1_ratio, low=0.0, high=1.0)
    if "none" in choices and penalty is not None:
        params["penalty"] = None if penalty == "none" else penalty
    chosen = penalty or _default_penalty(model)
    if alpha is not None and chosen == "none":
        why = "--penalty none" if penalty else f"--model {model} has none by default"
        raise ValueError(
            f"--alpha {alpha:g} changes nothing without a penalty ({why}); "
            f"give --penalty {_listed(choices[1:])}"
        )
    if l1_ratio is not None and chosen != "elasticnet":
        raise ValueError(
            f"--l1-ratio {l1_ratio:g} mixes the elastic net's L1 and L2 parts; it needs "
            f"--penalty elasticnet (the penalty is {chosen})"
        )
    return params


def _listed(names: tuple[str, ...]) -> str:
    return ", ".join(names[:-1]) + f" or {names[-1]}"


def _default_penalty(model: str) -> str:
    defaults = _estimator_class(model)().get_params()
    return (defaults["penalty"] or "none") if "penalty" in defaults else "l2"


def penalty_label(estimator: Any) -> str:
    """The penalty a fitted estimator trained with, in ``descend fit``'s words:
    ``l2, alpha 0.0001``, ``elasticnet, alpha 0.01, l1_ratio 0.15`` or ``none``."""
    params = estimator.get_params()
    penalty = params.get("penalty", "l2")
    if penalty is None or params["alpha"] == 0:
        return "none"
    label = f"{penalty}, alpha {params['alpha']:g}"
    return label + (f", l1_ratio {params['l1_ratio']:g}" if penalty == "elasticnet" else "")


# ---------------------------------------------------------------------------------------
# the data a run was trained on


def data_identity(path: str | Path) -> dict[str, str]:
    """What a run record keeps of its data file, to find it again and know it is the
    same: ``data_path`` (absolute) and ``data_sha256`` (of its bytes)."""
    path = Path(path)
    return {"data_path": str(path.resolve()), "data_sha256": file_sha256(path)}


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def locate_data(config: dict[str, Any]) -> Path:
    """The data file of a recorded run: ``config["data"]`` as given (relative to the
    current folder), else the recorded absolute ``data_path``, whichever holds the
    recorded bytes (``data_sha256``). Records without a hash take the file as given.

    Raises:
        ValueError: naming the file the run needs, and whether a file found there holds
            other data.
    """
    given = Path(config["data"])
    digest = config.get("data_sha256")
    if not digest:
        return given
    recorded = Path(config.get("data_path") or given)
    candidates = [p for p in dict.fromkeys((given, recorded)) if p.is_file()]
    for candidate in candidates:
        if file_sha256(candidate) == digest:
            return candidate
    needed = f"the data file {str(recorded)!r} (sha256 {digest[:12]}...)"
    if candidates:
        raise ValueError(
            f"this run needs {needed}; {str(candidates[0])!r} is there but holds other data "
            f"(sha256 {file_sha256(candidates[0])[:12]}...): it was changed or replaced "
            "since the run was recorded"
        )
    raise ValueError(
        f"this run needs {needed}, recorded as {str(given)!r}; neither is here (from "
        f"{str(Path.cwd())!r}): rerun from the folder that holds it, or put it back"
    )


def _stratifiable(y: np.ndarray, share: float) -> bool:
    _, counts = np.unique(y, return_counts=True)
    return counts.min() >= 2 and round(len(y) * share) >= len(counts)


def _estimator_class(model: str) -> Any:
    import descend.estimators as estimators

    return getattr(estimators, MODELS[model])


def _estimator(
    model: str, optimizer: str, batch_size: str, epochs: int | None, lr: float | None, seed: int
) -> Any:
    params: dict[str, Any] = {
        "optimizer": optimizer,
        "batch_size": _batch_size(batch_size),
        "lr": lr,
        "random_state": seed,
        "verbose": True,
    }
    if epochs is not None:
        params["max_epochs"] = epochs
    return _estimator_class(model)(**params)


def _batch_size(text: str) -> int | str:
    if text.lower() in ("full", "auto"):
        return text.lower()
    try:
        size = int(text)
    except ValueError:
        raise ValueError(
            f"--batch-size must be an integer >= 1, full or auto, got {text!r}"
        ) from None
    if size < 1:
        raise ValueError(f"--batch-size must be an integer >= 1, full or auto, got {size}")
    return size


# ---------------------------------------------------------------------------------------
# scaling


class Scaling:
    r"""Standardization of the features (and of a regression target) by the training rows:
    :math:`(x - \mu)/\sigma` per column (:math:`\sigma = 1` for constant columns)."""

    def __init__(
        self, mean: np.ndarray, scale: np.ndarray, target_mean: float, target_scale: float
    ) -> None:
        self.mean, self.scale = mean, scale
        self.target_mean, self.target_scale = target_mean, target_scale

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray | None, enabled: bool) -> Scaling:
        d = X.shape[1]
        if not enabled:
            return cls(np.zeros(d), np.ones(d), 0.0, 1.0)
        scale = X.std(axis=0)
        scale[~(scale > 0)] = 1.0
        target_mean, target_scale = 0.0, 1.0
        if y is not None:
            target_mean = float(np.mean(y))
            target_scale = float(np.std(y)) or 1.0
        return cls(X.mean(axis=0), scale, target_mean, target_scale)

    def forward(self, X: np.ndarray, y: Any) -> tuple[np.ndarray, Any]:
        X = (X - self.mean) / self.scale
        if self.target_scale != 1.0 or self.target_mean != 0.0:
            y = (np.asarray(y, dtype=np.float64) - self.target_mean) / self.target_scale
        return X, y

    def features(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean) / self.scale

    def target(self, predictions: np.ndarray) -> np.ndarray:
        if self.target_scale == 1.0 and self.target_mean == 0.0:
            return predictions
        return predictions * self.target_scale + self.target_mean

    def state(self) -> dict[str, Any]:
        return {
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "target_mean": self.target_mean,
            "target_scale": self.target_scale,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any] | None, d: int) -> Scaling:
        if not state:
            return cls(np.zeros(d), np.ones(d), 0.0, 1.0)
        return cls(
            np.asarray(state["mean"], dtype=np.float64),
            np.asarray(state["scale"], dtype=np.float64),
            float(state["target_mean"]),
            float(state["target_scale"]),
        )
