"""``descend runs ...`` and ``descend report``: the recorded runs on the command line.

Every ``descend minimize``, ``compare`` and ``fit`` is recorded in the runs database
(``--db PATH``, else ``$DESCEND_HOME/runs.sqlite``, else the user data folder; see
:mod:`descend.runs`). These commands read it:

    $ descend runs list                 # --json for scripts, here and on runs show
    $ descend runs show 3
    $ descend runs compare 3 4 5 --plot runs.png
    $ descend runs rerun 3
    $ descend runs export 3 --format csv --output run3.csv
    $ descend runs delete 3             # asks first; --yes does not
    $ descend report 3 --html report.html
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import math
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import numpy as np
import typer
from rich import box
from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text

from descend.cli.common import (
    DbOpt,
    JsonOpt,
    UsageError,
    check_output_path,
    check_plot_path,
    number,
    print_json,
    replaced,
    stdout_console,
    user_errors,
    write_output,
)
from descend.cli.parse import format_vector
from descend.runs import DamagedRunWarning, RunRecord, RunStore, StoreError, UnknownRun

__all__ = ["register", "runs_app"]

F = TypeVar("F", bound=Callable[..., Any])

runs_app = typer.Typer(
    name="runs",
    help="The recorded runs: list, show, compare, rerun, export, delete.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)

IdArg = Annotated[int, typer.Argument(metavar="ID", help="A run id (see 'descend runs list').")]
IdsArg = Annotated[list[int], typer.Argument(metavar="ID...", help="Run ids.")]


def _store_errors(command: F) -> F:
    """A database that cannot be used, or a run that is not there: one line, exit 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (StoreError, UnknownRun) as exc:
            raise UsageError(str(exc)) from exc

    return cast(F, wrapper)


def _open(db: Path | None, create: bool = False) -> RunStore:
    return RunStore(db, create=create)


# -------------------------------------------------------------------------------------------
# descend runs list


