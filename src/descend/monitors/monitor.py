"""The base of the health monitors: callbacks that watch a run and report what they find.

A monitor is a :class:`descend.callbacks.Callback`. Before the run, the runner
(``minimize``, ``fit``) hands it what the run is made of through ``bind`` (the objective,
the optimizer, and for ``fit`` the model, the loss and the batches). During the run it
reads what the loop already has (the history rows, the bound parameters and their
gradients) and does its own tensor work only at the iterations its schedule names, with
one host synchronization per check at most. It never asks the loop for the intermediate
result (``on_iteration`` returns False), so the loop need not build one for it. At the
end it adds its findings to ``result.diagnoses``: each kind at most once per run, the
first time it was seen.

A monitor's findings and run state go into a ``fit`` checkpoint (``state_dict``; the
attributes named by ``state``), so a resumed run reports what an uninterrupted one does.

A monitor never breaks the run it watches: an exception in its own checks (``begin``,
``watch``, ``watch_epoch``, ``finish``, ``release``, its hooks on the model) switches it off
for the rest of the run and becomes a ``monitor_error`` diagnosis of severity warning,
naming the monitor and the exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

import torch
from torch import Tensor

from descend.callbacks import Callback
from descend.monitors.diagnosis import Diagnosis, Severity
from descend.monitors.state import as_plain, from_plain
from descend.result import HISTORY_COLUMNS
from descend.validation import check_int

#: a wake-up step no run reaches: what :meth:`Monitor.watch` returns to rest for the run
NEVER = 2**62


class Monitor(Callback):
    """Base class: scheduling, binding to the run, and reporting once per kind.

    Subclasses set ``kinds`` (what they can report) and override :meth:`begin`,
    :meth:`watch` (called at the iterations it asks for, with the iteration number),
    :meth:`watch_epoch` (after each pass over the data, in ``fit``), :meth:`finish`
    (called with the final result, before the findings are attached) and :meth:`release`
    (called last, to take off hooks). ``self.view`` reads the run's history. An
    exception in any of them is reported by :meth:`fail`, never raised. ``state`` names
    the attributes that ``begin`` sets and the run changes: what a checkpoint keeps
    (plain values, tensors, lists and dicts of them; see :mod:`descend.monitors.state`);
    :meth:`resume` rebuilds what they imply (hooks, iterators) after a resume. A monitor
    whose run state is a fold over the history rows (``DivergenceMonitor``) needs none:
    after a resume its first ``watch`` folds the restored history from row 0 again.

    Args:
        every: the check interval in steps, an integer >= 1.
    """

    kinds: ClassVar[tuple[str, ...]] = ()
    #: run :meth:`finish` even when every kind was already found (the last iterate's
    #: verdict matters: a run that stops at a saddle says so in its status)
    recheck_at_end: ClassVar[bool] = False
    state: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, every: int = 10) -> None:
        self.every = check_int("every", every, low=1)
        self.objective: Any = None
        self.optimizer: Any = None
        self.model: Any = None
        self.found: dict[str, Diagnosis] = {}
        self.failure: Diagnosis | None = None
        self.wake = 1

    # -- the callback contract -----------------------------------------------------------

    def bind(self, **run: Any) -> None:
        """Take what the run is made of: ``objective``, ``optimizer``, ``model``, ...

        Unknown names are ignored, so runners may pass more than a monitor needs.
        """
        for name in ("objective", "optimizer", "model"):
            if run.get(name) is not None:
                setattr(self, name, run[name])

    def on_begin(self, result: Any) -> None:
        self.found = {}
        self.failure = None
        self.wake = 1
        if self.optimizer is None:
            self.optimizer = getattr(result, "optimizer", None)
        if self.model is None:
            self.model = getattr(result, "model", None)
        try:
            self.view = HistoryView(result.history)
            self.begin(result)
        except Exception as error:
            self.fail("begin", 0, error)

    def on_iteration(self, nit: int) -> bool:
        if nit >= self.wake:
            if self.failure is None and (self.recheck_at_end or len(self.found) < len(self.kinds)):
                try:
                    wake = self.watch(nit)
                except Exception as error:
                    self.fail("watch", nit, error)
                else:
                    self.wake = nit + 1 if wake is None else max(wake, nit + 1)
            else:
                self.wake = NEVER  # everything this monitor reports was found, or it failed
        return False

    def on_step(self, result: Any) -> bool | None:
        # reached only from loops that do not call on_iteration first
        self.on_iteration(result.nit)
        return None

    def on_epoch_end(self, result: Any) -> bool | None:
        if self.failure is None and (self.recheck_at_end or len(self.found) < len(self.kinds)):
            try:
                self.watch_epoch(result)
            except Exception as error:
                self.fail("watch_epoch", int(getattr(result, "nit", 0) or 0), error)
        return None

    def on_end(self, result: Any) -> None:
        nit = int(getattr(result, "nit", 0) or 0)
        if self.failure is None and (self.recheck_at_end or len(self.found) < len(self.kinds)):
            try:
                self.finish(result)
            except Exception as error:
                self.fail("finish", nit, error)
        try:
            self.release()
        except Exception as error:
            self.fail("release", nit, error)
        attach(result, self.diagnoses)

    def state_dict(self) -> dict[str, Any]:
        """The findings so far and the run state named by ``state``, as plain values (a
        state that cannot be written switches the monitor off, in the run and on resume)."""
        try:
            run = {name: as_plain(getattr(self, name)) for name in self.state}
        except Exception as error:
            self.fail("state_dict", 0, error)
            run = {}
        return {
            "wake": self.wake,
            "found": [as_plain(d) for d in self.found.values()],
            "failure": as_plain(self.failure),
            "run": run,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back :meth:`state_dict` (after ``on_begin``, on resume); tensors go to the
        device of the run's parameters."""
        try:
            params = self.params()
            device = params[0].device if params else None
            self.found = {d.kind: d for d in (from_plain(f) for f in state["found"])}
            self.failure = from_plain(state["failure"])
            for name, value in state["run"].items():
                setattr(self, name, from_plain(value, device))
            self.wake = state["wake"]
            self.resume()
        except Exception as error:
            self.fail("load_state_dict", 0, error)

    def fail(self, where: str, nit: int, error: Exception) -> None:
        """Switch this monitor off for the rest of the run and report ``error`` as a
        ``monitor_error`` diagnosis instead of raising it (the first failure of a run is
        kept). Called by the hooks above, and by a monitor's own hooks on the model."""
        self.wake = NEVER
        if self.failure is not None:
            return
        name = type(self).__name__
        self.failure = Diagnosis(
            kind="monitor_error",
            severity=Severity.WARNING,
            step=nit,
            message=(
                f"the {name} check ({', '.join(self.kinds)}) failed in {where} with "
                f"{type(error).__name__}: {error}; it was switched off for the rest of the "
                "run, which went on unaffected"
            ),
            suggestion=(
                "report it to the descend developers with this message; until then this "
                f"run has no findings from {name}"
            ),
        )

    # -- for subclasses ------------------------------------------------------------------

    def begin(self, result: Any) -> None:
        """Reset per-run state (``result`` is the run at its start)."""

    def watch(self, nit: int) -> int | None:
        """Look at the run after iteration ``nit``; return the next iteration to be called
        at (None: the next one). Call :meth:`report` on a finding."""
        return self.next_multiple(nit)

    def watch_epoch(self, result: Any) -> None:
        """Look at the run after a pass over the data (``fit``): ``result.logs`` holds the
        epoch's ``loss`` and, with validation, ``val_loss``."""

    def finish(self, result: Any) -> None:
        """Last look at the final result."""

    def resume(self) -> None:
        """Rebuild what the loaded state implies (hooks on the model, iterators)."""

    def release(self) -> None:
        """Take off what the monitor attached to the run (hooks on the model): called at the
        end of every run, also after a failure."""

    def report(self, diagnosis: Diagnosis) -> None:
        """Keep ``diagnosis`` unless this run already has one of its kind."""
        self.found.setdefault(diagnosis.kind, diagnosis)

    def next_multiple(self, nit: int, every: int | None = None) -> int:
        """The next iteration after ``nit`` that is a multiple of ``every``."""
        every = every or self.every
        return (nit // every + 1) * every

    @property
    def diagnoses(self) -> list[Diagnosis]:
        """What this monitor found in its latest run (and its own failure, if it failed)."""
        found = list(self.found.values())
        return found if self.failure is None else [*found, self.failure]

    def params(self) -> list[Tensor]:
        """The tensors being optimized: the objective's, else the model's, else none."""
        if self.objective is not None:
            return list(self.objective.params)
        if self.model is not None:
            return [p for p in self.model.parameters() if p.requires_grad]
        return []

    def lr(self) -> float:
        """The first parameter group's learning rate, or NaN when there is none."""
        if self.optimizer is None:
            return float("nan")
        lr = self.optimizer.param_groups[0].get("lr")
        return float(lr) if isinstance(lr, (int, float)) else float("nan")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(every={self.every})"


class MonitorGroup(Callback):
    """Several monitors run as one callback: one call per step instead of one each.

    The group wakes at the earliest iteration any of its monitors asked for and passes
    each only the iterations it asked for. The default monitors of a run come as a group.

    Args:
        monitors: the :class:`Monitor` objects.

    Example:
        >>> from descend.monitors import default_monitors
        >>> group = MonitorGroup(default_monitors(off=["saddle"]))
        >>> res = descend.minimize(lambda x: (x**2).sum(), [1.0], "gd", lr=1.5, monitors=[group])
        >>> [d.kind for d in res.diagnoses]
        ['divergence', 'oscillation']
    """

    def __init__(self, monitors: Sequence[Monitor]) -> None:
        self.monitors = list(monitors)
        for m in self.monitors:
            if not isinstance(m, Monitor):
                raise TypeError(
                    f"monitors must be descend.diagnostics.Monitor objects, got {type(m).__name__}"
                )
        self.wake = 1

    def bind(self, **run: Any) -> None:
        for m in self.monitors:
            m.bind(**run)

    def on_begin(self, result: Any) -> None:
        for m in self.monitors:
            m.on_begin(result)
        self.wake = 1

    def on_iteration(self, nit: int) -> bool:
        if nit >= self.wake:
            for m in self.monitors:
                if nit >= m.wake:
                    m.on_iteration(nit)
            self.wake = min((m.wake for m in self.monitors), default=NEVER)
        return False

    def on_step(self, result: Any) -> bool | None:
        self.on_iteration(result.nit)
        return None

    def on_epoch_end(self, result: Any) -> bool | None:
        for m in self.monitors:
            m.on_epoch_end(result)
        return None

    def on_end(self, result: Any) -> None:
        for m in self.monitors:
            m.on_end(result)

    def state_dict(self) -> dict[str, Any]:
        """Each monitor's :meth:`Monitor.state_dict`, in order, by class name."""
        return {"monitors": [(type(m).__name__, m.state_dict()) for m in self.monitors]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back :meth:`state_dict`; a checkpoint without it (written before monitors
        kept state) leaves the monitors as a fresh run has them."""
        saved = state.get("monitors")
        if saved is None:
            return
        names = [type(m).__name__ for m in self.monitors]
        if names != [name for name, _ in saved]:
            raise ValueError(
                f"the checkpoint was saved with monitors {[n for n, _ in saved]}, this run "
                f"has {names}; resume with the same monitors"
            )
        for m, (_, monitor_state) in zip(self.monitors, saved):
            m.load_state_dict(monitor_state)
        self.wake = min((m.wake for m in self.monitors), default=NEVER)

    @property
    def diagnoses(self) -> list[Diagnosis]:
        """What the monitors found in the latest run."""
        return [d for m in self.monitors for d in m.diagnoses]

    def __repr__(self) -> str:
        return f"MonitorGroup({', '.join(type(m).__name__ for m in self.monitors)})"


def attach(result: Any, diagnoses: Any) -> None:
    """Add ``diagnoses`` to ``result.diagnoses``, skipping kinds it already holds."""
    items = list(diagnoses)
    if not items:
        return
    held = getattr(result, "diagnoses", None)
    if held is None:
        held = []
        result.diagnoses = held
    kinds = {d.kind for d in held}
    for d in items:
        if d.kind not in kinds:
            held.append(d)
            kinds.add(d.kind)
    held[:] = one_learning_rate(held)


def one_learning_rate(diagnoses: list[Diagnosis]) -> list[Diagnosis]:
    """One learning-rate recommendation per run. When one finding asks for a lower rate
    (oscillation, divergence: the rate is already too large along the sharpest direction)
    and another for a higher one (progress too slow along a flat direction), both are
    right about their direction and the rate cannot serve both: the problem is badly
    conditioned. The lower rate stands; the other finding keeps its evidence and points at
    the fix for the conditioning instead of a rate."""

    def direction(d: Diagnosis) -> int:
        new, old = d.suggested.get("lr"), d.evidence.get("lr")
        if new is None or old is None or new == old:
            return 0
        return -1 if new < old else 1

    lowering = [d.kind for d in diagnoses if direction(d) < 0]
    if not lowering:
        return diagnoses
    out = []
    for d in diagnoses:
        if direction(d) > 0:
            suggested = {k: v for k, v in d.suggested.items() if k != "lr"}
            d = replace(
                d,
                suggested=suggested,
                suggestion=(
                    f"not a larger rate: {', '.join(lowering)} shows the rate is already at "
                    "its limit along the sharpest direction, while this one is flat; the "
                    "problem is badly conditioned. Use a method that follows curvature "
                    "(lbfgs, newton-cg, trust-region) or rescale the variables"
                ),
            )
        out.append(d)
    return out


class HistoryView:
    """Reads a run's history rows by column name, without building arrays.

    ``minimize`` records ``f``; ``fit`` records its mini-batch ``loss`` per step. The view
    maps both to ``f`` and reads only the rows asked for, so a check costs O(window).
    """

    def __init__(self, history: Any) -> None:
        self.history = history
        columns = tuple(getattr(history, "columns", HISTORY_COLUMNS))
        self.columns = columns
        self.index = {name: i for i, name in enumerate(columns)}
        if "f" not in self.index and "loss" in self.index:
            self.index["f"] = self.index["loss"]
        rows = getattr(history, "rows", None)
        self.rows = rows if callable(rows) else self._slice

    def __len__(self) -> int:
        return len(self.history)

    def has(self, column: str) -> bool:
        return column in self.index

    def _slice(self, start: int = 0, stop: int | None = None) -> Sequence[tuple[float, ...]]:
        return self.history._rows[start:stop]

    def column(self, name: str, start: int = 0, stop: int | None = None) -> list[float]:
        """Column ``name`` of rows ``start:stop`` as floats (negative ``start``: from the end)."""
        if start < 0:
            start = max(len(self.history) + start, 0)
        i = self.index[name]
        return [float(row[i]) for row in self.rows(start, stop)]


def flat(tensors: Sequence[Tensor]) -> Tensor:
    """The tensors as one flat vector (a view when there is only one contiguous tensor)."""
    if len(tensors) == 1:
        return tensors[0].detach().reshape(-1)
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def grads_of(params: Sequence[Tensor]) -> list[Tensor]:
    return [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]


def to_floats(*scalars: Tensor) -> list[float]:
    """Several device scalars as Python floats, with one host synchronization."""
    if not scalars:
        return []
    if scalars[0].device.type == "cpu":
        return [float(s) for s in scalars]
    return torch.stack([s.detach().double().reshape(()) for s in scalars]).tolist()
