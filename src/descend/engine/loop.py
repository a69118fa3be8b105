"""The descent loop: evaluate, test, step, call back. Every run of descend goes through it.

One iteration, for each row still running::

    (stochastic feed) the budget: max_iter, max_time, the feed's epochs  -> stop
    measure at x_k                         (a function, a batch, K rows)
    divergence and the best point           (Tracker.observe)
    (exact feed) target, gtol, ftol, xtol   (Tracker.target/gradient/change)
    (exact feed) the budget: max_iter, max_fev, max_time, the feed's own  -> stop
    step: x_k -> x_{k+1}                    (StepFailed -> its status)
    the feed's record of the step           (a function feed measures x_{k+1} here)
    callbacks at x_{k+1}                    (before its tests, as SciPy's)
    the feed's epoch end                    (validation, epoch tests, epoch callbacks)

A stochastic feed (batches of a data set) checks its budget before it draws a batch, so a
run never evaluates a batch it will not step on; an exact feed (a function, the full
batch) measures the last iterate too, so its result reports f where it stopped.

**The best-state rule** (one, for every front end): on a stop that is not convergence, an
exact feed returns the lowest-f iterate it measured if the last one is worse; a stochastic
feed, whose batch losses measure batches rather than the model, returns its best
candidate (its feed decides: the best validated epoch, or the start of the best training
epoch) after a failed stop only (diverged, line search failed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, cast

import torch

from descend.callbacks import CallbackList
from descend.engine.feed import Measure, learning_rate
from descend.engine.stopping import FAILED, Outcome, StoppingCriteria, Tracker, describe
from descend.optim.optimizer import StepFailed
from descend.result import Status


class Feed(Protocol):
    """The front end's side of a run.

    A feed owns the parameters and what evaluates them: one function (``minimize``),
    batches of a data set with epochs and validation (``fit``), or K problems as rows of one
    tensor (``multistart``, races). The loop owns the order of events and every test; a
    feed never decides when a run stops, except for its own budget (epochs) and what its
    epoch ends find, which it reports through the loop's trackers.
    """

    #: independent problems stepped together (1 but for races)
    rows: int
    #: True when ``measure`` evaluates f at the iterate itself (the point tests apply and the
    #: best iterate is known exactly); False for batches of a data set
    exact: bool

    def measure(self, loop: Engine) -> Measure:
        """Evaluate at the current iterate (for a stochastic feed: draw the next batch)."""

    def exhausted(self, loop: Engine) -> Outcome | None:
        """The feed's own budget (epochs, max_steps), or None."""

    def step(self, optimizer: torch.optim.Optimizer, active: list[int]) -> None:
        """One optimizer step of the ``active`` rows (raises ``StepFailed``)."""

    def after_step(self, loop: Engine) -> None:
        """Bookkeeping after step ``loop.nit``, before the callbacks see it (the step's
        record; a function feed measures the new iterate here, for the callbacks)."""

    def epoch_end(self, loop: Engine) -> Outcome | None:
        """After the callbacks: the end of a pass over the data, if this step ended one
        (validation, the epoch's tests and callbacks); a stop it found, or None."""

    def keep_best(self, rows: list[int]) -> None:
        """The current iterate of ``rows`` is their best so far (exact feeds)."""

    def restore_best(self, rows: list[int]) -> str | None:
        """Put the best state of ``rows`` back in the parameters; what was put back, in
        words, or None for the best iterate."""

    def intermediate(self, loop: Engine, status: Status, message: str) -> Any:
        """The result so far, for callbacks."""


