"""What ``fit`` returns: the trained model, its histories, and why training stopped."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from descend.notebook import diagnoses_table, outcome, section, table
from descend.result import History, Status

#: per-step history columns: the step's mini-batch loss (before the update, without
#: penalty), the gradient norm before clipping, the lr used, seconds since the start
STEP_COLUMNS = ("step", "epoch", "loss", "grad_norm", "lr", "time")
#: per-epoch history columns: mean training loss over the epoch's rows, validation loss
#: and metric (NaN without validation), the lr of the epoch's last step (before epoch-end
#: schedules and callbacks change it)
EPOCH_COLUMNS = ("epoch", "step", "loss", "val_loss", "val_metric", "lr", "time")


def step_history() -> History:
    return History(columns=STEP_COLUMNS, integer=("step", "epoch"))


def epoch_history() -> History:
    return History(columns=EPOCH_COLUMNS, integer=("epoch", "step"))


@dataclass
class FitResult:
    """The outcome of :func:`descend.fit` (also the intermediate result callbacks receive).

    Attributes:
        model: the trained module (the same object that was passed in), holding the best
            weights when the run diverged or ``EarlyStopping`` restored them.
        status: why training stopped (:class:`descend.Status`): ``max_iter`` when the
            epoch or step budget ran out, ``early_stopping``, ``callback``, ``diverged``,
            ``line_search_failed``, ``gtol``/``ftol``/``xtol``/``target`` from ``stopping``,
            ``saddle``, ``max_time``.
        message: the same in plain English, with advice when it failed.
        history: per-step :class:`descend.History` (columns ``STEP_COLUMNS``).
        epoch_history: per-epoch history (columns ``EPOCH_COLUMNS``).
        fun: full batch: the loss at the returned weights; mini-batches: the latest
            training loss (the last epoch's mean, or the first batch's loss before the
            first epoch ends), or after a failed run the loss of the state put back.
        grad_norm: the last step's gradient norm before clipping.
        nit: optimizer steps taken; ``epoch``: epochs completed; ``epochs``: the budget.
        nfev, njev, nhev: loss, gradient and Hessian-vector evaluations.
        logs: the latest metrics by name (``loss``, ``grad_norm``, ``lr``, ``time``, and at epoch
            ends ``val_loss``, ``val_<metric>``), what callbacks monitor.
        seed: the seed the run used (drawn when none was given), to reproduce it.
        optimizer: the optimizer (callbacks such as ``ReduceLROnPlateau`` act on it).
        epoch_start: the model's state at the start of the current epoch, which the epoch's
            mean training loss (``logs["loss"]`` at an epoch's end) describes; what
            ``EarlyStopping(monitor="loss")`` keeps as the best weights.
        diagnoses: what the health monitors found (:class:`descend.diagnostics.Diagnosis`,
            one per kind); ``descend.diagnostics.print_diagnoses(result)`` prints them.
    """

    model: nn.Module
    status: Status
    message: str
    history: History = field(repr=False)
    epoch_history: History = field(repr=False)
    fun: float = float("nan")
    grad_norm: float = float("nan")
    nit: int = 0
    epoch: int = 0
    epochs: int | None = None
    total_steps: int | None = None
    nfev: int = 0
    njev: int = 0
    nhev: int = 0
    time: float = 0.0
    method: str = ""
    seed: int | None = None
    logs: dict[str, float] = field(default_factory=dict)
    has_validation: bool = False
    optimizer: Any = field(default=None, repr=False)
    diagnoses: list[Any] = field(default_factory=list, repr=False)
    epoch_start: dict[str, Any] | None = field(default=None, repr=False)
    _state_fn: Callable[[], dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def converged(self) -> bool:
        return self.status.converged

    @property
    def success(self) -> bool:
        """True when training ran to its end without diverging or failing."""
        return self.status not in (Status.DIVERGED, Status.LINE_SEARCH_FAILED)

    def training_state(self) -> dict[str, Any]:
        """Everything needed to resume this run (what ``Checkpoint`` saves)."""
        if self._state_fn is None:
            raise RuntimeError("this result is not attached to a running fit")
        return self._state_fn()

    def __repr__(self) -> str:
        # val_loss, then the metric's own name (val_accuracy, ...): fit(metric=...)'s score
        held_out = "".join(
            f"   {name}: {value:.6g}"
            for name, value in self.logs.items()
            if name.startswith("val_")
        )
        lines = [
            f"  method: {self.method}",
            f"  status: {self.status.value}",
            f" message: {self.message}",
            f"    loss: {self.fun:.6g}" + held_out,
            f"   steps: {self.nit}   epochs: {self.epoch}   nfev: {self.nfev}",
            f"    time: {self.time:.3g} s   seed: {self.seed}",
        ]
        if self.diagnoses:
            kinds = ", ".join(getattr(d, "kind", str(d)) for d in self.diagnoses)
            lines.append(f"diagnoses: {kinds}")
        return "FitResult(\n" + "\n".join(lines) + "\n)"

    def _repr_html_(self) -> str:
        """A notebook's view: the status as a badge (green when training ran its course
        or converged), the message, the latest metrics, the diagnoses and the per-epoch
        history's summary (every user string escaped)."""
        figures: list[tuple[str, Any]] = [("method", self.method), ("loss", self.fun)]
        figures += [(name, value) for name, value in self.logs.items() if name.startswith("val_")]
        figures += [
            ("steps", self.nit),
            ("epochs", f"{self.epoch} of {self.epochs}" if self.epochs else self.epoch),
            ("nfev", self.nfev),
            ("time (s)", f"{self.time:.3g}"),
            ("seed", self.seed),
        ]
        ran_its_course = self.converged or self.status in _COURSE_RUN
        return section(
            "FitResult",
            outcome(self.status, ran_its_course, self.status.failed, self.message),
            table(figures),
            diagnoses_table(self.diagnoses),
            self.epoch_history._repr_html_() if len(self.epoch_history) else "",
        )


#: a fit that ends on these has done what was asked (its budget, or stopped early on purpose)
_COURSE_RUN = (Status.MAX_ITER, Status.EARLY_STOPPING)
