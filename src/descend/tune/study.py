"""Hyperparameter studies on Optuna: each trial one ``descend.fit`` (or ``minimize``) run,
its intermediate values fed to the study's pruner by :class:`PruningCallback`.

A study is reproducible: trial ``k`` trains with the seed derived from ``(seed, k)``, or
with ``run_seed`` for every trial (recorded as the trial's ``seed`` attribute), and the
sampler is seeded from ``seed`` and the number of trials the study already holds, so the
same call gives the same trials, values and best parameters. With
``storage="sqlite:///study.db"`` the study lives in SQLite: calling again with the same
``study_name`` continues it up to ``trials``. A fraction as ``validation`` is held out
once for the whole study, so every trial is scored on the same rows.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
import optuna
import torch
from optuna.trial import TrialState
from torch import Tensor, nn

from descend.callbacks import monitor_value
from descend.minimize import minimize
from descend.train import fit
from descend.train.data import Converter, InMemory, as_source
from descend.train.losses import get_loss
from descend.tune.pruning import PRUNERS, PruningCallback, named_pruner
from descend.tune.space import SearchSpace, default_space
from descend.validation import check_choice, check_int, check_positive

__all__ = ["SAMPLERS", "TuneResult", "create_study", "tune_fit", "tune_minimize"]

SAMPLERS = ("tpe", "random", "cmaes")
#: ``on_run(number, arguments, result)``: a trial's number, its run's arguments, its result
OnRun = Callable[[int, dict[str, Any], Any], None]

#: what a trial holds when it ends: what counts towards a study's ``trials``
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
_TRIAL, _SAMPLER, _SPLIT = 0, 1, 2  # the streams of a study's seed
_MAX_WORDS = ("acc", "auc", "r2", "score", "precision", "recall", "f1")


@dataclass
class TuneResult:
    """What a study found.

    Attributes:
        study: the :class:`optuna.Study` (its trials, ``trials_dataframe()``, plots).
        space: the search space.
        best_params: the best trial's values, as Optuna keeps them (``beta1``, ...).
        best_arguments: the same as ``descend.fit``/``minimize`` arguments (``betas``).
        best_value: the best trial's value (its best monitored value over the run).
        best_trial: the best trial's number; ``best_seed`` the seed it trained with.
        best_estimator: :func:`tune_estimator` only: a clone of the estimator with the
            best parameters, refitted on all the rows (scikit-learn's ``refit=True``).
        complete, pruned: trials of the study in each state.
        work: epochs (``fit``) or iterations (``minimize``) trained over all the study's
            trials, pruned ones included: what pruning saves.
    """

    study: optuna.Study
    space: SearchSpace
    best_params: dict[str, Any]
    best_arguments: dict[str, Any]
    best_value: float
    best_trial: int
    best_seed: int
    complete: int
    pruned: int
    work: int
    _rerun: Callable[[], Any] = field(repr=False)
    best_estimator: Any = field(default=None, repr=False)

    def rerun(self) -> Any:
        """Run the best trial again, unpruned, with its seed: the same numbers again."""
        return self._rerun()


def tune_fit(
    model: nn.Module | Callable[[], nn.Module],
    loss: str | Callable[[Tensor, Tensor], Tensor],
    data: Any,
    *,
    validation: Any = 0.2,
    metric: str | Callable[[Tensor, Tensor], Tensor] | None = None,
    monitor: str | None = None,
    direction: str | None = None,
    space: SearchSpace | None = None,
    epochs: int = 10,
    trials: int = 20,
    timeout: float | None = None,
    sampler: str | optuna.samplers.BaseSampler = "tpe",
    pruner: str | optuna.pruners.BasePruner = "hyperband",
    storage: str | None = None,
    study_name: str = "descend-tune",
    seed: int = 0,
    run_seed: int | None = None,
    on_trial: Callable[[optuna.trial.FrozenTrial], None] | None = None,
    on_run: OnRun | None = None,
    **fit_options: Any,
) -> TuneResult:
    """Tune ``descend.fit`` of ``model`` on ``data``: each trial a run with sampled values.

    The trial's value is the best of ``monitor`` over its epochs; at each epoch's end the
    monitored value goes to the pruner, which may stop the run there
    (:class:`optuna.TrialPruned`).

    Args:
        model: a module (each trial trains a copy of it, from the same weights) or a
            factory ``() -> nn.Module`` (called with the global RNG seeded by the
            trial's seed, then restored).
        loss, data, validation, metric: as :func:`descend.fit`; ``validation`` (held-out
            data, or a fraction of in-memory ``data`` held out once, by ``seed``, for the
            whole study) is what every trial is scored on.
        monitor: the value scored: default ``val_<metric>`` with a metric, ``val_loss``
            with validation, ``loss`` without.
        direction: ``"minimize"`` or ``"maximize"``; default from the monitor's name
            (accuracy, score, auc, r2, f1 are maximized).
        space: a :class:`SearchSpace` (default: :func:`default_space` of ``adam``).
        epochs: the epoch budget of each trial, >= 1.
        trials: the study's size: trials it already holds (in ``storage``) count, so a
            study stopped mid-way and called again runs only the rest.
        timeout: stop starting trials after this many seconds (not reproducible).
        sampler: ``"tpe"``, ``"random"``, ``"cmaes"`` (needs the ``cmaes`` package) or
            an Optuna sampler.
        pruner: ``"hyperband"`` (default: it hedges over when to decide, and saved the
            most epochs at an equal best in benchmarks/tune_lr.py), ``"median"``,
            ``"halving"`` (successive halving; these two wait half of ``epochs`` before
            they decide, as early epochs can rank the trials unlike their ends), ``"none"``
            (:func:`~descend.tune.pruning.named_pruner`) or an Optuna pruner.
        storage: an Optuna storage URL, ``"sqlite:///study.db"`` to keep the study in SQLite.
        study_name: the study's name in ``storage``.
        seed: seeds the sampler and every trial's run.
        run_seed: the seed of every trial's run (its model's weights, its batches), so
            trials differ only in their hyperparameters (common random numbers); default
            None: each trial its own seed, derived from ``seed`` and its number.
        on_trial: called with each trial as it ends (a progress display).
        on_run: called as ``on_run(number, arguments, result)`` with each trial's run, the
            pruned ones included (what it trained, its ``FitResult``): to record every trial.
        **fit_options: passed to every run (``l2``, ``clip_grad_norm``, ``monitors``...).

    Returns:
        :class:`TuneResult`.

    Example:
        >>> from descend.tune import default_space, tune_fit
        >>> found = tune_fit(net, "mse", (X, y), validation=0.25, epochs=4, trials=6,
        ...                  space=default_space(["adam", "momentum"]), pruner="hyperband")
        >>> found.best_arguments["optimizer"] in ("adam", "momentum"), found.work <= 6 * 4
        (True, True)
    """
    if not isinstance(model, nn.Module) and not callable(model):
        raise TypeError(
            f"model must be a torch.nn.Module or a factory () -> nn.Module, got {model!r}"
        )
    epochs = check_int("epochs", epochs, low=1)
    if monitor is None:
        if metric is not None and validation is not None:
            name = metric if isinstance(metric, str) else getattr(metric, "__name__", "metric")
            monitor = f"val_{name.lower()}"
        else:
            monitor = "val_loss" if validation is not None else "loss"
    space = space if space is not None else default_space("adam")
    fit_options = {"monitors": None, "progress": False, **fit_options}
    if isinstance(validation, float):
        data, validation = _held_out(model, loss, data, validation, _derive(seed, _SPLIT))

    def run(values: dict[str, Any], trial_seed: int, callbacks: list[Any]) -> Any:
        net = _build(model, trial_seed)
        arguments = {**fit_options, **space.arguments(values)}
        return fit(
            net, loss, data, validation=validation, metric=metric, epochs=epochs,
            seed=trial_seed, callbacks=callbacks, distributed=False, **arguments,
        )  # fmt: skip

    study = {"trials": trials, "timeout": timeout, "sampler": sampler, "pruner": pruner,
             "storage": storage, "study_name": study_name, "seed": seed, "last_step": epochs,
             "first_step": 1}  # fmt: skip
    return _study(
        run, space, monitor, direction, study, run_seed, on_trial, on_run, by_epoch=True, every=1
    )


def tune_minimize(
    fun: Callable[..., Any],
    x0: Any,
    *,
    space: SearchSpace | None = None,
    max_iter: int = 1000,
    every: int = 50,
    trials: int = 20,
    timeout: float | None = None,
    sampler: str | optuna.samplers.BaseSampler = "tpe",
    pruner: str | optuna.pruners.BasePruner = "hyperband",
    storage: str | None = None,
    study_name: str = "descend-tune",
    seed: int = 0,
    run_seed: int | None = None,
    on_trial: Callable[[optuna.trial.FrozenTrial], None] | None = None,
    on_run: OnRun | None = None,
    **minimize_options: Any,
) -> TuneResult:
    """Tune ``descend.minimize(fun, x0)``: each trial a run of ``max_iter`` iterations.

    The trial's value is the lowest ``fun`` reported (every ``every`` iterations, to the
    pruner) or reached at the end. Arguments as :func:`tune_fit` (``run_seed``: the
    ``seed`` of every ``minimize`` run); ``space`` (default: the
    ``adam`` space) holds optimizer options only, and ``minimize_options`` go to every run.

    Example:
        >>> from descend.tune import default_space, tune_minimize
        >>> found = tune_minimize(rosenbrock, [-1.2, 1.0], space=default_space("momentum"),
        ...                       max_iter=200, every=50, trials=4)
        >>> found.best_value < rosenbrock(torch.tensor([-1.2, 1.0])).item()
        True
    """
    max_iter = check_int("max_iter", max_iter, low=1)
    space = space if space is not None else default_space("adam")
    minimize_options = {"monitors": None, **minimize_options}

    def run(values: dict[str, Any], trial_seed: int, callbacks: list[Any]) -> Any:
        arguments = {**minimize_options, **space.arguments(values)}
        method = arguments.pop("optimizer")
        return minimize(
            fun, x0, method, max_iter=max_iter, callback=callbacks, seed=trial_seed, **arguments
        )

    study = {"trials": trials, "timeout": timeout, "sampler": sampler, "pruner": pruner,
             "storage": storage, "study_name": study_name, "seed": seed, "last_step": max_iter,
             "first_step": min(every, max_iter)}  # fmt: skip
    return _study(run, space, "fun", "minimize", study, run_seed, on_trial, on_run, by_epoch=False,
                  every=every)  # fmt: skip


def create_study(
    *,
    direction: str,
    sampler: str | optuna.samplers.BaseSampler = "tpe",
    pruner: str | optuna.pruners.BasePruner = "hyperband",
    storage: str | None = None,
    study_name: str = "descend-tune",
    seed: int = 0,
    last_step: int | None = None,
    first_step: int = 1,
) -> optuna.Study:
    """The Optuna study (created, or loaded from ``storage``), with a named sampler seeded
    by ``seed`` and the trials it already holds, and a pruner.

    A named pruner (:func:`~descend.tune.pruning.named_pruner`) is scaled to a trial's
    report steps, ``first_step`` to ``last_step`` (``fit``: 1 to its epochs), so
    ``last_step`` is needed with one; ``"none"`` and an Optuna pruner take neither.

    Example:
        >>> from descend.tune import create_study
        >>> study = create_study(direction="minimize", pruner="hyperband", last_step=10)
        >>> type(study.pruner).__name__, type(study.sampler).__name__
        ('HyperbandPruner', 'TPESampler')
    """
    check_choice("direction", direction, ("minimize", "maximize"))
    if not isinstance(pruner, optuna.pruners.BasePruner):
        if check_choice("pruner", pruner, PRUNERS) == "none":
            pruner = optuna.pruners.NopPruner()
        elif last_step is None:
            raise ValueError(
                f"pruner={pruner!r} needs last_step, a trial's last report step (fit: its "
                "epochs), to scale its warm-up; or give an Optuna pruner"
            )
        else:
            pruner = named_pruner(pruner, last_step=last_step, first_step=first_step)
    study = optuna.create_study(
        storage=storage, study_name=study_name, pruner=pruner,
        direction=cast(Literal["minimize", "maximize"], direction),  # checked above
        load_if_exists=True,
    )  # fmt: skip
    stored = study.direction.name.lower()
    if stored != direction:
        raise ValueError(
            f"study {study_name!r} in {storage} was created to {stored}, this call would "
            f"{direction} (direction/monitor); use another study_name"
        )
    study.sampler = _sampler(sampler, _derive(seed, _SAMPLER, len(study.trials)))
    return study


# -- pieces -------------------------------------------------------------------------------


def _study(
    run: Callable[[dict[str, Any], int, list[Any]], Any],
    space: SearchSpace,
    monitor: str,
    direction: str | None,
    options: dict[str, Any],
    run_seed: int | None,
    on_trial: Callable[[optuna.trial.FrozenTrial], None] | None,
    on_run: OnRun | None,
    *,
    by_epoch: bool,
    every: int,
) -> TuneResult:
    trials = check_int("trials", options["trials"], low=1)
    seed = check_int("seed", options["seed"], low=0)
    timeout, study_name = options["timeout"], options["study_name"]
    if run_seed is not None:
        run_seed = check_int("run_seed", run_seed, low=0)
    if timeout is not None:
        timeout = check_positive("timeout", timeout)
    if direction is None:
        direction = "maximize" if any(w in monitor.lower() for w in _MAX_WORDS) else "minimize"
    study = create_study(
        direction=direction, sampler=options["sampler"], pruner=options["pruner"],
        storage=options["storage"], study_name=study_name, seed=seed,
        last_step=options.get("last_step"), first_step=options.get("first_step", 1),
    )  # fmt: skip
    better = max if direction == "maximize" else min
    worst = -math.inf if direction == "maximize" else math.inf

    def objective(trial: optuna.Trial) -> float:
        values = space.sample(trial)
        trial_seed = _derive(seed, _TRIAL, trial.number) if run_seed is None else run_seed
        trial.set_user_attr("seed", trial_seed)
        prune = PruningCallback(trial, monitor, every=every, last_step=options.get("last_step"))
        result = run(values, trial_seed, [prune])
        if on_run is not None:
            on_run(trial.number, space.arguments(values), result)
        trial.set_user_attr("work", int(result.epoch if by_epoch else result.nit))
        status = getattr(result, "status", None)
        if status is not None:
            trial.set_user_attr("status", status.value)
        if prune.pruned:
            raise optuna.TrialPruned(prune.stop_reason)
        seen = list(prune.values.values())
        if not by_epoch:
            seen.append(monitor_value(result, monitor))
        seen = [v for v in seen if math.isfinite(v)]
        return better(seen) if seen else worst

    remaining = trials - sum(t.state in FINISHED for t in study.trials)
    if remaining > 0:
        study.optimize(
            objective, n_trials=remaining, timeout=timeout,
            callbacks=[] if on_trial is None else [lambda _, trial: on_trial(trial)],
        )  # fmt: skip
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        raise RuntimeError(
            f"study {study_name!r} has no complete trial (all {len(study.trials)} were "
            "pruned or failed); raise trials, or use pruner='none'"
        )
    best = study.best_trial
    best_seed = int(best.user_attrs["seed"])
    return TuneResult(
        study=study,
        space=space,
        best_params=dict(best.params),
        best_arguments=space.arguments(best.params),
        best_value=float(cast(float, best.value)),  # a complete trial has a value
        best_trial=best.number,
        best_seed=best_seed,
        complete=len(done),
        pruned=len(study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))),
        work=sum(int(t.user_attrs.get("work", 0)) for t in study.trials),
        _rerun=lambda: run(dict(best.params), best_seed, []),
    )


def _held_out(
    model: nn.Module | Callable[[], nn.Module], loss: Any, data: Any, fraction: float, seed: int
) -> tuple[InMemory, InMemory]:
    """One validation split for the whole study, so every trial is scored on the same rows."""
    params = list(_build(model, seed).parameters())
    dtype = params[0].dtype if params else torch.get_default_dtype()
    source = as_source(data, Converter(dtype, get_loss(loss).target))
    if not isinstance(source, InMemory):
        raise ValueError(
            "validation as a fraction needs in-memory data (an (X, y) pair); give a "
            "separate validation set for streams, datasets and loaders"
        )
    return source.split(fraction, torch.Generator().manual_seed(seed))


def _build(model: nn.Module | Callable[[], nn.Module], seed: int) -> nn.Module:
    if isinstance(model, nn.Module):
        return copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = model()
    if not isinstance(net, nn.Module):
        raise TypeError(f"the model factory must return a torch.nn.Module, got {net!r}")
    return net


def _sampler(sampler: Any, seed: int) -> optuna.samplers.BaseSampler:
    if isinstance(sampler, optuna.samplers.BaseSampler):
        return sampler
    name = check_choice("sampler", sampler, SAMPLERS)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.CmaEsSampler(seed=seed)


def _derive(seed: int, *stream: int) -> int:
    """An independent seed (32 bits, as NumPy samplers take) for one use of a study's seed."""
    return int(np.random.SeedSequence([seed, *stream]).generate_state(1, np.uint32)[0])
