"""Overfitting: the validation loss climbs while the training loss keeps falling."""

from __future__ import annotations

import math
from typing import Any

from descend.monitors.diagnosis import Diagnosis, Severity
from descend.monitors.monitor import NEVER, Monitor
from descend.validation import check_int, check_number


class OverfittingMonitor(Monitor):
    r"""Reports a model that has started to fit its training rows' noise.

    Reads the epoch metrics of ``fit`` (silent in runs without validation data). Epoch
    losses are noisy (mini-batches; the best of a noisy series sits below its level), so
    it compares means over windows of ``patience`` epochs: :math:`V_e` and :math:`T_e`,
    the mean validation and training loss of epochs :math:`e - p + 1, \dots, e`. With
    :math:`e^* = \arg\min_{k \le e} V_k`, the best window so far, it reports at the
    first epoch e where

    * the window is past the best one: :math:`e - e^* \ge p` (no epoch in common);
    * the validation loss climbed: :math:`V_e \ge (1 +` ``rise`` :math:`)\, V_{e^*}`;
    * while the training loss fell: :math:`T_e \le (1 -` ``rise`` :math:`)\, T_{e^*}`.
      Both rising is instability (a learning rate too large), and a flat training loss
      under a wandering validation loss is noise, not overfitting.

    The fix it names stops at the best epoch (the lowest validation loss so far:
    ``early_stopping=``, or as many epochs) or makes the noise harder to fit (weight
    decay: ``l2=`` in ``fit``, ``alpha=`` in the estimators; dropout, a smaller model,
    more data). The estimators run it too whenever they hold rows out.

    Args:
        patience: the window, in epochs, an integer >= 1.
        rise: least relative rise of the validation loss and fall of the training loss
            between the windows, in (0, 1).

    Example:
        >>> g = torch.Generator().manual_seed(1)
        >>> rows, noise = torch.randn(40, 3, generator=g), torch.randn(40, 1, generator=g)
        >>> big_mlp = nn.Sequential(nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
        ...                         nn.Linear(64, 1))
        >>> res = descend.fit(big_mlp, "mse", (rows, noise), validation=0.5, epochs=60,
        ...                   batch_size="full", lr=1e-2, seed=0, progress=False)
        >>> [list(d.suggested) for d in res.diagnoses if d.kind == "overfitting"]
        [['epochs']]
    """

    kinds = ("overfitting",)
    state = ("epochs", "windows", "best")

    def __init__(self, *, patience: int = 10, rise: float = 0.01) -> None:
        super().__init__(every=1)
        self.patience = check_int("patience", patience, low=1)
        self.rise = check_number("rise", rise, low=0.0, high=1.0, low_open=True, high_open=True)

    def begin(self, result: Any) -> None:
        self.epochs: list[tuple[int, float, float]] = []  # (epoch, training, validation)
        self.windows: list[tuple[float, float]] = []  # (T, V) of the windows ending at each
        self.best = -1  # index into windows of the lowest V

    def watch(self, nit: int) -> int:
        return NEVER  # epochs only

    def watch_epoch(self, result: Any) -> None:
        logs = getattr(result, "logs", None)
        if not isinstance(logs, dict) or "val_loss" not in logs:
            return
        train, val = float(logs["loss"]), float(logs["val_loss"])
        if not (math.isfinite(train) and math.isfinite(val)):
            return
        self.epochs.append((int(logs.get("epoch", len(self.epochs) + 1)), train, val))
        p = self.patience
        if len(self.epochs) < p:
            return
        recent = self.epochs[-p:]
        self.windows.append((sum(t for _, t, _ in recent) / p, sum(v for _, _, v in recent) / p))
        last = len(self.windows) - 1
        if self.best < 0 or self.windows[last][1] < self.windows[self.best][1]:
            self.best = last
            return
        (t_best, v_best), (t_now, v_now) = self.windows[self.best], self.windows[last]
        if (
            last - self.best >= p
            and v_now >= (1.0 + self.rise) * v_best
            and t_now <= (1.0 - self.rise) * t_best
        ):
            self._report(int(getattr(result, "nit", 0) or 0), (t_best, v_best), (t_now, v_now))

    def _report(self, nit: int, best: tuple[float, float], now: tuple[float, float]) -> None:
        (t_best, v_best), (t_now, v_now) = best, now
        p, epoch = self.patience, self.epochs[-1][0]
        best_epoch, _, best_val = min(self.epochs, key=lambda row: row[2])
        window_end = self.epochs[self.best + p - 1][0]
        self.report(
            Diagnosis(
                kind="overfitting",
                severity=Severity.WARNING,
                step=nit,
                message=(
                    f"over {p}-epoch windows the validation loss rose from {v_best:.4g} "
                    f"(epochs {window_end - p + 1}-{window_end}) to {v_now:.4g} (epochs "
                    f"{epoch - p + 1}-{epoch}, +{v_now / v_best - 1:.1%}) while the training "
                    f"loss fell from {t_best:.4g} to {t_now:.4g} "
                    f"({t_now / t_best - 1:.1%}): the model is fitting noise in the "
                    f"training rows; the validation loss was lowest at epoch {best_epoch}"
                ),
                evidence={
                    "window": p,
                    "best_window_end": window_end,
                    "best_window_val_loss": v_best,
                    "best_window_train_loss": t_best,
                    "epoch": epoch,
                    "window_val_loss": v_now,
                    "window_train_loss": t_now,
                    "best_epoch": best_epoch,
                    "best_val_loss": best_val,
                },
                suggestion=(
                    f"stop at epoch {best_epoch}, where the validation loss was lowest: "
                    "early_stopping=True keeps the best epoch's weights (in fit and the "
                    f"estimators), or train for {best_epoch} epochs; or make the noise "
                    "harder to fit: weight decay (l2= in fit, alpha= in the estimators, "
                    "--penalty l2 --alpha on the command line), "
                    "dropout, a smaller model, more training data"
                ),
                suggested={"epochs": best_epoch},
            )
        )
