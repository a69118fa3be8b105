"""The optional dependencies: one import path for each, and one line when one is missing.

The core install (``pip install descend``) is what ``minimize``, ``fit``, the optimizers
and the diagnostics need. Tables (``[data]``: pyarrow), figures (``[viz]``: matplotlib),
``History.to_pandas`` (``[pandas]``), the estimators (``[estimators]``: scikit-learn),
tuning (``[tune]``: Optuna) and the playground (``[playground]``) come with extras;
``[all]`` brings every one. Each import site of an extra's package goes through
:func:`require`, so a missing one reads the same everywhere.
"""

from __future__ import annotations

import importlib
from typing import Any


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message is one line naming the extra
    (``pip install 'descend[viz]'``) that brings it."""


def require(package: str, extra: str, *, feature: str | None = None) -> Any:
    """Import ``package`` (a module path such as ``"pyarrow.parquet"``) for ``feature``, or
    raise :class:`MissingExtra` naming the extra that installs it.

    Example:
        >>> require("math", "viz").sqrt(4.0)
        2.0
        >>> require("no_such_package", "viz", feature="descend.viz")
        Traceback (most recent call last):
        ...
        descend.extras.MissingExtra: descend.viz needs no_such_package: pip install 'descend[viz]'
    """
    try:
        return importlib.import_module(package)
    except ImportError:
        top = package.split(".")[0]
        needs = f"{feature} needs {top}" if feature else f"{top} is not installed"
        raise MissingExtra(f"{needs}: pip install 'descend[{extra}]'", name=top) from None
