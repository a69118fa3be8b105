"""The figures of a study, by Optuna's matplotlib plots: the optimization history, the
parameter importances and a slice plot, saved as image files."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

__all__ = ["save_plots"]


def save_plots(
    study: optuna.Study, folder: str | os.PathLike[str], suffix: str = "png"
) -> list[Path]:
    """Save ``history.<suffix>``, ``importances.<suffix>`` and ``slice.<suffix>`` of ``study``
    in ``folder`` (created if missing); returns the files written.

    Importances need two complete trials at least; with fewer, that figure is skipped.

    Example:
        >>> import optuna
        >>> from descend.tune import save_plots
        >>> study = optuna.create_study()
        >>> study.optimize(lambda t: (t.suggest_float("lr", 1e-3, 1.0, log=True) - 0.1) ** 2,
        ...                n_trials=4)
        >>> [path.name for path in save_plots(study, "plots")]
        ['history.png', 'importances.png', 'slice.png']
    """
    from matplotlib import pyplot as plt  # Optuna draws with pyplot
    from optuna.visualization import matplotlib as figures

    draws: dict[str, Callable[[optuna.Study], Any]] = {
        "history": figures.plot_optimization_history,
        "importances": figures.plot_param_importances,
        "slice": figures.plot_slice,
    }
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    written = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # a parameter of one value in the study gives a slice of zero width
        warnings.filterwarnings("ignore", "Attempting to set identical", UserWarning)
        for name, draw in draws.items():
            if name == "importances" and complete < 2:
                continue
            axes = draw(study)
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
            path = out / f"{name}.{suffix}"
            figure.savefig(path, bbox_inches="tight")
            plt.close(figure)
            written.append(path)
    return written
