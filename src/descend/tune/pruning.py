"""Pruning: the callback that feeds a run's intermediate values to an Optuna trial and
stops the run when the study's pruner says so, and the named pruners, their warm-up scaled
to a trial's steps."""

from __future__ import annotations

import math
from typing import Any

import optuna
from optuna.study import StudyDirection

from descend.callbacks import Callback, monitor_value
from descend.validation import check_choice, check_int

__all__ = ["PRUNERS", "PruningCallback", "named_pruner"]

PRUNERS = ("median", "halving", "hyperband", "none")


class PruningCallback(Callback):
    """Reports the best ``monitor`` value so far to ``trial`` and stops the run when the
    trial should be pruned.

    ``fit`` reports at each epoch's end (step = the epoch); ``minimize`` every ``every``
    iterations (step = the iteration). With :math:`v_j` the monitored value at the
    :math:`j`-th report, the value reported at the :math:`k`-th is the best so far,

    .. math:: r_k = \\min_{j \\le k} v_j \\quad (\\max \\text{ for a maximized study}),

    the trial's value had the run stopped there (its value is its best monitored value),
    so the reports are monotone and the last one is the trial's value. Why not
    :math:`v_k`: a pruner sets trials side by side at a step (the median pruner the
    others' reports at that step, successive halving the reports at a rung), and with a
    rate high enough to oscillate, :math:`v_k` says little of the best: on the digits MLP
    of ``benchmarks/tune_lr.py``, among the learning rates within 2x of the best loss,
    the loss at epoch 10 of 10 ranks the rates by their best with Spearman's
    :math:`\\rho = 0.24`, :math:`r_{10}` by definition with 1, and at epochs 8 and 9
    :math:`\\rho` is 0.45 and 0.57 against 0.94 and 0.97.

    The run then ends normally (status ``callback``) and the caller raises
    :class:`optuna.TrialPruned` when :attr:`pruned` is set, so the run's result (its best
    state, its history) is still whole. A value that is not finite is not reported: the
    run's own divergence test ends such a run.

    Args:
        trial: the Optuna trial of this run; its study's direction says which is best.
        monitor: the metric reported (``"val_loss"``, ``"val_accuracy"``, ``"loss"``;
            ``minimize``: ``"fun"``), read by :func:`descend.callbacks.monitor_value`.
        every: ``minimize`` only: report every this many iterations, >= 1.
        last_step: the run's last step (``fit``: its epochs; ``minimize``: ``max_iter``),
            >= 1, or None: a report there is not offered to the pruner, since a stop at
            the end saves nothing and would only drop a trial that has trained in full.

    Example:
        >>> import optuna
        >>> from descend.tune import PruningCallback
        >>> trial = optuna.create_study(direction="minimize").ask()
        >>> prune = PruningCallback(trial, "val_loss")
        >>> result = fit(net, "mse", (X, y), validation=0.25, epochs=4, lr=0.5,
        ...              callbacks=[prune], progress=False, monitors=None)
        >>> reported = list(prune.values.values())
        >>> reported == sorted(reported, reverse=True), prune.pruned
        (True, False)
    """

    def __init__(
        self, trial: optuna.trial.Trial, monitor: str, *, every: int = 1,
        last_step: int | None = None,
    ) -> None:  # fmt: skip
        self.trial = trial
        self.monitor = monitor
        self.every = check_int("every", every, low=1)
        self.last_step = None if last_step is None else check_int("last_step", last_step, low=1)
        self.by_epoch = False
        self.pruned = False
        self.stop_reason: str | None = None
        self._better = max if trial.study.direction == StudyDirection.MAXIMIZE else min
        #: what was reported, by step: the best monitored value up to that step
        self.values: dict[int, float] = {}

    def bind(self, **run: Any) -> None:
        # fit binds its batches: such a run reports at epoch ends, never per step
        self.by_epoch = "batches" in run

    def on_begin(self, result: Any) -> None:
        self.pruned = False
        self.stop_reason = None
        self.values = {}

    def on_iteration(self, nit: int) -> bool:
        return not self.by_epoch and nit % self.every == 0

    def on_step(self, result: Any) -> bool | None:
        return self._report(result, int(result.nit))

    def on_epoch_end(self, result: Any) -> bool | None:
        return self._report(result, int(result.epoch))

    def _report(self, result: Any, step: int) -> bool:
        value = monitor_value(result, self.monitor)
        if not math.isfinite(value):
            return False
        best = self._better(value, *self.values.values()) if self.values else value
        self.values[step] = best
        self.trial.report(best, step)
        if self.last_step is not None and step >= self.last_step:
            return False
        if self.trial.should_prune():
            self.pruned = True
            self.stop_reason = (
                f"pruned by the study's pruner at step {step} (best {self.monitor} so far "
                f"{best:.6g})"
            )
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"pruned": self.pruned, "values": dict(self.values)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pruned = state["pruned"]
        self.values = dict(state["values"])


