"""What a run returns: the result object and its per-iteration history."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from descend.extras import require
from descend.notebook import diagnoses_table, history_table, outcome, section, table


class Status(str, Enum):
    """Why a run stopped. The first four count as converged."""

    GTOL = "gtol"
    FTOL = "ftol"
    XTOL = "xtol"
    TARGET = "target"
    MAX_ITER = "max_iter"
    MAX_TIME = "max_time"
    CALLBACK = "callback"
    EARLY_STOPPING = "early_stopping"
    SADDLE = "saddle"
    DIVERGED = "diverged"
    LINE_SEARCH_FAILED = "line_search_failed"
    RUNNING = "running"

    def __str__(self) -> str:
        return self.value

    @property
    def converged(self) -> bool:
        return self in _CONVERGED

    @property
    def failed(self) -> bool:
        """The run failed or its answer is wrong: it diverged, its line search failed, or
        it stopped at a saddle point."""
        return self in _FAILED


_CONVERGED = {Status.GTOL, Status.FTOL, Status.XTOL, Status.TARGET}
#: the statuses of a run that failed (shown red in a notebook)
_FAILED = {Status.DIVERGED, Status.LINE_SEARCH_FAILED, Status.SADDLE}

#: the per-iteration columns every run records, in order
HISTORY_COLUMNS = ("iteration", "f", "grad_norm", "step_norm", "lr", "time", "nfev", "njev")


class History:
    """Per-iteration record of a run: one row per iterate, row 0 being the start.

    Columns: ``iteration, f, grad_norm, step_norm, lr, time`` (seconds since the start),
    ``nfev, njev`` (cumulative), and ``x`` (the iterates) when recorded. ``fit`` keeps
    histories with its own ``columns`` (per step and per epoch); ``integer`` names the
    columns returned as int64.
    """

    def __init__(
        self,
        record_x: bool = False,
        columns: tuple[str, ...] = HISTORY_COLUMNS,
        integer: tuple[str, ...] = ("iteration", "nfev", "njev"),
    ) -> None:
        self._rows: list[tuple[float, ...]] = []
        self.record_x = record_x
        self.x: list[np.ndarray] = []
        self.columns = tuple(columns)
        self.integer = tuple(c for c in integer if c in self.columns)

    def append(self, row: tuple[float, ...], x: np.ndarray | None = None) -> None:
        self._rows.append(row)
        if self.record_x and x is not None:
            self.x.append(x)

    def extend(self, rows: list[tuple[float, ...]], xs: list[np.ndarray] | None = None) -> None:
        """Append ``rows`` (and their iterates ``xs``) at once."""
        self._rows.extend(rows)
        if self.record_x and xs is not None:
            self.x.extend(xs)

    def __len__(self) -> int:
        return len(self._rows)

    def rows(self, start: int = 0, stop: int | None = None) -> list[tuple[float, ...]]:
        """Rows ``start:stop`` as tuples in ``columns`` order, without building arrays
        (what monitors read during a run, at a cost of O(stop - start))."""
        return self._rows[start:stop]

    def __getitem__(self, column: str) -> np.ndarray:
        return self.as_dict()[column]

    def as_dict(self) -> dict[str, np.ndarray]:
        """The history as ``{column: array}``; ``x`` (iterations, *shape) if recorded."""
        table = np.asarray(self._rows, dtype=np.float64).reshape(-1, len(self.columns))
        out = {name: table[:, i] for i, name in enumerate(self.columns)}
        for name in self.integer:
            out[name] = out[name].astype(np.int64)
        if self.record_x:
            out["x"] = np.stack(self.x) if self.x else np.empty((0,))
        return out

    def to_pandas(self) -> Any:
        """The scalar columns as a pandas DataFrame (pandas: ``pip install 'descend[pandas]'``)."""
        pd = require("pandas", "pandas", feature="History.to_pandas")
        data = self.as_dict()
        data.pop("x", None)
        return pd.DataFrame(data).set_index(self.columns[0])

    def state_dict(self) -> dict[str, Any]:
        """The rows (and iterates), for a checkpoint; :meth:`load_state_dict` restores them."""
        return {"columns": self.columns, "rows": list(self._rows), "x": list(self.x)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if tuple(state["columns"]) != self.columns:
            raise ValueError(
                f"history columns differ: saved {list(state['columns'])}, "
                f"this run records {list(self.columns)}"
            )
        self._rows = [tuple(row) for row in state["rows"]]
        self.x = list(state.get("x", []))

    def __repr__(self) -> str:
        return f"History({len(self)} rows, columns={list(self.columns)})"

    def _repr_html_(self) -> str:
        """A notebook's view: per column its first, last, least and greatest value."""
        data = self.as_dict()
        return history_table(self.columns, data, len(self))


