"""The ``descend`` command line (Typer), also ``python -m descend``.

:mod:`~descend.cli.app` holds the app and ``problems``, ``methods``, ``minimize``,
``compare``; :mod:`~descend.cli.runs` adds ``runs ...`` and ``report``,
:mod:`~descend.cli.fit` adds ``fit`` and ``predict``; :mod:`~descend.cli.common` and
:mod:`~descend.cli.recording` hold what they share (errors, options, recording runs).
Commands import torch only when they compute: ``descend --help``, ``problems``, ``methods``
(which read :mod:`~descend.cli.catalog`) and ``runs list`` start without it.

Example:
    $ descend compare rosenbrock --methods gd,momentum,adam --plot race.png
"""

from descend.cli.app import app, main

__all__ = ["app", "main"]