@runs_app.command("list")
@user_errors
@_store_errors
def list_command(
    db: DbOpt = None,
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind", help="Only runs of this kind (minimize, compare, fit).", show_default=False
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", "-n", min=1, help="Only the newest N runs.", show_default=False),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """List the recorded runs, oldest first."""
    with _open(db) as store, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DamagedRunWarning)
        infos = store.list(kind=kind, limit=limit)
        path = store.path
    for warning in caught:  # damaged runs were skipped: say so, list the rest
        typer.echo(f"warning: {warning.message}", err=True)
    if json_output:
        print_json([dataclasses.asdict(info) for info in infos])
        return
    console = stdout_console()
    if not infos:
        console.print(f"no runs recorded in {path}" + (f" of kind {kind!r}" if kind else ""))
        return
    table = Table(
        title=f"runs in {path}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
    # the id and the numbers never wrap; words fold onto more lines rather than being cut
    columns: list[tuple[str, JustifyMethod, int | None]] = [
        ("id", "right", None),
        ("recorded", "left", 5),
        ("kind", "left", None),
        ("run", "left", 8),
        ("status", "left", None),
        ("final f", "right", None),
        ("iter", "right", None),
        ("time", "right", None),
        ("group", "left", 8),
    ]
    for column, justify, min_width in columns:
        table.add_column(
            column,
            justify=justify,
            no_wrap=min_width is None,
            overflow="ellipsis" if min_width is None else "fold",
            min_width=min_width,
        )
    for info in infos:
        table.add_row(
            str(info.id),
            _when(info.created, "%m-%d %H:%M"),
            info.kind,
            f"{info.label} on {info.problem}" if info.problem else info.label,
            _status_text(info.status),
            number(info.fun, 6),
            "—" if info.nit is None else str(info.nit),
            "—" if info.time is None else f"{info.time:.2f}s",
            info.group or "",
        )
    console.print(table)


# -------------------------------------------------------------------------------------------
# descend runs show


@runs_app.command("show")
@user_errors
@_store_errors
def show_command(run_id: IdArg, db: DbOpt = None, json_output: JsonOpt = False) -> None:
    """Show one run: its result, configuration, environment and diagnoses."""
    with _open(db) as store:
        run = store.get(run_id)
    if json_output:
        record = run.to_dict()
        record["tables"] = {name: len(run.table(name)) for name in run.tables}
        print_json(record)
        return
    console = stdout_console()
    table = Table(
        title=f"run {run.id}: {run.label} ({run.kind})", title_justify="left", show_header=False
    )
    table.add_column("", style="bold", no_wrap=True)
    table.add_column("", overflow="fold")  # a long value (a hash, a path) folds, never cut
    for name, value in _result_rows(run):
        table.add_row(name, value)
    console.print(table)

    config = Table(title="configuration", title_justify="left", show_header=False, box=box.SIMPLE)
    config.add_column("", style="bold", no_wrap=True)
    config.add_column("", overflow="fold")
    for name, value in _flatten(run.config):
        config.add_row(name, _short(value))
    if run.runner:
        config.add_row("runner", run.runner)
    console.print(config)

    env = Table(title="environment", title_justify="left", show_header=False, box=box.SIMPLE)
    env.add_column("", style="bold", no_wrap=True)
    env.add_column("", overflow="fold")
    for name, value in run.environment.items():
        env.add_row(name, _short(value))
    console.print(env)

    tables = ", ".join(f"{name} ({len(run.table(name))} rows)" for name in run.tables)
    console.print(Text.assemble(("histories: ", "bold"), tables or "none"))
    if run.diagnoses:
        console.print(Text("diagnoses:", style="bold"))
        for d in run.diagnoses:
            console.print(
                f"  [{d.get('severity', 'info')}] {d.get('kind', '')} (step {d.get('step', '?')}): "
                f"{d.get('message', '')}",
                markup=False,
            )
            if d.get("suggestion"):
                console.print(f"    fix: {d['suggestion']}", markup=False)
    else:
        console.print(Text.assemble(("diagnoses: ", "bold"), "no problems found"))


def _result_rows(run: RunRecord) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        ("recorded", _when(run.created)),
        ("status", _status_text(run.status.value, run.converged)),
        ("message", run.message),
        ("final f" if run.kind != "fit" else "final loss", f"{run.fun:.10g}"),
    ]
    if run.x is not None and run.x.size:
        rows.append(("x", format_vector(run.x.reshape(-1).tolist(), limit=10, digits=8)))
    rows += [
        ("gradient norm", f"{run.grad_norm:.3e}"),
        ("iterations" if run.kind != "fit" else "steps", str(run.nit)),
        ("evaluations", str(run.nfev) if run.nfev == run.njev else f"{run.nfev} f, {run.njev} ∇f"),
        ("time", f"{run.time:.3g} s"),
    ]
    if run.seed is not None:
        rows.append(("seed", str(run.seed)))
    if run.group:
        rows.append(("group", run.group))
    return rows


# -------------------------------------------------------------------------------------------
# descend runs compare


@runs_app.command("compare")
@user_errors
@_store_errors
def compare_command(
    run_ids: IdsArg,
    db: DbOpt = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Save their loss curves here (.png, .pdf, .svg); runs of one 2-D problem "
            "with recorded paths get the race figure (paths and losses).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Compare runs side by side: results, then the settings that differ."""
    if len(run_ids) < 2:
        raise ValueError("give at least two run ids to compare, e.g. descend runs compare 3 4")
    if len(set(run_ids)) != len(run_ids):
        raise ValueError(f"run ids {run_ids} name a run twice; give each once")
    plot_existed = check_plot_path(plot) if plot is not None else False
    with _open(db) as store:
        runs = [store.get(i) for i in run_ids]
    table = Table(title="runs side by side", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("", style="bold", no_wrap=True)
    for run in runs:
        table.add_column(f"run {run.id}", justify="right", overflow="fold")
    finite = [r.fun for r in runs if math.isfinite(r.fun)]
    best = min(finite) if finite else None
    table.add_row("label", *[r.label for r in runs])
    table.add_row("kind", *[r.kind for r in runs])
    table.add_row("status", *[_status_text(r.status.value, r.converged) for r in runs])
    table.add_row(
        "final f",
        *[Text(f"{r.fun:.6g}", style="bold green" if r.fun == best else "") for r in runs],
    )
    table.add_row("‖∇f‖", *[f"{r.grad_norm:.2e}" for r in runs])
    table.add_row("iterations", *[str(r.nit) for r in runs])
    table.add_row("evaluations", *[str(r.nfev) for r in runs])
    table.add_row("time", *[f"{r.time:.3g}s" for r in runs])
    flat = [dict(_flatten(r.config)) for r in runs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    # a key one run lacks differs from any value the others have, None included
    differing = [k for k in keys if len({_setting(f, k) for f in flat}) > 1]
    for key in differing:
        table.add_row(key, *[_short(f[key]) if key in f else "(none)" for f in flat])
    versions = [f"{r.environment.get('descend')} / {r.environment.get('torch')}" for r in runs]
    if len(set(versions)) > 1:
        table.add_row("descend / torch", *versions)
    console = stdout_console()
    console.print(table)
    same = [k for k in keys if k not in differing]
    if same:
        console.print(
            "same in all: " + ", ".join(f"{k}={_short(flat[0][k])}" for k in same), style="dim"
        )
    if plot is not None:
        _plot_runs(runs, plot)
        console.print(f"saved the plot to {plot}{replaced(plot_existed)}", soft_wrap=True)


def _setting(flat: dict[str, Any], key: str) -> str:
    """A setting as comparable text; a missing one is unlike every value."""
    return json.dumps(flat[key], sort_keys=True) if key in flat else "(missing)"


def _plot_runs(runs: list[RunRecord], path: Path) -> None:
    from descend.problems import get_problem
    from descend.viz import plot_loss, plot_race

    labels = {f"#{r.id} {r.label}": r for r in runs}
    problems = {r.problem for r in runs}
    if len(problems) == 1 and None not in problems and all(r.kind != "fit" for r in runs):
        problem = get_problem(str(problems.pop()))
        if problem.dim != 2 or all(r.history.record_x for r in runs):
            plot_race(problem, labels, path)
            return
    plot_loss(labels, path, title="runs " + ", ".join(str(r.id) for r in runs))


# -------------------------------------------------------------------------------------------
# descend runs rerun


@runs_app.command("rerun")
@user_errors
@_store_errors
def rerun_command(run_id: IdArg, db: DbOpt = None) -> None:
    """Run a recorded configuration again and check it reproduces the numbers bit for bit.

    Prints "identical" (exit 0) or the first difference (exit 1). The rerun is not recorded.
    """
    from descend.runs import rerun

    with _open(db) as store:
        original = store.get(run_id)
    console = stdout_console()
    what = f"{original.problem} by {original.method}" if original.problem else original.label
    console.print(f"rerunning run {run_id} ({original.kind}: {what}) ...", style="dim")
    if original.config.get("data_sha256"):
        from descend.tabular import locate_data

        data = locate_data(original.config)  # a missing or changed file: one line, exit 2
        console.print(f"data: {data} (the recorded bytes, by their SHA-256)", style="dim")
    from descend.cli.launch import RankFailed
    from descend.distributed.launch import RankFailure

    try:
        outcome = rerun(original)  # a run of --nproc N reruns on N ranks of this machine
    except RankFailure as failure:
        raise RankFailed(str(failure)) from None
    if outcome.identical:
        tables = [c for c in outcome.compared if "." in c and not c.startswith("result.")]
        console.print(
            Text.assemble(
                ("identical", "bold green"),
                f": status, counts, final f, x and {len(tables)} history columns match bit for "
                "bit (the clock column 'time' is not compared)",
            )
        )
        return
    console.print(Text.assemble(("different", "bold red"), f": {outcome.difference}"))
    env = original.environment
    console.print(
        f"recorded with descend {env.get('descend')}, torch {env.get('torch')}, python "
        f"{env.get('python')} on {env.get('platform')}",
        style="dim",
    )
    raise typer.Exit(1)


# -------------------------------------------------------------------------------------------
# descend runs export


@runs_app.command("export")
@user_errors
@_store_errors
def export_command(
    run_id: IdArg,
    fmt: Annotated[
        str,
        typer.Option("--format", "-f", help="csv (a history table) or json (the whole record)."),
    ] = "json",
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Write here instead of standard output.", show_default=False),
    ] = None,
    table_name: Annotated[
        str,
        typer.Option("--table", help="With csv: the history to write (history, epoch_history)."),
    ] = "history",
    db: DbOpt = None,
) -> None:
    """Export a run: its whole record as JSON, or one of its histories as CSV."""
    fmt = fmt.lower()
    if fmt not in ("csv", "json"):
        raise ValueError(f"--format {fmt!r} is not known; use csv or json")
    existed = check_output_path(output, "--output") if output is not None else False
    with _open(db) as store:
        run = store.get(run_id)
    text = _csv(run, table_name) if fmt == "csv" else json.dumps(run.to_dict(), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_output(output, text, "--output")
        stdout_console().print(f"wrote run {run_id} as {fmt} to {output}{replaced(existed)}")


def _csv(run: RunRecord, name: str) -> str:
    if name not in run.tables:
        raise ValueError(
            f"--table {name!r}: run {run.id} has {', '.join(run.tables) or 'no histories'}"
        )
    columns = run.columns(name)
    xs = columns.pop("x", None)
    order = [c for c in run.summary["tables"][name]["columns"] if c in columns]
    header = list(order)
    data = [columns[c] for c in order]
    if xs is not None and len(xs):
        flat = xs.reshape(len(xs), -1)
        header += [f"x{i}" for i in range(flat.shape[1])]
        data += [flat[:, i] for i in range(flat.shape[1])]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in zip(*data, strict=True):
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return repr(float(value))  # the shortest text that reads back to the same float
    return str(value)


# -------------------------------------------------------------------------------------------
# descend runs delete


@runs_app.command("delete")
@user_errors
@_store_errors
def delete_command(
    run_ids: IdsArg,
    db: DbOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking first.")] = False,
) -> None:
    """Delete runs from the database, for good (asks first, unless --yes)."""
    which = f"run{'s' if len(run_ids) > 1 else ''} {', '.join(map(str, run_ids))}"
    with _open(db) as store:
        for run_id in run_ids:
            store.require(run_id)  # all of them must exist before any is deleted
        store.check_writable()  # a read-only or damaged file says so before asking
        if not yes and not _confirmed(f"delete {which} from {store.path} for good?"):
            typer.echo("nothing deleted (--yes deletes without asking)", err=True)
            raise typer.Exit(1)
        for run_id in run_ids:
            store.delete(run_id)
    stdout_console().print(f"deleted {which}")


def _confirmed(question: str) -> bool:
    """The user's yes; no answer (standard input closed) is a no."""
    try:
        return typer.confirm(question)
    except typer.Abort:
        return False


# -------------------------------------------------------------------------------------------
# descend report


@user_errors
@_store_errors
def report_command(
    run_ids: IdsArg,
    html: Annotated[
        Path,
        typer.Option(
            "--html",
            help="Write the report here: one self-contained HTML page (plots embedded).",
            show_default=False,
        ),
    ],
    db: DbOpt = None,
) -> None:
    """Write one HTML page of runs: configuration, results, curves and diagnoses."""
    from descend.runs.report import write_report

    if len(set(run_ids)) != len(run_ids):
        raise ValueError(f"run ids {run_ids} name a run twice; give each once")
    if html.suffix.lower() not in (".html", ".htm") and not html.is_dir():
        raise ValueError(f"--html {str(html)!r} must end in .html")
    existed = check_output_path(html, "--html")
    with _open(db) as store:
        runs = [store.get(i) for i in run_ids]
    try:
        write_report(runs, html)
    except OSError as exc:
        raise ValueError(f"--html {str(html)!r}: cannot write it ({exc.strerror})") from None
    which = f"run{'s' if len(runs) > 1 else ''} {', '.join(map(str, run_ids))}"
    stdout_console().print(f"wrote the report of {which} to {html}{replaced(existed)}")


def register(app: typer.Typer) -> None:
    """Add ``runs`` and ``report`` to the ``descend`` app."""
    app.add_typer(runs_app, name="runs")
    app.command("report")(report_command)


# -------------------------------------------------------------------------------------------
# formatting


def _when(created: str, form: str = "%Y-%m-%d %H:%M") -> str:
    import datetime as dt

    try:
        moment = dt.datetime.fromisoformat(created)
    except ValueError:
        return created
    return moment.astimezone().strftime(form)


def _status_text(status: str, converged: bool | None = None) -> Text:
    if converged is None:
        converged = status in ("gtol", "ftol", "xtol", "target")
    if converged:
        return Text(f"{status} ✓", style="green")
    return Text(status, style="red" if status == "diverged" else "yellow")


def _flatten(config: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in config.items():
        if isinstance(value, dict) and value:
            out += _flatten(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        if len(value) > 6:
            return "[" + ", ".join(_short(v) for v in value[:5]) + f", … {len(value)} items]"
        return "[" + ", ".join(_short(v) for v in value) + "]"
    if value is None:
        return "—"
    return str(value)