@dataclass
class OptimizeResult(Mapping[str, Any]):
    """The outcome of :func:`descend.minimize`; also a read-only mapping, as SciPy's is.

    Attributes:
        x: the solution, of the kind ``x0`` was given as (NumPy for lists and arrays).
        fun: f at ``x``.
        jac: the gradient at ``x``, of the kind of ``x``.
        hess_inv: for ``bfgs`` (and SciPy's ``"BFGS"``), the inverse-Hessian
            approximation at ``x``, n x n over the flattened ``x`` (NumPy or tensor, as
            ``x``); None for other methods.
        grad_norm: Euclidean norm of the gradient at ``x``.
        nit: iterations (optimizer steps) taken.
        nfev, njev, nhev: evaluations of f, of its gradient, of Hessian-vector products.
        converged: whether a convergence criterion (gtol, ftol, xtol, target) ended the run;
            ``success`` is the same, by SciPy's name.
        status: why the run stopped (:class:`Status`, a ``str``).
        message: the same in plain English, with advice when it failed.
        method: descend's method name.
        time: seconds the run took.
        history: the per-iteration :class:`History`.
        diagnoses: what the health monitors found (:class:`descend.diagnostics.Diagnosis`,
            one per kind); ``descend.diagnostics.print_diagnoses(res)`` prints them.

    As a mapping: ``res["x"]``, ``"jac" in res``, ``res.keys()``, ``res.items()``,
    ``len(res)``, ``dict(res)`` and ``for key in res`` see the attributes above, by name
    (``hess_inv`` only where the method has one, as in SciPy).

    :meth:`to_dict` gives the same with plain Python values (lists, floats, ints, strings,
    None), which ``json.dumps`` takes; :meth:`to_json` is that JSON text.

    Example:
        >>> res = descend.minimize(lambda x: ((x - 3) ** 2).sum(), [0.0, 0.0], "BFGS")
        >>> res["x"], res["success"], sorted(res)[:3]  # (array([3., 3.]), True, [...])
        >>> json.loads(res.to_json())["fun"]  # 0.0
    """

    x: Any
    fun: float
    grad_norm: float
    nit: int
    nfev: int
    njev: int
    status: Status
    message: str
    history: History = field(repr=False)
    nhev: int = 0
    method: str = ""
    time: float = 0.0
    diagnoses: list[Any] = field(default_factory=list, repr=False)
    jac: Any = None
    hess_inv: Any = None

    @property
    def converged(self) -> bool:
        return self.status.converged

    @property
    def success(self) -> bool:
        """Alias of ``converged``, as in ``scipy.optimize.OptimizeResult``."""
        return self.converged

    # -- the mapping, as scipy.optimize.OptimizeResult ---------------------------------------

    def keys(self) -> KeysView[str]:
        """The names, as SciPy's ``dict_keys(['x', 'fun', ...])``."""
        return dict.fromkeys(self).keys()

    def items(self) -> ItemsView[str, Any]:
        return {key: self[key] for key in self}.items()

    def values(self) -> ValuesView[Any]:
        return {key: self[key] for key in self}.values()

    def __iter__(self) -> Iterator[str]:
        return (key for key in RESULT_KEYS if key != "hess_inv" or self.hess_inv is not None)

    def __len__(self) -> int:
        return len(RESULT_KEYS) - (self.hess_inv is None)

    def __getitem__(self, key: str) -> Any:
        if key not in RESULT_KEYS or (key == "hess_inv" and self.hess_inv is None):
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in RESULT_KEYS and (key != "hess_inv" or self.hess_inv is not None)

    def to_dict(self) -> dict[str, Any]:
        """The result with plain Python values, for ``json.dumps``.

        Arrays and tensors become (nested) lists, ``status`` its string, ``history`` a
        dict of columns (lists; ``x`` too when recorded), ``diagnoses`` a list of dicts.
        NaN and infinities become None, so the JSON is strict (RFC 8259).
        """
        return {key: _plain(self[key]) for key in self}

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as JSON text; ``kwargs`` go to ``json.dumps`` (``indent=2``)."""
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    def __repr__(self) -> str:
        lines = [
            f"  method: {self.method}",
            f"  status: {self.status.value} ({'converged' if self.converged else 'not converged'})",
            f" message: {self.message}",
            f"     fun: {self.fun:.10g}",
            f"       x: {np.array2string(np.asarray(_as_numpy(self.x)), threshold=8, precision=6)}",
            f"grad_norm: {self.grad_norm:.3e}",
            f"     nit: {self.nit}   nfev: {self.nfev}   njev: {self.njev}   nhev: {self.nhev}",
            f"    time: {self.time:.3g} s",
        ]
        if self.diagnoses:
            kinds = ", ".join(getattr(d, "kind", str(d)) for d in self.diagnoses)
            lines.append(f"diagnoses: {kinds}")
        return "OptimizeResult(\n" + "\n".join(lines) + "\n)"

    def _repr_html_(self) -> str:
        """A notebook's view: the status as a badge, the message, the key figures, the
        diagnoses and the history's summary (every user string escaped)."""
        figures = [
            ("method", self.method),
            ("fun", self.fun),
            ("x", _as_numpy(self.x)),
            ("grad_norm", self.grad_norm),
            ("nit", self.nit),
            ("nfev / njev / nhev", f"{self.nfev} / {self.njev} / {self.nhev}"),
            ("time (s)", f"{self.time:.3g}"),
        ]
        return section(
            "OptimizeResult",
            outcome(self.status, self.converged, self.status.failed, self.message),
            table(figures),
            diagnoses_table(self.diagnoses),
            self.history._repr_html_() if len(self.history) else "",
        )


#: the mapping's keys, in order: SciPy's names first, then descend's
RESULT_KEYS = (
    "x",
    "fun",
    "jac",
    "hess_inv",
    "nit",
    "nfev",
    "njev",
    "nhev",
    "status",
    "success",
    "message",
    "grad_norm",
    "converged",
    "method",
    "time",
    "history",
    "diagnoses",
)


def _plain(value: Any) -> Any:
    """``value`` as JSON's types: lists, dicts, str, int, float (finite) and None."""
    if isinstance(value, Enum):
        return _plain(value.value)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if hasattr(value, "detach"):  # a tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biu":
            return value.tolist()
        return _plain(value.tolist())
    if isinstance(value, History):
        return _plain(value.as_dict())
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    return str(value)


def _as_numpy(x: Any) -> Any:
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return x
