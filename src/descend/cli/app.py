"""``descend`` on the command line: list problems and methods, minimize, race methods.

Every command drives the library (``descend.minimize``, ``descend.problems``,
``descend.viz``); nothing here re-implements a rule. A user's mistake prints one line,
``error: ...``, on stderr and exits with status 2; tables go to stdout, progress to stderr.

Example:
    $ descend compare rosenbrock --methods gd,momentum,nesterov,adagrad,rmsprop,adam --plot race.png
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from descend.cli import catalog
from descend.cli import federated as federated_commands
from descend.cli import fit as fit_commands
from descend.cli import playground as playground_commands
from descend.cli import runs as runs_commands
from descend.cli import tune as tune_commands
from descend.cli.common import (
    DbOpt,
    JsonOpt,
    NoRecordOpt,
    check_plot_path,
    number,
    print_diagnoses,
    print_json,
    replaced,
    stdout_console,
    user_errors,
)
from descend.cli.parse import format_vector
from descend.version import __version__

if TYPE_CHECKING:  # torch-side types: imported by the commands that compute
    from descend.methods import Method
    from descend.problems import Problem
    from descend.result import OptimizeResult

try:  # typer >= 0.2x vendors click as typer._click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # pragma: no cover - older typer depends on click itself
    from click.exceptions import ClickException, NoArgsIsHelpError

__all__ = ["app", "main"]

DEFAULT_RACE = "gd,momentum,nesterov,adagrad,rmsprop,adam"
# A race is a demo: a budget of 6,000 iterations per method lets the fast methods finish
# and shows the slow ones still on their way, in a few seconds for the default race.
RACE_MAX_ITER = 6000
EXIT_USAGE = 2


class _OneLineErrors(TyperGroup):
    """Prints a usage error as ``error: <message>`` on one line and exits 2.

    Click's own usage errors (a missing argument, a number that does not parse) and the
    library's ``ValueError``/``TypeError`` (re-raised as ``UsageError`` by the commands) all
    come here, so a user's mistake never shows a traceback or a boxed panel.
    """

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            outcome = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
            code = outcome if isinstance(outcome, int) else 0
        except NoArgsIsHelpError as exc:
            typer.echo(exc.format_message())
            code = EXIT_USAGE
        except ClickException as exc:
            message = " ".join(exc.format_message().split())
            typer.echo(f"error: {message}", err=True)
            code = exc.exit_code
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            code = 1
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    name="descend",
    cls=_OneLineErrors,
    help="Gradient descent, complete: race optimizers on test problems.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"descend {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Gradient descent, complete: race optimizers on test problems."""


# ---------------------------------------------------------------------------------------
# descend problems

#: a terminal at least this wide also shows each problem's standard start
WIDE = 120


@app.command("problems")
def problems_command(json_output: JsonOpt = False) -> None:
    """List the test problems: name, dimension, f*, description (and start when wide)."""
    if json_output:
        print_json([row._asdict() for row in catalog.PROBLEMS])
        return
    console = stdout_console()
    wide = console.width >= WIDE
    table = Table(
        title="test problems (descend.problems)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
    )
    table.add_column("name", style="bold cyan", no_wrap=True)
    table.add_column("dim", justify="right", no_wrap=True)
    table.add_column("f*", justify="right", no_wrap=True)
    if wide:
        table.add_column("start", overflow="fold")
    table.add_column("description", overflow="fold")
    for row in catalog.PROBLEMS:
        cells = [row.name, f"{row.dim}{'+' if row.any_dimension else ''}", number(row.f_min)]
        if wide:
            cells.append(format_vector(row.start, limit=4))
        table.add_row(*cells, row.description)
    console.print(table)
    console.print(
        "dim: the standard dimension; n+ takes any dimension as a suffix, e.g. "
        "rosenbrock-10d." + ("" if wide else " --json lists the starts too."),
        style="dim",
    )


