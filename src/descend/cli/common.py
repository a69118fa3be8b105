"""What every ``descend`` command shares: one-line user errors, the output console, the
``--db``/``--no-record``/``--json`` options, the checks of output paths and number
formatting."""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer
from rich.console import Console
from rich.text import Text

from descend.extras import MissingExtra

try:  # typer >= 0.2x vendors click as typer._click
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - older typer depends on click itself
    from click.exceptions import UsageError

__all__ = [
    "DbOpt",
    "JsonOpt",
    "NoRecordOpt",
    "UsageError",
    "check_output_path",
    "check_plot_path",
    "number",
    "print_json",
    "replaced",
    "stdout_console",
    "user_errors",
    "write_output",
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
JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print JSON (for scripts) instead of a table."),
]


def user_errors(command: F) -> F:
    """Turn the library's ValueError/TypeError (bad input) and a missing extra (one line
    naming it) into a one-line usage error."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (ValueError, TypeError, MissingExtra) as exc:
            raise UsageError(str(exc)) from exc

    return cast(F, wrapper)


def stdout_console() -> Console:
    """The console for tables and results (progress goes to stderr): a terminal's width,
    or ``$COLUMNS`` when set; 120 columns when piped. Strings are never read as markup
    unless a command asks (``markup=True`` on its own print)."""
    fits = sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit()
    return Console(width=None if fits else 120, highlight=False, markup=False)


def print_json(value: Any) -> None:
    """``value`` as indented strict JSON on stdout (NaN and infinities as null)."""
    from descend.runs.record import strict_json

    sys.stdout.write(json.dumps(strict_json(value), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def print_diagnoses(console: Console, results: dict[str, Any]) -> None:
    """What the health monitors saw in each named run, once per finding, after its table."""
    from descend.monitors import format_diagnoses  # torch: only for commands that computed

    for name, result in results.items():
        if getattr(result, "diagnoses", None):
            console.print(Text(f"{name}: what the monitors saw", style="bold"))
            console.print(Text(format_diagnoses(result)))


def check_output_path(path: Path, option: str) -> bool:
    """Refuse an output file that cannot be written, before any work is done: an existing
    folder, a folder that does not exist or is not writable, a read-only file. Returns
    whether a file is already there (to be replaced: say so with :func:`replaced`)."""
    shown = f"{option} {str(path)!r}"
    if path.is_dir():
        raise ValueError(f"{shown} is a folder; give a file path (e.g. {str(path / 'out')!r})")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"{shown}: the folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{shown}: the folder {str(folder)!r} is not writable")
    exists = path.exists()
    if exists and not os.access(path, os.W_OK):
        raise ValueError(f"{shown}: the file exists and is not writable")
    return exists


def replaced(existed: bool) -> str:
    """The words to add after "wrote ... to PATH" when a file was there before."""
    return " (replacing the file that was there)" if existed else ""


def write_output(path: Path, text: str, option: str) -> None:
    """Write ``text`` to ``path``; a failure (disk full, permissions) is a one-line error."""
    try:
        path.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise ValueError(f"{option} {str(path)!r}: cannot write it ({exc.strerror})") from None


def check_plot_path(path: Path) -> bool:
    """Refuse a ``--plot`` file matplotlib cannot write, before any work is done; returns
    whether a file is already there (see :func:`check_output_path`)."""
    from matplotlib.figure import Figure

    formats = Figure().canvas.get_supported_filetypes()
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in formats and not path.is_dir():
        raise ValueError(
            f"--plot {str(path)!r} has no known image suffix; use one of "
            f"{', '.join('.' + f for f in ('png', 'pdf', 'svg'))} (or {', '.join(sorted(formats))})"
        )
    return check_output_path(path, "--plot")


def number(value: float, digits: int = 6) -> str:
    """``value`` in ``digits`` significant digits; ``—`` for NaN, ``inf``/``-inf`` spelled."""
    if math.isnan(value):
        return "—"
    if math.isinf(value):
        return "-inf" if value < 0 else "inf"
    return f"{value:.{digits}g}"
