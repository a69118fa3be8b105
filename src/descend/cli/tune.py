"""``descend tune``: an Optuna study of a model on a CSV table, each trial a ``descend.fit``.

The table is read, split into training and validation rows by the seed, standardized on
the training rows (labels of a classifier numbered 0..C-1), and ``descend.tune.tune_fit``
searches the methods' hyperparameters, pruning trials by their per-epoch validation score.
With ``--storage sqlite:///study.db`` the study lives in SQLite and the same command
continues it. Prints a progress bar (stderr), the best trials and the best arguments.

Example:
    $ descend tune train.csv --target label --model mlp-classifier --optimizer adam,momentum \\
        --trials 50 --storage sqlite:///study.db
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from descend.cli.common import DbOpt, NoRecordOpt, number, stdout_console, user_errors
from descend.cli.recording import CliRecorder, new_group
from descend.cli.table_models import MODULES, build_module, read_for_module


def register(app: typer.Typer) -> None:
    """Add ``descend tune`` to the command line app."""
    app.command("tune")(tune_command)


@user_errors
def tune_command(
    data: Annotated[
        Path, typer.Argument(metavar="DATA.csv", help="A CSV table with a header row.")
    ],
    target: Annotated[str, typer.Option("--target", "-t", help="The column to predict.")],
    model: Annotated[
        str, typer.Option("--model", help=f"The model: {', '.join(MODULES)}.")
    ] = "logistic",
    optimizer: Annotated[
        str,
        typer.Option(
            "--optimizer", "-m", help="Methods to choose among, comma-separated (adam,momentum)."
        ),
    ] = "adam",
    trials: Annotated[
        int, typer.Option("--trials", min=1, help="The study's size (stored trials count).")
    ] = 20,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Epochs per trial.")] = 20,
    batch_sizes: Annotated[
        str, typer.Option("--batch-sizes", help="Batch sizes to choose among (32,128,full).")
    ] = "32,128",
    schedules: Annotated[
        str,
        typer.Option("--schedules", help="Schedules to choose among (none,cosine,step)."),
    ] = "none",
    hidden: Annotated[
        int, typer.Option("--hidden", min=1, help="Hidden units of an MLP model.")
    ] = 64,
    validation_split: Annotated[
        float, typer.Option("--validation-split", help="Share of rows scored, in (0, 1).")
    ] = 0.2,
    pruner: Annotated[
        str, typer.Option("--pruner", help="hyperband, median, halving or none.")
    ] = "hyperband",
    sampler: Annotated[str, typer.Option("--sampler", help="tpe, random or cmaes.")] = "tpe",
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage", help="Keep the study here: sqlite:///study.db.", show_default=False
        ),
    ] = None,
    study_name: Annotated[
        str, typer.Option("--study-name", help="The study's name in --storage.")
    ] = "descend-tune",
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", help="Start no trial after this many seconds.", show_default=False
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seeds the split and study.")] = 0,
    plots: Annotated[
        Path | None,
        typer.Option(
            "--plots",
            help="Save the optimization history, parameter importances and slice plot "
            "in this folder (.png).",
            show_default=False,
        ),
    ] = None,
    db: DbOpt = None,
    no_record: NoRecordOpt = False,
) -> None:
    """Tune a model's optimizer on a CSV table (Optuna; every trial a descend.fit); every
    trial and a rerun of the best one are recorded in the runs database."""
    from descend.extras import require

    optuna = require("optuna", "tune", feature="descend tune")
    from descend.tune import default_space, save_plots, tune_fit

    table = read_for_module(data, target, model, validation_split, seed, "--validation-split")
    recorder = CliRecorder(db, enabled=not no_record)  # a broken database stops us here
    group = new_group("tune")
    config = {
        "data": str(data), "target": target, "model": model, "hidden": hidden,
        "epochs": epochs, "validation_split": validation_split, "study": study_name,
        "storage": storage, "seed": seed,
    }  # fmt: skip

    def on_run(trial: int, arguments: dict[str, Any], result: Any) -> None:
        recorder.record("tune", {**config, "trial": trial, "arguments": arguments}, result,
                        label=f"trial {trial}", group=group)  # fmt: skip

    if plots is not None:
        try:
            plots.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"--plots {str(plots)!r}: cannot make that folder ({exc})") from None
    space = default_space(
        [name.strip() for name in optimizer.split(",") if name.strip()],
        batch_sizes=_choices(batch_sizes, "--batch-sizes"),
        schedules=[
            None if s.strip().lower() == "none" else s.strip() for s in schedules.split(",")
        ],
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        transient=True, console=_stderr(),
    ) as bar:  # fmt: skip
        task = bar.add_task("trials", total=trials)

        def on_trial(trial: Any) -> None:
            value = "pruned" if trial.value is None else number(trial.value, 4)
            bar.update(
                task, completed=trial.number + 1, description=f"trial {trial.number}: {value}"
            )

        found = tune_fit(
            lambda: build_module(model, table, hidden), table.loss, table.train,
            validation=table.held_out, metric=table.metric, epochs=epochs, space=space,
            trials=trials, timeout=timeout, sampler=sampler, pruner=pruner, storage=storage,
            study_name=study_name, seed=seed, on_trial=on_trial, on_run=on_run,
        )  # fmt: skip
    best = found.rerun()  # the best configuration again, unpruned, with its seed
    recorder.record(
        "tune", {**config, "trial": found.best_trial, "arguments": found.best_arguments}, best,
        label=f"best: trial {found.best_trial}, rerun", group=group,
    )  # fmt: skip
    console = stdout_console()
    score = "validation accuracy" if table.classifier else "validation loss (standardized target)"
    console.print(
        f"{model} on {data.name}: {len(found.study.trials)} trials, {found.complete} complete, "
        f"{found.pruned} pruned, {found.work} epochs trained; best {score} "
        f"{number(found.best_value, 4)} (trial {found.best_trial})"
    )
    console.print(_best_table(found, score))
    shown = ", ".join(f"{k}={_text(v)}" for k, v in found.best_arguments.items())
    console.print(f"best: {shown}")
    if plots is not None:
        written = save_plots(found.study, plots)
        console.print(f"saved {', '.join(p.name for p in written)} in {plots}", soft_wrap=True)
    if storage is not None:
        console.print(f"the study {study_name!r} is in {storage}; run again to continue it")
    recorder.announce(console)


def _best_table(found: Any, score: str, rows: int = 5) -> Table:
    from optuna.trial import TrialState

    done = found.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    maximize = found.study.direction.name == "MAXIMIZE"
    done.sort(key=lambda t: -t.value if maximize else t.value)
    table = Table(title=f"best trials by {score}")
    for column in ("trial", "value", "epochs", "parameters"):
        table.add_column(column, justify="left" if column == "parameters" else "right")
    for trial in done[:rows]:
        params = ", ".join(f"{k}={_text(v)}" for k, v in trial.params.items())
        table.add_row(
            str(trial.number), number(trial.value, 4), str(trial.user_attrs.get("work", "")), params
        )
    return table


def _choices(text: str, flag: str) -> list[int | str]:
    out: list[int | str] = []
    for item in (part.strip().lower() for part in text.split(",")):
        if item == "full":
            out.append(item)
            continue
        try:
            size = int(item)
        except ValueError:
            size = 0
        if size < 1:
            raise ValueError(f"{flag} takes integers >= 1 or full, comma-separated; got {item!r}")
        out.append(size)
    return out


def _text(value: Any) -> str:
    if isinstance(value, float) and not math.isnan(value):
        return f"{value:.4g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_text(v) for v in value) + ")"
    return str(value)


def _stderr() -> Any:
    from rich.console import Console

    return Console(stderr=True)