# ---------------------------------------------------------------------------------------
# descend methods


@app.command("methods")
def methods_command(json_output: JsonOpt = False) -> None:
    """List the methods: name, optimizer class and its default options, budget, summary."""
    if json_output:
        print_json([row._asdict() for row in catalog.METHODS])
        return
    table = Table(
        title="methods (descend.methods.METHODS)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
    )
    table.add_column("name", style="bold cyan", no_wrap=True)
    table.add_column("optimizer and options", no_wrap=True)
    table.add_column("budget", justify="right", no_wrap=True)
    table.add_column("summary", overflow="fold")
    for row in catalog.METHODS:
        table.add_row(row.name, _optimizer_cell(row), str(row.max_iter), row.summary)
    console = stdout_console()
    console.print(table)
    console.print(
        "optimizer: the descend.optim class with the method's options, one a line; (fixed) "
        "options define the method. Override a default with --option key=value (e.g. "
        "--option momentum=0.5). budget: the iterations minimize allows (--max-iter).",
        style="dim",
    )


def _optimizer_cell(row: catalog.MethodEntry) -> str:
    """The class, then each default option and each fixed one, one a line."""
    lines = [row.optimizer.rpartition(".")[2]]
    lines += [f"  {k}={_short(v)}" for k, v in row.defaults.items()]
    lines += [f"  {k}={_short(v)} (fixed)" for k, v in row.fixed.items()]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# descend minimize

ProblemArg = Annotated[
    str,
    typer.Argument(
        metavar="PROBLEM",
        help="A test problem (see 'descend problems'); add -<n>d for another dimension.",
        show_default=False,
    ),
]
LrOpt = Annotated[
    float | None,
    typer.Option("--lr", help="Learning rate (default: the method's own).", show_default=False),
]
MaxIterOpt = Annotated[
    int | None,
    typer.Option(
        "--max-iter",
        min=1,
        help="Iteration budget (default: the method's own).",
        show_default=False,
    ),
]
X0Opt = Annotated[
    str | None,
    typer.Option(
        "--x0",
        help="Start as comma-separated numbers, e.g. --x0=-1.2,1 (default: the "
        "problem's standard start).",
        show_default=False,
    ),
]


@app.command("minimize")
@user_errors
def minimize_command(
    problem_name: ProblemArg,
    method: Annotated[
        str, typer.Option("--method", "-m", help="A method (see 'descend methods').")
    ] = catalog.DEFAULT_METHOD,
    lr: LrOpt = None,
    max_iter: MaxIterOpt = None,
    x0: X0Opt = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            help="An optimizer option key=value (repeatable), e.g. "
            "-o momentum=0.5 -o betas=0.9,0.99.",
            show_default=False,
        ),
    ] = None,
    db: DbOpt = None,
    no_record: NoRecordOpt = False,
) -> None:
    """Minimize a test problem with one method and print the result."""
    from descend.cli.parse import find_method, parse_options
    from descend.cli.recording import CliRecorder, minimize_config
    from descend.minimize import minimize

    problem = _problem(problem_name)
    spec = find_method(method)
    options = parse_options(option or [])
    if lr is not None:
        if "lr" in options:
            raise ValueError("the learning rate is given twice (--lr and --option lr=...)")
        options["lr"] = lr
    start = _start(problem, x0)
    recorder = CliRecorder(db, enabled=not no_record)
    # a recorded 2-D run keeps its path, for the report's landscape
    settings: dict[str, Any] = {"max_iter": max_iter, "record": not no_record and problem.dim == 2}
    result = minimize(problem, start, spec.name, **settings, **options)
    config = minimize_config(problem.name, start, spec.name, options, settings)
    recorder.record("minimize", config, result)

    table = Table(
        title=f"{problem.name} by {spec.name} from {format_vector(start)}",
        title_justify="left",
        show_header=False,
    )
    table.add_column("", style="bold")
    table.add_column("", overflow="fold")
    table.add_row("status", _status(result))
    table.add_row("message", result.message)
    table.add_row("f", f"{result.fun:.10g}   (f* = {number(problem.f_min)})")
    table.add_row("x", format_vector(result.x, limit=10, digits=8))
    table.add_row("distance to nearest minimum", number(problem.distance_to_minimum(result.x)))
    table.add_row("gradient norm", f"{result.grad_norm:.3e}")
    table.add_row("iterations", str(result.nit))
    table.add_row("evaluations", _evaluations(result))
    table.add_row("time", f"{result.time:.3g} s")
    table.add_row("options", _options_used(spec, options))
    console = stdout_console()
    console.print(table)
    print_diagnoses(console, {spec.name: result})
    recorder.announce(console)


