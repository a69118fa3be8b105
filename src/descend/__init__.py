"""descend: gradient descent, complete, on PyTorch.

The package face loads lazily (PEP 562): ``import descend`` costs no more than its version,
and each public name imports its module (and torch) on first use, so ``descend --help``
and the listing commands start without torch. ``descend.minimize`` and
``from descend import fit`` work as they did with eager imports.

To add a public name: one entry in :data:`_PUBLIC`, its name in ``__all__``, and the same
import under ``TYPE_CHECKING`` for type checkers.
"""

import importlib as _importlib
import importlib.util as _importlib_util
import sys as _sys
import types as _types
import typing as _typing

from descend.version import __version__ as __version__

if _typing.TYPE_CHECKING:
    from typing import Any

    from descend import constraints, diagnostics, optim, runs
    from descend.callbacks import Callback
    from descend.engine.stopping import StoppingCriteria
    from descend.least_squares import LeastSquaresResult, least_squares
    from descend.methods import METHODS
    from descend.minimize import minimize
    from descend.multistart import MultistartResult, multistart
    from descend.result import History, OptimizeResult, Status
    from descend.train import FitResult
    from descend.train.fit import fit  # via descend.train, mypy also meets the submodule

#: every public name: ``"module:attribute"`` for a value a module holds, ``"module"`` for a
#: public submodule
_PUBLIC: dict[str, str] = {
    "METHODS": "descend.methods:METHODS",
    "Callback": "descend.callbacks:Callback",
    "FitResult": "descend.train:FitResult",
    "History": "descend.result:History",
    "LeastSquaresResult": "descend.least_squares:LeastSquaresResult",
    "MultistartResult": "descend.multistart:MultistartResult",
    "OptimizeResult": "descend.result:OptimizeResult",
    "Status": "descend.result:Status",
    "StoppingCriteria": "descend.engine.stopping:StoppingCriteria",
    "constraints": "descend.constraints",
    "diagnostics": "descend.diagnostics",
    "fit": "descend.train:fit",
    "least_squares": "descend.least_squares:least_squares",
    "minimize": "descend.minimize:minimize",
    "multistart": "descend.multistart:multistart",
    "optim": "descend.optim",
    "runs": "descend.runs",
}

__all__ = [
    "METHODS",
    "Callback",
    "FitResult",
    "History",
    "LeastSquaresResult",
    "MultistartResult",
    "OptimizeResult",
    "Status",
    "StoppingCriteria",
    "constraints",
    "diagnostics",
    "fit",
    "least_squares",
    "minimize",
    "multistart",
    "optim",
    "runs",
]


def __getattr__(name: str) -> "Any":
    """Import the module that holds public ``name`` on first use, and keep the value; any
    other submodule (``descend.problems``) is imported when first named, as if imported."""
    if name not in _PUBLIC:
        if name.startswith("__") or _importlib_util.find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module 'descend' has no attribute {name!r}")
        return _importlib.import_module(f"{__name__}.{name}")
    module_name, _, attribute = _PUBLIC[name].partition(":")
    module = _importlib.import_module(module_name)
    value = getattr(module, attribute) if attribute else module
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    shown = {name for name in globals() if not name.startswith("_") or name.endswith("__")}
    return sorted(shown | set(_PUBLIC))


class _Face(_types.ModuleType):
    """The package module. Importing a submodule binds it on its package; where a public
    function shares its module's name (``descend.minimize``), the function keeps the name,
    as the eager ``from descend.minimize import minimize`` did."""

    def __setattr__(self, name: str, value: "Any") -> None:
        module_name, _, attribute = _PUBLIC.get(name, "").partition(":")
        if attribute and isinstance(value, _types.ModuleType) and value.__name__ == module_name:
            value = getattr(value, attribute)
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Face