def named_pruner(name: str, *, last_step: int, first_step: int = 1) -> optuna.pruners.BasePruner:
    """The pruner called ``name``, its warm-up scaled to a trial's steps.

    A trial reports at steps ``first_step``, ... up to ``last_step`` (``fit``: epochs 1 to
    ``epochs``; ``minimize``: every ``every`` iterations up to ``max_iter``). Optuna's own
    defaults decide from the first report on (the median pruner after 5 complete trials;
    successive halving with rungs at steps 1, 3, 9, ... keeping the top third at each).
    They assume early reports rank the trials as their ends do; on the digits MLP of
    ``benchmarks/tune_lr.py`` they do not: among the learning rates within 2x of the
    best loss, the best validation loss so far at epochs 3 to 5 of 10 ranks the rates by
    their best over the 10 with Spearman's :math:`\rho` of 0.4 to 0.7, and the rate
    that wins ranks 10th to 14th of 19 there (it oscillates, then dips lowest at epoch
    7); pruned from epoch 1 (Optuna's defaults), the study's best is 10 to 17% worse than
    unpruned over 5 sampler seeds. So the named pruners wait half a trial's steps:

    * ``"median"``: :class:`optuna.pruners.MedianPruner` with ``n_warmup_steps =
      last_step // 2``: from half-way, a trial whose best so far is worse than the median
      of the complete trials' at that step stops (after 5 complete trials).
    * ``"halving"``: :class:`optuna.pruners.SuccessiveHalvingPruner` with
      ``min_resource = max(first_step, last_step // 2)``, ``reduction_factor = 3``: its
      first rung at half-way, where the top third of the trials that reached it go on.
    * ``"hyperband"``: :class:`optuna.pruners.HyperbandPruner` with ``min_resource =
      first_step``, ``max_resource = last_step``, ``reduction_factor = 3``: brackets of
      successive halving whose first rungs are at ``first_step``, 3x, 9x... later, each
      trial in one (Li et al. 2018, "Hyperband"): a hedge over how early ranks can be
      trusted, rather than a guess of it. Optuna's samplers then see only the trials of
      the new trial's bracket (a TPE study of 30 trials in 3 brackets samples most of
      them in TPE's random start-up).
    * ``"none"``: :class:`optuna.pruners.NopPruner`.

    On that benchmark (30 TPE trials of 10 epochs, over 5 sampler seeds) ``"hyperband"``
    trains 41% (MLP) and 42% (logistic regression) fewer epochs than no pruning at a mean
    best within half a standard error of the unpruned one; ``"median"`` and ``"halving"``
    save 19 to 29% (on the MLP at a mean best 0.7 and 1.5 standard errors above): waiting
    costs epochs.

    Args:
        name: one of :data:`PRUNERS`.
        last_step: a trial's last report step, >= 1.
        first_step: its first report step, in [1, last_step].

    Example:
        >>> from descend.tune import named_pruner
        >>> pruner = named_pruner("median", last_step=10)  # MedianPruner(n_warmup_steps=5)
    """
    name = check_choice("pruner", name, PRUNERS)
    last_step = check_int("last_step", last_step, low=1)
    first_step = check_int("first_step", first_step, low=1)
    if first_step > last_step:
        raise ValueError(f"first_step must be in [1, last_step={last_step}], got {first_step}")
    if name == "median":
        return optuna.pruners.MedianPruner(n_warmup_steps=last_step // 2)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=max(first_step, last_step // 2), reduction_factor=3
        )
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=first_step, max_resource=last_step, reduction_factor=3
        )
    return optuna.pruners.NopPruner()