class Engine:
    """One run of the loop over a feed. ``run()`` returns each row's ``(status, message)``.

    Attributes:
        nit: iterations taken (optimizer steps).
        trackers: each row's :class:`~descend.engine.stopping.Tracker`.
        outcomes: each row's outcome once it stopped.
        stopped_at: each row's iteration count when it stopped.
        restored: each row: whether its best state was put back at the end.
    """

    def __init__(
        self,
        feed: Feed,
        optimizer: torch.optim.Optimizer,
        stopping: StoppingCriteria,
        callbacks: CallbackList | None = None,
        *,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.feed, self.optimizer, self.stopping = feed, optimizer, stopping
        self.callbacks = callbacks if callbacks is not None else CallbackList()
        self.clock = clock
        # what the tests read: f, or -f for a function feed that maximizes
        name = getattr(feed, "objective_name", "f")
        # what the gradient tests read: the gradient, or a projected gradient on a set
        self.gradient_name = getattr(feed, "gradient_name", "gradient")
        self.trackers = [Tracker(stopping, name, self.gradient_name) for _ in range(feed.rows)]
        self.outcomes: list[Outcome | None] = [None] * feed.rows
        self.restored = [False] * feed.rows
        self.stopped_at = [0] * feed.rows
        self._active = list(range(feed.rows))
        self.nit = 0
        self.elapsed_before = 0.0
        self._start = clock()
        self._measured: Measure | None = None

    # -- what feeds and results read ------------------------------------------------------

    def elapsed(self) -> float:
        return self.elapsed_before + self.clock() - self._start

    def measure(self) -> Measure:
        """The measurement at the current iterate, taken once per iteration."""
        if self._measured is None:
            self._measured = self.feed.measure(self)
        return self._measured

    @property
    def active(self) -> list[int]:
        """The rows still running."""
        return self._active

    def lr(self) -> float:
        return learning_rate(self.optimizer)

    def outcome(self, row: int) -> Outcome:
        """The ``(status, message)`` row ``row`` stopped with (known once ``run`` ends)."""
        return cast(Outcome, self.outcomes[row])

    def state_dict(self) -> dict[str, Any]:
        """The loop's state between two steps (a checkpoint's part of it)."""
        return {
            "nit": self.nit,
            "trackers": [t.state_dict() for t in self.trackers],
            "elapsed": self.elapsed(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.nit = state["nit"]
        for tracker, saved in zip(self.trackers, state["trackers"]):
            tracker.load_state_dict(saved)
        self.elapsed_before = state["elapsed"]

    # -- the loop -------------------------------------------------------------------------

    def run(self, after_begin: Callable[[], Outcome | None] | None = None) -> list[Outcome]:
        """Run until every row stopped. ``after_begin`` runs once after the callbacks'
        ``on_begin`` (a resumed fit gives the callbacks their saved state there, and ends
        an epoch the checkpoint interrupted); a stop it returns ends the run."""
        feed, callbacks = self.feed, self.callbacks
        self._start = self.clock()
        callbacks.on_begin(feed.intermediate(self, Status.RUNNING, "starting"))
        if after_begin is not None:
            self._stop(self.active, after_begin())
        pending: Outcome | None = None
        while active := self.active:
            if not feed.exact and self._stop(active, self._budget()):
                break
            measured = self.measure()
            self._observe(measured, active)
            if pending is not None:
                self._stop(self.active, pending)
                break
            if feed.exact:
                self._tests(measured, self.active)
            active = self.active
            if not active or (feed.exact and self._stop(active, self._budget())):
                break
            try:
                feed.step(self.optimizer, active)
            except StepFailed as failure:
                self._stop(active, (Status(failure.status), failure.message))
                break
            self.nit += 1
            self._measured = None
            feed.after_step(self)
            if callbacks and callbacks.step(
                self.nit, lambda: feed.intermediate(self, Status.RUNNING, "running")
            ):
                pending = self.callback_outcome()
                if not feed.exact:
                    self._stop(active, pending)
                    break
            if self._stop(active, feed.epoch_end(self)):
                break
        self._finish()
        return [out for out in self.outcomes if out is not None]

    def end(self, result: Any) -> None:
        """The callbacks' ``on_end`` with the final result; then what the health monitors
        found at the last iterate: a gradient test met where the Hessian has a clearly
        negative eigenvalue is a saddle point, not a minimum, and the status says so."""
        self.callbacks.on_end(result)
        at_end = [
            d
            for d in getattr(result, "diagnoses", None) or []
            if d.kind == "saddle" and d.step == result.nit
        ]
        if at_end and result.status.converged:
            result.status = Status.SADDLE
            result.message = (
                result.message.rstrip(".")
                + f", but this point is a saddle: {at_end[0].message.rstrip('.')}; "
                + f"{at_end[0].suggestion}"
            )

    def callback_outcome(self, **where: Any) -> Outcome:
        """The stop a callback asked for: its status (``early_stopping``) or ``callback``,
        with the reasons the callbacks give."""
        status = self.callbacks.stop_status() or Status.CALLBACK
        return status, describe(
            status, nit=self.nit, reasons=self.callbacks.stop_reasons(), **where
        )

    def _observe(self, m: Measure, active: list[int]) -> None:
        best = []
        for i in active:  # the rate is read only for a divergence message
            outcome, improved = self.trackers[i].observe(m.f[i], m.g[i], self.nit, self.lr)
            if outcome is not None:
                self._stop([i], outcome)
            elif improved:
                best.append(i)
        if best and self.feed.exact:
            self.feed.keep_best(best)

    def _tests(self, m: Measure, active: list[int]) -> None:
        for i in active:
            t = self.trackers[i]
            self._stop(
                [i],
                t.target(m.f[i])
                or t.gradient(m.g_test[i], self.nit)
                or t.change(m.f[i], m.step[i], m.x_scale[i]),
            )

    def _budget(self) -> Outcome | None:
        s, nit = self.stopping, self.nit
        if nit >= s.max_iter:
            return Status.MAX_ITER, self._budget_message(max_iter=s.max_iter, gtol=s.gtol)
        if s.max_fev is not None and getattr(self.feed, "nfev", 0) >= s.max_fev:
            return Status.MAX_ITER, self._budget_message(max_fev=s.max_fev, nit=nit)
        if s.max_time is not None and self.elapsed() >= s.max_time:
            return Status.MAX_TIME, self._budget_message(max_time=s.max_time, nit=nit)
        return self.feed.exhausted(self)

    def _budget_message(self, **facts: Any) -> str:
        """A budget stop's message, quoting the first row's last gradient norm."""
        status = Status.MAX_TIME if "max_time" in facts else Status.MAX_ITER
        g = self.trackers[0].last_g
        return describe(status, g=g, gradient=self.gradient_name, **facts)

    def _stop(self, rows: list[int], outcome: Outcome | None) -> bool:
        if outcome is None:
            return False
        for i in rows:
            self.outcomes[i] = outcome
            self.stopped_at[i] = self.nit
        self._active = [i for i in self._active if self.outcomes[i] is None]
        return True

    def _finish(self) -> None:
        """The best-state rule (module docstring), row by row."""
        for i, outcome in enumerate(self.outcomes):
            assert outcome is not None
            status, message = outcome
            t = self.trackers[i]
            if t.f0 is None:  # nothing finite was measured: there is no best to return
                continue
            if self.feed.exact:
                restore = not status.converged and not t.last_f <= t.best_f  # NaN too
            else:
                restore = status in FAILED
            if not restore:
                continue
            what = self.feed.restore_best([i])
            if what is None:
                what = f"the best iterate (iteration {t.best_nit}, {t.name} = {t.best_f:.6g})"
            self.restored[i] = True
            self.outcomes[i] = status, message.rstrip(".") + f". Returned {what}."
