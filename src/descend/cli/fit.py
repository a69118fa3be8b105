"""``descend fit`` and ``descend predict``: train an estimator on a CSV table, save it, and
predict with it.

``fit`` reads the table, holds out a seeded validation split, trains one of
``descend.estimators`` (progress bar on a terminal), prints train and validation metrics,
and saves the model and the loss curves when asked. The saved model is a ``torch.save``
file of plain data (tensors, numbers, text: see :mod:`descend.estimators.persist`) read back
with ``weights_only=True``, so ``predict`` runs no code from it.

Example:
    $ descend fit train.csv --target label --model logistic --save model.pt --plot curves.png
    $ descend predict model.pt test.csv --output predictions.csv
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import numpy as np
import typer
from rich.table import Table

from descend.cli.app import DbOpt, NoRecordOpt, _check_plot_path, _stdout, _user_errors

#: --model names and the estimator each one builds
MODELS = {
    "logistic": "LogisticRegression",
    "linear": "LinearRegression",
    "svm": "LinearSVC",
    "mlp-classifier": "MLPClassifier",
    "mlp-regressor": "MLPRegressor",
}
CLASSIFIERS = ("logistic", "svm", "mlp-classifier")


def register(app: typer.Typer) -> None:
    """Add ``descend fit`` and ``descend predict`` to the command line app."""
    app.command("fit")(fit_command)
    app.command("predict")(predict_command)


# ---------------------------------------------------------------------------------------
# reading tables


def read_table(path: Path) -> dict[str, np.ndarray]:
    """The columns of a CSV file (or .tsv, .csv.gz) as NumPy arrays, by name."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if not path.is_file():
        raise ValueError(f"cannot read {str(path)!r}: no such file")
    delimiter = "\t" if path.name.lower().endswith(".tsv") else ","
    try:
        table = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=delimiter))
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        message = " ".join(str(exc).split())
        raise ValueError(f"cannot read {str(path)!r} as CSV: {message}") from None
    if table.num_rows == 0:
        raise ValueError(f"{str(path)!r} has no rows")
    return {
        name: column.to_numpy(zero_copy_only=False)
        for name, column in zip(table.column_names, table.columns)
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
    return np.column_stack([columns[name].astype(np.float64) for name in names])


def target_column(columns: dict[str, np.ndarray], target: str, model: str, path: Path) -> Any:
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
    if y.dtype.kind == "O":  # text labels: one kind of label, never None
        if any(v is None for v in y):
            raise ValueError(f"target column {target!r} has empty values")
        y = y.astype(str)
    return y


# ---------------------------------------------------------------------------------------
# descend fit


@_user_errors
def fit_command(
    data: Annotated[
        Path, typer.Argument(metavar="DATA.csv", help="A CSV table with a header row.")
    ],
    target: Annotated[str, typer.Option("--target", "-t", help="The column to predict.")],
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help=f"The estimator: {', '.join(MODELS)}.", show_default=True
        ),
    ] = "logistic",
    optimizer: Annotated[
        str,
        typer.Option(
            "--optimizer",
            "-o",
            help="A method (see 'descend methods'), or auto: the model's own default.",
        ),
    ] = "auto",
    batch_size: Annotated[
        str,
        typer.Option("--batch-size", help="Rows per step: an integer, full, or auto."),
    ] = "auto",
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs",
            min=1,
            help="Passes over the data (default: the model's).",
            show_default=False,
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option("--lr", help="Learning rate (default: the method's).", show_default=False),
    ] = None,
    validation_split: Annotated[
        float,
        typer.Option(
            "--validation-split", help="Share of rows held out for validation, in [0, 1)."
        ),
    ] = 0.2,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seeds the split and training.")] = 0,
    standardize: Annotated[
        bool,
        typer.Option(
            "--standardize/--no-standardize",
            help="Scale features (and a regression target) to mean 0 and variance 1 on the "
            "training rows; the saved model keeps the scaling and predict applies it.",
        ),
    ] = True,
    save: Annotated[
        Path | None,
        typer.Option("--save", help="Save the trained model here (.pt).", show_default=False),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot", help="Save the loss curves here (.png, .pdf, .svg).", show_default=False
        ),
    ] = None,
    db: DbOpt = None,
    no_record: NoRecordOpt = False,
) -> None:
    """Train an estimator on a CSV table; print train and validation metrics."""
    _require_estimators("fit")
    if model not in MODELS:
        raise ValueError(f"unknown --model {model!r}; valid: {', '.join(MODELS)}")
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"--validation-split must be in [0, 1), got {validation_split:g}")
    if plot is not None:
        _check_plot_path(plot)
    if save is not None:
        _check_folder(save, "--save")
    from descend.cli.runs import CliRecorder

    recorder = CliRecorder(db, enabled=not no_record)  # a broken database stops us here
    config = {
        "data": str(data),
        "target": target,
        "model": model,
        "optimizer": optimizer,
        "batch_size": batch_size,
        "epochs": epochs,
        "lr": lr,
        "validation_split": validation_split,
        "seed": seed,
        "standardize": standardize,
    }
    run = train(config)
    for note in run.notes:
        typer.echo(f"note: {note}", err=True)
    estimator, scaling, features = run.estimator, run.scaling, run.features
    X_train, y_train, held_out = run.X_train, run.y_train, run.held_out

    metrics = {"train": _metrics(estimator, X_train, y_train, model)}
    if held_out is not None:
        metrics["validation"] = _metrics(estimator, *held_out, model)
    console = _stdout()
    epochs_run = estimator.n_iter_
    console.print(
        f"{MODELS[model]} on {data.name} by {estimator._optimizer_label}: {epochs_run} "
        f"epoch{'s' * (epochs_run != 1)}, {estimator.t_} steps"
        + (" (standardized)" if standardize else "")
    )
    console.print(_metrics_table(model, metrics, scaling))
    recorder.record(
        "fit",
        {**config, "metrics": metrics},
        estimator._fit_result,
        label=model,
        seed=seed,
        runner="descend.cli.fit:rerun_fit",
    )

    if save is not None:
        from descend.estimators.persist import save as save_model

        save_model(
            estimator,
            save,
            model=model,
            target=target,
            features=features,
            metrics=metrics,
            loss_curve=list(estimator.loss_curve_),
            validation_loss_curve=list(estimator.validation_loss_curve_ or []),
            scaling=scaling.state(),
        )
        console.print(f"saved the model to {save}")
    if plot is not None:
        plot_curves(estimator, plot, f"{MODELS[model]} on {data.name}")
        console.print(f"saved the loss curves to {plot}")
    recorder.announce(console)


