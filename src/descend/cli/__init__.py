"""The ``descend`` command line (Typer): ``problems``, ``methods``, ``minimize``, ``compare``.

Example:
    $ descend compare rosenbrock --methods gd,momentum,adam --plot race.png
"""

from descend.cli.app import app, main

__all__ = ["app", "main"]
