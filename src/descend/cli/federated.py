"""``descend federated``: federated training of a model on a CSV table, simulated in one
process (``descend.federated.simulate``), with a progress bar and a table per round.

The table is split by the seed into the clients' rows and the server's test rows (the
``--test-split`` share), standardized on the clients' rows, and the clients' rows are
dealt to ``--clients`` clients (IID, Dirichlet(``--alpha``) or pathological). Each round
the sampled clients train by ``descend.fit`` and the server applies the strategy.

Example:
    $ descend federated train.csv --target label --model mlp-classifier --clients 20 \\
        --partition dirichlet --alpha 0.1 --strategy fedprox --rounds 30
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from descend.cli.common import (
    DbOpt,
    NoRecordOpt,
    check_output_path,
    number,
    replaced,
    stdout_console,
    user_errors,
)
from descend.cli.recording import CliRecorder
from descend.cli.table_models import MODULES, build_module, module_state, read_for_module


def register(app: typer.Typer) -> None:
    """Add ``descend federated`` to the command line app."""
    app.command("federated")(federated_command)


@user_errors
def federated_command(
    data: Annotated[
        Path, typer.Argument(metavar="DATA.csv", help="A CSV table with a header row.")
    ],
    target: Annotated[str, typer.Option("--target", "-t", help="The column to predict.")],
    model: Annotated[
        str, typer.Option("--model", help=f"The model: {', '.join(MODULES)}.")
    ] = "mlp-classifier",
    clients: Annotated[int, typer.Option("--clients", help="Clients sharing the rows.")] = 10,
    partition: Annotated[
        str, typer.Option("--partition", help="iid, dirichlet or pathological.")
    ] = "iid",
    alpha: Annotated[
        float, typer.Option("--alpha", help="Dirichlet concentration (> 0; small: skewed).")
    ] = 0.5,
    classes_per_client: Annotated[
        int, typer.Option("--classes-per-client", help="Labels per client (pathological).")
    ] = 2,
    strategy: Annotated[
        str,
        typer.Option(
            "--strategy", help="fedavg, fedavgm, fedprox, fedadam, fedyogi or fedadagrad."
        ),
    ] = "fedavg",
    rounds: Annotated[int, typer.Option("--rounds", help="Communication rounds.")] = 10,
    fraction: Annotated[
        float, typer.Option("--fraction", help="Share of clients per round, in (0, 1].")
    ] = 1.0,
    local_epochs: Annotated[
        int, typer.Option("--local-epochs", help="Each client's epochs per round.")
    ] = 1,
    batch_size: Annotated[
        str, typer.Option("--batch-size", help="Each client's batch size: an integer or full.")
    ] = "32",
    optimizer: Annotated[
        str, typer.Option("--optimizer", "-m", help="The clients' method.")
    ] = "momentum",
    lr: Annotated[
        float | None,
        typer.Option(
            "--lr", help="The clients' learning rate (default: the method's).", show_default=False
        ),
    ] = None,
    hidden: Annotated[int, typer.Option("--hidden", min=1, help="Hidden units of an MLP.")] = 64,
    test_split: Annotated[
        float, typer.Option("--test-split", help="Share of rows the server tests on, in (0, 1).")
    ] = 0.2,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Seeds the split, partition and training.")
    ] = 0,
    processes: Annotated[
        int,
        typer.Option(
            "--processes", min=1, help="Train the clients in this many processes (same result)."
        ),
    ] = 1,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="Save the server's state here after every round (resume with --resume).",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue from --checkpoint if it exists; ends as a run never stopped.",
        ),
    ] = False,
    save: Annotated[
        Path | None,
        typer.Option(
            "--save",
            help="Save the global model here (.pt); 'descend predict' reads it.",
            show_default=False,
        ),
    ] = None,
    db: DbOpt = None,
    no_record: NoRecordOpt = False,
) -> None:
    """Train a model over simulated clients holding parts of a CSV table."""
    from descend.federated import simulate

    if resume and checkpoint is None:
        raise ValueError("--resume continues from --checkpoint FILE; give --checkpoint")
    if checkpoint is not None and checkpoint.is_dir():
        raise ValueError(f"--checkpoint {str(checkpoint)!r} is a folder; give a file")
    save_existed = check_output_path(save, "--save") if save is not None else False
    table = read_for_module(data, target, model, test_split, seed, "--test-split")
    recorder = CliRecorder(db, enabled=not no_record)  # a broken database stops us here
    size: int | str = batch_size.strip().lower()
    if size != "full":
        try:
            size = int(size)
        except ValueError:
            raise ValueError(
                f"--batch-size must be an integer >= 1 or full, got {batch_size!r}"
            ) from None
    rows: list[dict[str, float]] = []
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        transient=True, console=_stderr(),
    ) as bar:  # fmt: skip
        task = bar.add_task("rounds", total=rounds)

        def on_round(row: dict[str, float]) -> None:
            rows.append(row)
            bar.update(task, completed=int(row["round"]),
                       description=f"round {int(row['round'])}: test "
                                   f"{number(_score(row, table.classifier), 4)}")  # fmt: skip

        res = simulate(
            build_module(model, table, hidden, seed), table.loss, table.train, clients=clients,
            partition=partition, alpha=alpha, classes_per_client=classes_per_client,
            strategy=strategy, rounds=rounds, fraction=fraction, local_epochs=local_epochs,
            local_batch_size=size, optimizer=optimizer, lr=lr, test=table.held_out,
            metric=table.metric, seed=seed, on_round=on_round, processes=processes,
            checkpoint=checkpoint, resume=resume or None,
        )  # fmt: skip
    console = stdout_console()
    sizes = res.client_sizes
    console.print(
        f"{model} on {data.name}: {len(sizes)} clients ({partition}, {min(sizes)}-{max(sizes)} "
        f"rows each), {res.strategy.name}, {rounds} rounds of {local_epochs} local "
        f"epoch{'s' * (local_epochs != 1)} by {optimizer}; seed {seed}"
    )
    console.print(_rounds_table(rows, table.classifier))
    config = {
        "data": str(data), "target": target, "model": model, "clients": clients,
        "partition": partition, "alpha": alpha, "classes_per_client": classes_per_client,
        "strategy": strategy, "rounds": rounds, "fraction": fraction,
        "local_epochs": local_epochs, "batch_size": batch_size, "optimizer": optimizer,
        "lr": lr, "hidden": hidden, "test_split": test_split, "seed": seed,
    }  # fmt: skip
    recorder.record("federated", config, res, label=res.strategy.name, seed=seed)
    if save is not None:
        import torch

        torch.save(module_state(model, table, hidden, res.model, target), save)
        console.print(f"saved the global model to {save}{replaced(save_existed)}", soft_wrap=True)
    recorder.announce(console)


def _score(row: dict[str, float], classifier: bool) -> float:
    return row["test_metric"] if classifier else row["test_loss"]


def _rounds_table(rows: list[dict[str, float]], classifier: bool) -> Table:
    table = Table()
    for column in ("round", "clients", "client loss", "test loss"):
        table.add_column(column, justify="right")
    if classifier:
        table.add_column("test accuracy", justify="right")
    table.add_column("MB sent", justify="right")
    for row in rows:
        cells = [str(int(row["round"])), str(int(row["clients"])),
                 number(row["client_loss"], 4), number(row["test_loss"], 4)]  # fmt: skip
        if classifier:
            cells.append(f"{row['test_metric']:.4f}" if not math.isnan(row["test_metric"]) else "—")
        cells.append(f"{row['bytes'] / 1e6:.2f}")
        table.add_row(*cells)
    return table


def _stderr() -> Any:
    from rich.console import Console

    return Console(stderr=True)
