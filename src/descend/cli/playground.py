"""``descend playground``: serve the page where optimizers race on a landscape."""

from __future__ import annotations

import contextlib
import enum
from typing import Annotated

import typer

from descend.cli.common import UsageError


class CompilePolicy(str, enum.Enum):
    """The choices of ``--compile`` (:func:`descend.playground.rows_race.compile_races`)."""

    background = "background"
    wait = "wait"
    never = "never"


def register(app: typer.Typer) -> None:
    """Add ``playground`` to ``app``."""
    app.command("playground")(playground_command)


def playground_command(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (the loopback address by default).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8765,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Do not open the page in a browser.")
    ] = False,
    compile: Annotated[
        CompilePolicy,
        typer.Option(
            "--compile",
            help="How races use compiled kernels: 'background' compiles a new race's kernel "
            "in a background thread and uses it from the next race on; 'wait' compiles "
            "before answering (seconds, once per landscape and set of rules); 'never' "
            "steps every race through the engine one step at a time.",
        ),
    ] = CompilePolicy.background,
) -> None:
    """Serve the playground: optimizers racing on a landscape, live in the browser."""
    from descend.playground.server import missing_requirements, serve

    missing = missing_requirements()
    if missing:
        raise UsageError(
            f"the playground needs {', '.join(missing)}: pip install 'descend[playground]'"
        )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C is how a user stops it
        serve(host, port, open_browser=not no_browser, compile=compile.value)
