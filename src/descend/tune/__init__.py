"""Hyperparameter tuning on Optuna: studies whose trials are ``descend.fit`` or
``descend.minimize`` runs, pruned through a callback, stored in SQLite when asked.

* :mod:`~descend.tune.space`: :class:`SearchSpace`, :func:`default_space` and the
  per-method spaces :data:`METHOD_SPACES` (log-uniform lr, momentum, betas, weight decay;
  batch size, schedule and warmup for ``fit``).
* :mod:`~descend.tune.pruning`: :class:`PruningCallback` (``trial.report`` of the best
  value so far each epoch, stop the run when ``trial.should_prune()``) and
  :func:`named_pruner` (the pruners, their warm-up scaled to a trial's epochs).
* :mod:`~descend.tune.study`: :func:`tune_fit`, :func:`tune_minimize`, :func:`create_study`
  and :class:`TuneResult`.
* :mod:`~descend.tune.estimator`: :func:`tune_estimator` (scikit-learn style estimators,
  the best refitted as ``best_estimator``).
* :mod:`~descend.tune.plots`: :func:`save_plots` (optimization history, parameter
  importances, slice plot).

Needs Optuna: ``pip install "descend[tune]"``.

Example:
    >>> from descend.tune import default_space, tune_fit
    >>> found = tune_fit(net, "mse", (X, y), validation=0.25, epochs=3, trials=4, seed=0,
    ...                  space=default_space(["adam", "momentum"], batch_sizes=(16, 64)),
    ...                  storage="sqlite:///study.db")
    >>> found.complete + found.pruned
    4
    >>> found.best_arguments  # {'optimizer': 'adam', 'lr': ..., 'betas': (...), 'batch_size': 16}
"""

from descend.extras import require

# Optuna is checked before the modules that import it: a missing one is one line
require("optuna", "tune", feature="descend.tune")

from descend.tune.estimator import estimator_parameters, tune_estimator  # noqa: E402
from descend.tune.plots import save_plots  # noqa: E402
from descend.tune.pruning import PRUNERS, PruningCallback, named_pruner  # noqa: E402
from descend.tune.space import METHOD_SPACES, SearchSpace, default_space, suggest  # noqa: E402
from descend.tune.study import (  # noqa: E402
    SAMPLERS,
    TuneResult,
    create_study,
    tune_fit,
    tune_minimize,
)

__all__ = [
    "METHOD_SPACES",
    "PRUNERS",
    "SAMPLERS",
    "PruningCallback",
    "SearchSpace",
    "TuneResult",
    "create_study",
    "default_space",
    "estimator_parameters",
    "named_pruner",
    "save_plots",
    "suggest",
    "tune_estimator",
    "tune_fit",
    "tune_minimize",
]
