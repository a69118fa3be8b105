"""Serving the playground: uvicorn on a local address, the page opened in a browser.

Example:
    $ descend playground --port 8765
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import webbrowser

__all__ = ["REQUIREMENTS", "missing_requirements", "serve"]

#: the modules the playground needs beyond descend's own dependencies (the extra
#: ``descend[playground]``)
REQUIREMENTS = ("fastapi", "uvicorn", "plotly")


def missing_requirements() -> list[str]:
    """The modules of :data:`REQUIREMENTS` that are not installed."""
    return [name for name in REQUIREMENTS if importlib.util.find_spec(name) is None]


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    open_browser: bool = True,
    compile: str = "background",
) -> None:
    """Serve the playground at ``http://host:port/`` until interrupted.

    Args:
        host: the address to listen on (the loopback address unless told otherwise).
        port: the TCP port, 1 to 65535 (0: any free port).
        open_browser: open the page in the default browser once the server is up.
        compile: how races use compiled race kernels, one of
            :data:`~descend.playground.rows_race.POLICIES` (see
            :func:`~descend.playground.rows_race.compile_races`).
    """
    import uvicorn

    from descend.playground.api import create_app
    from descend.playground.rows_race import compile_races, compiling, wait_for_compiles

    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an integer from 0 to 65535, got {port!r}")
    compile_races(compile)
    # torch imports its compiler stack when a process builds its first optimizer (~1.3 s
    # here): at startup, not inside the page's first race
    importlib.import_module("torch._dynamo")
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    print(f"descend playground at {url} (Ctrl+C stops it)", flush=True)
    if open_browser:
        threading.Timer(1.0, webbrowser.open, (url,)).start()
    uvicorn.run(create_app(), host=host, port=port, log_level="warning")
    if compiling():  # the interpreter's exit would wait for it, or abort if cut short
        print("finishing a race kernel's compile (Ctrl+C again quits now)", flush=True)
        try:
            wait_for_compiles()
        except KeyboardInterrupt:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)  # skips the teardown that a compile stopped halfway aborts