# ---------------------------------------------------------------------------------------
# descend compare


@app.command("compare")
@user_errors
def compare_command(
    problem_name: ProblemArg,
    methods: Annotated[
        str, typer.Option("--methods", help="Comma-separated methods to race.")
    ] = DEFAULT_RACE,
    lr: Annotated[
        float | None,
        typer.Option(
            "--lr",
            help="One learning rate for every method (default: each method's own).",
            show_default=False,
        ),
    ] = None,
    max_iter: Annotated[
        int, typer.Option("--max-iter", min=1, help="Iteration budget per method.")
    ] = RACE_MAX_ITER,
    x0: X0Opt = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Save a race figure here (.png, .pdf, .svg): paths on the "
            "landscape (2-D problems) and loss per iteration.",
            show_default=False,
        ),
    ] = None,
    db: DbOpt = None,
    no_record: NoRecordOpt = False,
) -> None:
    """Race several methods from the same start and compare where they got."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from descend.cli.parse import parse_methods
    from descend.cli.recording import CliRecorder, minimize_config, new_group
    from descend.minimize import minimize

    problem = _problem(problem_name)
    specs = parse_methods(methods)
    start = _start(problem, x0)
    plot_existed = check_plot_path(plot) if plot is not None else False
    options: dict[str, Any] = {} if lr is None else {"lr": lr}
    recorder = CliRecorder(db, enabled=not no_record)
    group = new_group("compare")
    # a recorded 2-D race keeps its paths, for the report's landscape
    keep_paths = plot is not None or (not no_record and problem.dim == 2)

    results: dict[str, OptimizeResult] = {}
    status_console = Console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=status_console,
        transient=True,
        disable=not status_console.is_terminal,
    ) as progress:
        task = progress.add_task("racing", total=len(specs))
        for spec in specs:
            progress.update(task, description=f"running {spec.name}")
            results[spec.name] = minimize(
                problem,
                start,
                spec.name,
                max_iter=max_iter,
                record=keep_paths,
                **options,
            )
            settings = {"max_iter": max_iter, "record": keep_paths}
            config = minimize_config(problem.name, start, spec.name, options, settings)
            recorder.record("compare", config, results[spec.name], group=group)
            progress.advance(task)

    console = stdout_console()
    console.print(_race_table(problem, start, specs, results, lr))
    for name, result in results.items():
        if not result.converged:
            console.print(Text.assemble((name, "bold"), f" did not converge: {result.message}"))
    print_diagnoses(console, results)
    if plot is not None:
        from descend.viz import plot_race

        plot_race(problem, results, plot)
        console.print(f"saved the race plot to {plot}{replaced(plot_existed)}", soft_wrap=True)
    recorder.announce(console)


def _race_table(
    problem: Problem,
    start: list[float],
    specs: list[Method],
    results: dict[str, OptimizeResult],
    lr: float | None,
) -> Table:
    where = ", ".join(format_vector(m) for m in problem.minima[:2])
    if len(problem.minima) > 2:
        where += f" and {len(problem.minima) - 2} more"
    goal = f"f* = {number(problem.f_min)}" + (f" at {where}" if where else " (no minimum)")
    # Compact (no vertical rules, two-line headers) so the table fits 80 columns.
    table = Table(
        title=f"{problem.name} from {format_vector(start)}; {goal}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
    )
    columns: list[tuple[str, JustifyMethod]] = [
        ("method", "left"),
        ("lr", "right"),
        ("final f", "right"),
        ("distance\nto min", "right"),
        ("‖∇f‖", "right"),
        ("iter-\nations", "right"),
        ("evalu-\nations", "right"),
        ("time", "right"),
        ("status", "left"),
    ]
    for column, justify in columns:
        # the numbers never wrap; a long method name folds onto a second line
        wraps = column == "method"
        table.add_column(
            column,
            justify=justify,
            no_wrap=not wraps,
            overflow="fold" if wraps else "ellipsis",
            min_width=8 if wraps else None,
        )
    finite = [r.fun for r in results.values() if math.isfinite(r.fun)]
    best = min(finite) if finite else None
    for spec in specs:
        result = results[spec.name]
        final = Text(f"{result.fun:.3g}", style="bold green" if result.fun == best else "")
        rate = lr if lr is not None else spec.defaults.get("lr")
        table.add_row(
            spec.name,
            "—" if rate is None else f"{rate:g}",
            final,
            number(problem.distance_to_minimum(result.x), digits=3),
            f"{result.grad_norm:.1e}",
            str(result.nit),
            _evaluations(result),
            f"{result.time:.2f}s",
            _status(result),
        )
    return table


# ---------------------------------------------------------------------------------------
# shared pieces


def _problem(name: str) -> Problem:
    """The problem ``name`` names; one too large for memory is a user's error."""
    from descend.problems import get_problem

    try:
        return get_problem(name)
    except MemoryError:
        raise ValueError(
            f"problem {name!r} does not fit in memory; choose a smaller dimension"
        ) from None


