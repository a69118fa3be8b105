"""Tuning a scikit-learn style estimator of ``descend.estimators`` (or any estimator with
``get_params``/``set_params``, ``fit`` and ``score``): each trial fits a clone with sampled
parameters and is scored on held-out rows; the best is refitted on all rows, as
``GridSearchCV(refit=True)`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution

from descend.tune.space import SearchSpace, default_space
from descend.tune.study import TuneResult, _study
from descend.validation import check_number

__all__ = ["estimator_parameters", "tune_estimator"]

#: what an estimator takes directly; every other optimizer option goes in optimizer_params
_DIRECT = ("optimizer", "lr", "batch_size")


@dataclass
class EstimatorRun:
    """One trial's fitted estimator, its score on the held-out rows and its epochs."""

    estimator: Any
    score: float
    nit: int


def estimator_parameters(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """``descend.fit`` arguments of a trial as estimator parameters: ``optimizer``, ``lr``
    and ``batch_size`` as they are, the method's options (``momentum``, ``betas``, ...)
    in ``optimizer_params``, the estimator's own searched parameters as they are."""
    if "schedule" in arguments:
        raise ValueError("descend's estimators take no schedule; search schedules with tune_fit")
    out = {k: v for k, v in arguments.items() if k in _DIRECT}
    options = {k: v for k, v in arguments.items() if k not in _DIRECT and k != "estimator"}
    out.update(arguments.get("estimator", {}))
    if options:
        out["optimizer_params"] = options
    return out


def tune_estimator(
    estimator: Any,
    X: Any,
    y: Any,
    *,
    space: SearchSpace | None = None,
    params: Mapping[str, BaseDistribution] | None = None,
    validation: float = 0.2,
    trials: int = 20,
    timeout: float | None = None,
    sampler: str | optuna.samplers.BaseSampler = "tpe",
    storage: str | None = None,
    study_name: str = "descend-tune",
    seed: int = 0,
    on_trial: Callable[[optuna.trial.FrozenTrial], None] | None = None,
) -> TuneResult:
    """Tune ``estimator``'s optimizer (and ``params``) on a held-out share of ``(X, y)``.

    Each trial fits ``sklearn.base.clone(estimator)`` with the sampled values (its
    ``random_state`` set to the trial's seed) on the training rows and is scored by
    ``estimator.score`` on the held-out rows (maximized). The result's ``best_estimator``
    is a clone with the best values refitted on all rows. Estimators report no epochs
    while they fit, so their trials are not pruned.

    Args:
        estimator: e.g. ``descend.estimators.MLPClassifier(max_epochs=50)``.
        X, y: the rows.
        space: the optimizer's search space (default: :func:`default_space` of ``adam``);
            its ``batch_size`` choices go to the estimator, a schedule is refused.
        params: the estimator's own parameters to search, ``{"alpha":
            FloatDistribution(1e-6, 1e-2, log=True)}``.
        validation: the share of rows held out (stratified for classifiers), in (0, 1).
        trials, timeout, sampler, storage, study_name, seed, on_trial: as :func:`tune_fit`.

    Example:
        >>> from descend.estimators import LinearRegression
        >>> from descend.tune import tune_estimator
        >>> rows, targets = X.numpy(), y.numpy().ravel()
        >>> found = tune_estimator(LinearRegression(max_epochs=20), rows, targets, trials=3)
        >>> found.best_estimator.predict(rows[:2]).shape
        (2,)
    """
    from sklearn.base import clone, is_classifier
    from sklearn.model_selection import train_test_split

    validation = check_number("validation", validation, low=0.0, high=1.0, low_open=True,
                              high_open=True)  # fmt: skip
    space = space if space is not None else default_space("adam")
    searched = dict(params or {})
    clash = sorted(set(searched) & {n for m in space.methods.values() for n in m})
    if clash:
        raise ValueError(
            f"params {', '.join(clash)} are also optimizer options of the space; "
            "give each name once"
        )
    if searched:
        space = SearchSpace(
            {m: {**d, **searched} for m, d in space.methods.items()}, space.run, space.fixed
        )
    stratify = y if is_classifier(estimator) else None
    X_train, X_val, y_train, y_val = train_test_split(
        X, y, test_size=validation, random_state=seed, stratify=stratify
    )

    def configure(values: dict[str, Any], trial_seed: int) -> Any:
        arguments = space.arguments(values)
        own = {k: arguments.pop(k) for k in list(arguments) if k in searched}
        chosen = estimator_parameters({**arguments, "estimator": own})
        model = clone(estimator).set_params(**chosen)
        if "random_state" in model.get_params():
            model.set_params(random_state=trial_seed)
        return model

    def run(values: dict[str, Any], trial_seed: int, callbacks: list[Any]) -> EstimatorRun:
        model = configure(values, trial_seed).fit(X_train, y_train)
        return EstimatorRun(
            model, float(model.score(X_val, y_val)), int(getattr(model, "n_iter_", 0))
        )

    study = {"trials": trials, "timeout": timeout, "sampler": sampler, "pruner": "none",
             "storage": storage, "study_name": study_name, "seed": seed}  # fmt: skip
    found = _study(run, space, "score", "maximize", study, None, on_trial, None, by_epoch=False,
                   every=1)  # fmt: skip
    found.best_estimator = configure(dict(found.best_params), found.best_seed).fit(X, y)
    return found
