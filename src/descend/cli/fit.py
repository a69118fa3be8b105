"""``descend fit`` and ``descend predict``: train an estimator on a CSV table, save it, and
predict with it.

``fit`` reads the table, holds out a seeded validation split, trains one of
``descend.estimators`` (progress bar on a terminal) with the penalty ``--penalty``,
``--alpha`` and ``--l1-ratio`` set (:func:`descend.tabular.penalty_params`), prints train
and validation metrics, and saves the model and the loss curves when asked. The saved
model is a ``torch.save`` file of plain data (tensors, numbers, text: see
:mod:`descend.estimators.persist`) read back with ``weights_only=True``, so ``predict``
runs no code from it. ``--nproc N`` (and ``--nnodes`` with ``--node-rank``, ``--master-addr``
and ``--master-port`` across machines) trains data-parallel on N processes, relaunched by
:mod:`descend.cli.launch`; ``--checkpoint`` with ``--resume`` continues a stopped run.

Example:
    $ descend fit train.csv --target label --model logistic --save model.pt --plot curves.png
    $ descend fit train.csv --target price --model linear --penalty elasticnet --alpha 0.01
    $ descend fit train.csv --target label --model mlp-classifier --batch-size 64 --nproc 2
    $ descend predict model.pt test.csv --output predictions.csv
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from descend.cli.common import (
    DbOpt,
    NoRecordOpt,
    check_output_path,
    check_plot_path,
    print_diagnoses,
    replaced,
    stdout_console,
    user_errors,
    write_output,
)
from descend.cli.launch import in_worker, relaunched
from descend.cli.recording import CliRecorder
from descend.tabular import (
    CLASSIFIERS,
    MODELS,
    Scaling,
    feature_matrix,
    penalty_label,
    read_table,
    train,
)

#: the first bytes of a zip archive, as torch.save writes a model file
ZIP_SIGNATURE = b"PK\x03\x04"


def register(app: typer.Typer) -> None:
    """Add ``descend fit`` and ``descend predict`` to the command line app."""
    app.command("fit")(fit_command)
    app.command("predict")(predict_command)


# ---------------------------------------------------------------------------------------
# descend fit


@user_errors
@relaunched(rank_zero_only={"save": None, "plot": None, "no_record": True})
def fit_command(
    data: Annotated[
        Path, typer.Argument(metavar="DATA.csv", help="A CSV table with a header row.")
    ],
    target: Annotated[str, typer.Option("--target", "-t", help="The column to predict.")],
    model: Annotated[
        str,
        typer.Option("--model", help=f"The estimator: {', '.join(MODELS)}.", show_default=True),
    ] = "logistic",
    optimizer: Annotated[
        str,
        typer.Option(
            "--optimizer",
            "-m",
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
    penalty: Annotated[
        str | None,
        typer.Option(
            "--penalty",
            help="The penalty on the weights: none, l2, l1 or elasticnet (the MLPs: l2); "
            "default: the model's.",
            show_default=False,
        ),
    ] = None,
    alpha: Annotated[
        float | None,
        typer.Option(
            "--alpha",
            help="The penalty's strength, >= 0 (default: the model's).",
            show_default=False,
        ),
    ] = None,
    l1_ratio: Annotated[
        float | None,
        typer.Option(
            "--l1-ratio",
            help="elasticnet's share of L1, in [0, 1] (default: the model's).",
            show_default=False,
        ),
    ] = None,
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
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="Save the training state here after every epoch.",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the --checkpoint file.")
    ] = False,
    nproc: Annotated[
        int,
        typer.Option("--nproc", help="Processes on this machine; above 1, data-parallel training."),
    ] = 1,
    nnodes: Annotated[
        int, typer.Option("--nnodes", help="Machines, each running this with its --node-rank.")
    ] = 1,
    node_rank: Annotated[
        int, typer.Option("--node-rank", help="This machine's rank, in [0, --nnodes).")
    ] = 0,
    master_addr: Annotated[
        str, typer.Option("--master-addr", help="Node 0's address, where the nodes meet.")
    ] = "127.0.0.1",
    master_port: Annotated[
        int | None,
        typer.Option(
            "--master-port",
            help="Node 0's port (default: 29500 for several nodes, else a free one).",
            show_default=False,
        ),
    ] = None,
    db: DbOpt = None,
    no_record: NoRecordOpt = False,
) -> None:
    """Train an estimator on a CSV table; print train and validation metrics."""
    _require_estimators("fit")
    _check_checkpoint(checkpoint, resume)
    if model not in MODELS:
        raise ValueError(f"unknown --model {model!r}; valid: {', '.join(MODELS)}")
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"--validation-split must be in [0, 1), got {validation_split:g}")
    plot_existed = check_plot_path(plot) if plot is not None else False
    save_existed = check_output_path(save, "--save") if save is not None else False
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
        "penalty": penalty,
        "alpha": alpha,
        "l1_ratio": l1_ratio,
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "resume": resume,
        "nproc": nproc,
        "nnodes": nnodes,
    }
    run = train(config, distributed=in_worker())
    for note in run.notes:
        typer.echo(f"note: {note}", err=True)
    estimator, scaling, features = run.estimator, run.scaling, run.features
    X_train, y_train, held_out = run.X_train, run.y_train, run.held_out

    metrics = {"train": _metrics(estimator, X_train, y_train, model)}
    if held_out is not None:
        metrics["validation"] = _metrics(estimator, *held_out, model)
    console = stdout_console()
    epochs_run = estimator.n_iter_
    console.print(
        f"{MODELS[model]} on {data.name} by {estimator._optimizer_label}: {epochs_run} "
        f"epoch{'s' * (epochs_run != 1)}, {estimator.t_} steps"
        + (" (standardized)" if standardize else "")
        + (f" on {nproc * nnodes} processes" if nproc * nnodes > 1 else "")
    )
    console.print(f"penalty: {penalty_label(estimator)}")
    console.print(_metrics_table(model, metrics, scaling))
    console.print(f"loss is without the penalty; {SCORES[_score(model)]}")
    print_diagnoses(console, {MODELS[model]: estimator._fit_result})
    recorder.record(
        "fit",
        {**config, "metrics": metrics},
        estimator._fit_result,
        label=model,
        seed=seed,
        runner="descend.tabular:rerun_fit",
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
        console.print(f"saved the model to {save}{replaced(save_existed)}", soft_wrap=True)
    if plot is not None:
        plot_curves(estimator, plot, f"{MODELS[model]} on {data.name}")
        console.print(f"saved the loss curves to {plot}{replaced(plot_existed)}", soft_wrap=True)
    recorder.announce(console)


def _check_checkpoint(checkpoint: Path | None, resume: bool) -> None:
    if checkpoint is not None and checkpoint.is_dir():
        raise ValueError(f"--checkpoint {str(checkpoint)!r} is a folder; give a file (.pt)")
    if not resume:
        return
    if checkpoint is None:
        raise ValueError("--resume continues from a checkpoint file: give --checkpoint PATH")
    if not checkpoint.is_file():
        raise ValueError(
            f"--resume: no checkpoint file {str(checkpoint)!r} to continue from; run "
            "with --checkpoint alone first, or drop --resume"
        )


def _require_estimators(command: str) -> None:
    try:
        import descend.estimators  # noqa: F401  (scikit-learn behind it)
    except ImportError as exc:
        raise ValueError(
            f"descend {command} needs scikit-learn >= 1.6 ({exc}); "
            "pip install 'descend[estimators]'"
        ) from None


#: the score ``descend fit`` reports beside the loss, and what it is
SCORES = {
    "accuracy": "accuracy is the share of rows labelled right",
    "r2": "R² is 1 - residual / total sum of squares",
}


def _score(model: str) -> str:
    return "accuracy" if model in CLASSIFIERS else "r2"


def _metrics(estimator: Any, X: np.ndarray, y: np.ndarray, model: str) -> dict[str, float]:
    score = _score(model)
    return {
        "rows": len(y),
        "loss": estimator.data_loss(X, y),
        score: float(estimator.score(X, y)) if len(y) > 1 or score == "accuracy" else math.nan,
    }


def _metrics_table(model: str, metrics: dict[str, Any], scaling: Scaling) -> Table:
    score = _score(model)
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


# ---------------------------------------------------------------------------------------
# descend predict


@user_errors
def predict_command(
    model_path: Annotated[
        Path,
        typer.Argument(
            metavar="MODEL.pt", help="A model saved by 'descend fit --save' (or federated's)."
        ),
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
        output_existed = check_output_path(output, "--output")
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
        write_output(output, text, "--output")
        stdout_console().print(
            f"wrote {len(predictions)} predictions to {output}{replaced(output_existed)}",
            soft_wrap=True,
        )


def _load(path: Path) -> tuple[Any, dict[str, Any]]:
    import torch

    from descend.cli.table_models import MODULE_FORMAT, ModulePredictor
    from descend.estimators.persist import load

    if path.is_dir():
        raise ValueError(f"cannot read {str(path)!r}: it is a folder; give a model file (.pt)")
    if not path.is_file():
        raise ValueError(f"cannot read {str(path)!r}: no such file")
    with path.open("rb") as head:
        if head.read(4) != ZIP_SIGNATURE:  # torch.save writes a zip archive
            raise ValueError(
                f"{str(path)!r} is not a descend model file (a model saved by "
                "'descend fit --save' is a torch zip archive); give MODEL.pt first, then DATA.csv"
            )
    try:
        payload = torch.load(path, weights_only=True, map_location="cpu")
        if isinstance(payload, dict) and payload.get("format") == MODULE_FORMAT:
            # a module saved by descend federated --save (or tune): the same columns
            return ModulePredictor(payload), payload
        estimator, extra = load(path)
    except Exception as exc:  # any failure to parse an untrusted file means "not a model"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
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