def _start(problem: Problem, x0: str | None) -> list[float]:
    if x0 is None:
        return [float(v) for v in problem.start]
    from descend.cli.parse import parse_x0

    return parse_x0(x0, problem.dim, f"problem {problem.name!r}")


def _status(result: OptimizeResult) -> Text:
    """``ftol ✓`` for a converged run that no monitor found an error in; a converged run with
    an ``[error]`` diagnosis gets ``!`` in yellow, a failed one yellow (red when it
    diverged)."""
    errors = [d for d in getattr(result, "diagnoses", None) or [] if d.severity == "error"]
    if result.converged and errors:
        return Text(f"{result.status.value} ! {errors[0].kind}", style="yellow")
    if result.converged:
        return Text(f"{result.status.value} ✓", style="green")
    return Text(result.status.value, style="red" if result.status.value == "diverged" else "yellow")


def _evaluations(result: OptimizeResult) -> str:
    """``"120"`` when f and its gradient were evaluated together, else the counts apart."""
    text = str(result.nfev) if result.nfev == result.njev else f"{result.nfev} f, {result.njev} ∇f"
    return text + (f", {result.nhev} Hv" if result.nhev else "")


def _options_used(spec: Method, options: dict[str, Any]) -> str:
    merged = {**spec.defaults, **options, **spec.fixed}
    return ", ".join(f"{k}={_short(v)}" for k, v in merged.items()) or "—"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ",".join(_short(v) for v in value)
    return str(value)


# the commands of the other modules, listed after these: descend runs ..., descend report
# (the runs database), descend fit, descend predict (estimators trained on CSV tables),
# descend playground (the page)
runs_commands.register(app)
fit_commands.register(app)
playground_commands.register(app)
tune_commands.register(app)
federated_commands.register(app)


def main() -> None:
    """The ``descend`` console script."""
    # figures are only ever saved: no window, no display needed (read when a command that
    # draws imports matplotlib, so commands that do not draw never load it)
    os.environ["MPLBACKEND"] = "Agg"
    app()
