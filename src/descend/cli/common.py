"""What every ``descend`` command shares: one-line user errors, the output console, the
``--db``/``--no-record`` options, the check of a ``--plot`` path and number formatting."""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

try:  # typer >= 0.2x vendors click as typer._click
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - older typer depends on click itself
    from click.exceptions import UsageError

__all__ = [
    "DbOpt",
    "NoRecordOpt",
    "UsageError",
    "check_plot_path",
    "number",
    "stdout_console",
    "user_errors",
]

F = TypeVar("F", bound=Callable[..., Any])

DbOpt = Annotated[
    Path | None,
    typer.Option(
        "--db",
        metavar="PATH",
        help="The runs database (default: $DESCEND_HOME/runs.sqlite, else runs.sqlite in "
        "the user data folder, ~/.local/share/descend on Linux).",
        show_default=False,
    ),
]
NoRecordOpt = Annotated[
    bool,
    typer.Option("--no-record", help="Do not record this run in the runs database."),
]


def user_errors(command: F) -> F:
    """Turn the library's ValueError/TypeError (bad input) into a one-line usage error."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (ValueError, TypeError) as exc:
            raise UsageError(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def stdout_console() -> Console:
    """The console for tables and results (progress goes to stderr)."""
    # Wide enough for the tables when piped; a terminal uses its own width.
    return Console(width=None if sys.stdout.isatty() else 120, highlight=False)


def print_diagnoses(console: Console, results: dict[str, Any]) -> None:
    """What the health monitors saw in each named run, once per finding, after its table."""
    from descend.monitors import format_diagnoses  # torch: only for commands that computed

    for name, result in results.items():
        if getattr(result, "diagnoses", None):
            console.print(Text(f"{name}: what the monitors saw", style="bold"))
            console.print(Text(format_diagnoses(result)))


def check_plot_path(path: Path) -> None:
    """Refuse a ``--plot`` file matplotlib cannot write, before any work is done."""
    from matplotlib.figure import Figure

    formats = Figure().canvas.get_supported_filetypes()
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in formats:
        raise ValueError(
            f"--plot {str(path)!r} has no known image suffix; use one of "
            f"{', '.join('.' + f for f in ('png', 'pdf', 'svg'))} (or {', '.join(sorted(formats))})"
        )
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"--plot {str(path)!r}: the folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"--plot {str(path)!r}: the folder {str(folder)!r} is not writable")


def number(value: float, digits: int = 6) -> str:
    """``value`` in ``digits`` significant digits; ``—`` for NaN, ``inf``/``-inf`` spelled."""
    if math.isnan(value):
        return "—"
    if math.isinf(value):
        return "-inf" if value < 0 else "inf"
    return f"{value:.{digits}g}"