class TrainedRun(NamedTuple):
    """What :func:`train` made: the fitted estimator, its scaling and the data it saw."""

    estimator: Any
    scaling: Scaling
    features: list[str]
    X_train: np.ndarray
    y_train: np.ndarray
    held_out: tuple[np.ndarray, np.ndarray] | None
    notes: list[str]


def train(config: dict[str, Any]) -> TrainedRun:
    """Read the table, split, scale and fit as ``config`` (the command's options) says.

    The same function serves ``descend fit`` and ``descend runs rerun`` of a fit run, so a
    rerun repeats every seeded choice (the split, the initialization, the batches).
    """
    from sklearn.model_selection import train_test_split

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

    estimator = _estimator(model, optimizer, batch_size, epochs, lr, seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator.fit(X_train, y_train, validation=held_out)
    notes = [" ".join(str(warning.message).split()) for warning in caught]
    return TrainedRun(estimator, scaling, features, X_train, y_train, held_out, notes)


def rerun_fit(config: dict[str, Any]) -> Any:
    """The runner of recorded ``descend fit`` runs: the new run's FitResult."""
    return train(config).estimator._fit_result


def _require_estimators(command: str) -> None:
    try:
        import descend.estimators  # noqa: F401  (scikit-learn behind it)
    except ImportError as exc:
        raise ValueError(
            f"descend {command} needs scikit-learn >= 1.6 ({exc}); "
            "pip install 'descend[estimators]'"
        ) from None


def _stratifiable(y: np.ndarray, share: float) -> bool:
    _, counts = np.unique(y, return_counts=True)
    return counts.min() >= 2 and round(len(y) * share) >= len(counts)


def _estimator(
    model: str, optimizer: str, batch_size: str, epochs: int | None, lr: float | None, seed: int
) -> Any:
    from descend import estimators

    params: dict[str, Any] = {
        "optimizer": optimizer,
        "batch_size": _batch_size(batch_size),
        "lr": lr,
        "random_state": seed,
        "verbose": True,
    }
    if epochs is not None:
        params["max_epochs"] = epochs
    return getattr(estimators, MODELS[model])(**params)


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


def _metrics(estimator: Any, X: np.ndarray, y: np.ndarray, model: str) -> dict[str, float]:
    score = "accuracy" if model in CLASSIFIERS else "r2"
    return {
        "rows": len(y),
        "loss": estimator.data_loss(X, y),
        score: float(estimator.score(X, y)) if len(y) > 1 or score == "accuracy" else math.nan,
    }


def _metrics_table(model: str, metrics: dict[str, Any], scaling: Scaling) -> Table:
    score = "accuracy" if model in CLASSIFIERS else "r2"
    table = Table()
    table.add_column("set", style="bold")
    table.add_column("rows", justify="right")
    loss = "loss" if scaling.target_scale == 1.0 else "loss (standardized target)"
    table.add_column(loss, justify="right")
    table.add_column("accuracy" if score == "accuracy" else "R²", justify="right")
    for name, values in metrics.items():
        value = values[score]
        table.add_row(
            name,
            str(values["rows"]),
            f"{values['loss']:.6g}",
            "—" if math.isnan(value) else (f"{value:.4f}"),
        )
    return table


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


def plot_curves(estimator: Any, path: Path, title: str) -> None:
    """Training (and validation) loss per epoch, saved to ``path``."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    axes = figure.add_subplot()
    epochs = np.arange(1, len(estimator.loss_curve_) + 1)
    axes.plot(epochs, estimator.loss_curve_, label="train", color="tab:blue")
    if estimator.validation_loss_curve_:
        axes.plot(epochs, estimator.validation_loss_curve_, label="validation", color="tab:orange")
    values = np.asarray(estimator.loss_curve_ + list(estimator.validation_loss_curve_ or []))
    if len(values) and np.all(values > 0) and values.max() / values.min() > 30:
        axes.set_yscale("log")
    axes.set_xlabel("epoch (full batch: iteration)")
    axes.set_ylabel("loss (without penalty)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.savefig(path)


def _check_folder(path: Path, option: str) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"{option} {str(path)!r}: the folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{option} {str(path)!r}: the folder {str(folder)!r} is not writable")


# ---------------------------------------------------------------------------------------
# descend predict


@_user_errors
def predict_command(
    model_path: Annotated[
        Path, typer.Argument(metavar="MODEL.pt", help="A model saved by 'descend fit --save'.")
    ],
    data: Annotated[
        Path, typer.Argument(metavar="DATA.csv", help="A CSV table with the model's features.")
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            help="Write the predictions here (CSV); default: stdout.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Predict with a saved model for every row of a CSV table."""
    _require_estimators("predict")
    estimator, extra = _load(model_path)
    if output is not None:
        _check_folder(output, "--output")
    columns = read_table(data)
    X = feature_matrix(columns, list(extra["features"]), data)
    scaling = Scaling.from_state(extra.get("scaling"), X.shape[1])
    predictions = estimator.predict(scaling.features(X))
    if extra.get("model") not in CLASSIFIERS:
        predictions = scaling.target(predictions)
    name = f"{extra['target']}_predicted" if extra["target"] in columns else extra["target"]
    text = _csv_column(name, predictions)
    if output is None:
        sys.stdout.write(text)
    else:
        Path(output).write_text(text)
        _stdout().print(f"wrote {len(predictions)} predictions to {output}")


def _load(path: Path) -> tuple[Any, dict[str, Any]]:
    from descend.estimators.persist import load

    if not path.is_file():
        raise ValueError(f"cannot read {str(path)!r}: no such file")
    try:
        estimator, extra = load(path)
    except Exception as exc:  # any failure to parse an untrusted file means "not a model"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise ValueError(f"{str(path)!r} is not a model saved by 'descend fit' ({first})") from None
    if "features" not in extra or "target" not in extra:
        raise ValueError(f"{str(path)!r} was not saved by 'descend fit' (no feature names)")
    return estimator, extra


def _csv_column(name: str, values: np.ndarray) -> str:
    def cell(value: Any) -> str:
        text = repr(float(value)) if isinstance(value, (float, np.floating)) else str(value)
        if any(c in text for c in ',"\n'):
            return '"' + text.replace('"', '""') + '"'
        return text

    lines = [cell(name)] + [cell(v) for v in values]
    return "\n".join(lines) + "\n"
