"""Search spaces: the hyperparameters a practitioner tunes for each descend method, and the
run's own (batch size, schedule), as Optuna distributions.

A :class:`SearchSpace` does two things with one table: it asks an Optuna trial for a value
of each hyperparameter the chosen method takes (:meth:`SearchSpace.sample`), and it turns
a flat set of values (a trial's, or ``study.best_params``) back into the arguments of
``descend.fit`` or ``descend.minimize`` (:meth:`SearchSpace.arguments`), so a best trial is
rerun from its parameters alone.

Example:
    >>> from descend.tune import default_space
    >>> space = default_space(["adam", "momentum"], batch_sizes=(16, 64))
    >>> space.arguments({"optimizer": "adam", "lr": 1e-3, "beta1": 0.9, "beta2": 0.999,
    ...                  "batch_size": 16})
    {'optimizer': 'adam', 'lr': 0.001, 'batch_size': 16, 'betas': (0.9, 0.999)}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import Trial

from descend.methods import get_method

__all__ = ["METHOD_SPACES", "SearchSpace", "default_space", "suggest"]


def _lr(low: float, high: float) -> FloatDistribution:
    return FloatDistribution(low, high, log=True)


_MOMENTUM = FloatDistribution(0.5, 0.99)
_BETA1 = FloatDistribution(0.8, 0.99)
_BETA2 = FloatDistribution(0.9, 0.9999)
_WEIGHT_DECAY = FloatDistribution(1e-6, 1e-1, log=True)

#: per method, what a practitioner searches: a log-uniform learning rate over the range the
#: rule is usable in, and the rule's own knobs (``beta1``/``beta2`` become ``betas``)
METHOD_SPACES: dict[str, dict[str, BaseDistribution]] = {
    "gd": {"lr": _lr(1e-4, 1.0)},
    "momentum": {"lr": _lr(1e-4, 1.0), "momentum": _MOMENTUM, "weight_decay": _WEIGHT_DECAY},
    "nesterov": {"lr": _lr(1e-4, 1.0), "momentum": _MOMENTUM, "weight_decay": _WEIGHT_DECAY},
    "adagrad": {"lr": _lr(1e-3, 1.0)},
    "rmsprop": {"lr": _lr(1e-5, 1e-1), "alpha": FloatDistribution(0.9, 0.999)},
    "adam": {"lr": _lr(1e-5, 1e-1), "beta1": _BETA1, "beta2": _BETA2},
    "amsgrad": {"lr": _lr(1e-5, 1e-1), "beta1": _BETA1, "beta2": _BETA2},
    "adamw": {
        "lr": _lr(1e-5, 1e-1),
        "beta1": _BETA1,
        "beta2": _BETA2,
        "weight_decay": _WEIGHT_DECAY,
    },
}

#: the values of the run that are not the optimizer's, as ``descend.fit`` names them
RUN_PARAMETERS = ("batch_size", "schedule", "warmup_steps", "epochs")


def suggest(trial: Trial, name: str, distribution: BaseDistribution) -> Any:
    """Ask ``trial`` for a value of ``name`` from ``distribution`` (float, int or categorical)."""
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(
            name, distribution.low, distribution.high, log=distribution.log,
            step=distribution.step,
        )  # fmt: skip
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(
            name, distribution.low, distribution.high, log=distribution.log,
            step=distribution.step,
        )  # fmt: skip
    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    raise TypeError(
        f"the distribution of {name!r} must be an optuna Float-, Int- or "
        f"CategoricalDistribution, got {type(distribution).__name__}"
    )


@dataclass(frozen=True)
class SearchSpace:
    """The methods to choose from, each one's hyperparameters, and the run's.

    Attributes:
        methods: method name -> ``{option: distribution}``; the method itself is the
            categorical parameter ``optimizer``. ``beta1`` and ``beta2`` are passed as
            ``betas=(beta1, beta2)``; every other name is the optimizer's own option.
        run: ``{name: distribution}`` of the run's arguments (``batch_size``,
            ``schedule``, ``warmup_steps``, ``epochs``), shared by every method.
        fixed: arguments given to every trial unchanged (not searched).
    """

    methods: dict[str, dict[str, BaseDistribution]]
    run: dict[str, BaseDistribution] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.methods:
            raise ValueError("methods must name at least one method to search over")
        for name in self.methods:
            get_method(name)
        unknown = sorted(set(self.run) - set(RUN_PARAMETERS))
        if unknown:
            raise ValueError(
                f"run parameter(s) {', '.join(unknown)} are not searched by descend.tune; "
                f"valid names: {', '.join(RUN_PARAMETERS)} (optimizer options go in methods)"
            )

    def sample(self, trial: Trial) -> dict[str, Any]:
        """The trial's values: the method (``optimizer``), then its options and the run's."""
        method = trial.suggest_categorical("optimizer", list(self.methods))
        values: dict[str, Any] = {"optimizer": method}
        for name, distribution in {**self.methods[method], **self.run}.items():
            values[name] = suggest(trial, name, distribution)
        return values

    def arguments(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``descend.fit``/``minimize`` keyword arguments from a trial's values."""
        out = dict(self.fixed)
        beta1, beta2 = values.get("beta1"), values.get("beta2")
        for name, value in values.items():
            if name not in ("beta1", "beta2"):
                out[name] = value
        if beta1 is not None or beta2 is not None:
            out["betas"] = (0.9 if beta1 is None else beta1, 0.999 if beta2 is None else beta2)
        warmup = out.pop("warmup_steps", None)
        if warmup is not None and out.get("schedule") is not None:
            out["schedule"] = {"name": out["schedule"], "warmup_steps": warmup}
        return out


def default_space(
    methods: str | Iterable[str] = ("adam",),
    *,
    batch_sizes: Iterable[int | str] | None = None,
    schedules: Iterable[str | None] | None = None,
    warmup_steps: tuple[int, int] | None = None,
    overrides: Mapping[str, BaseDistribution] | None = None,
    fixed: Mapping[str, Any] | None = None,
) -> SearchSpace:
    """The practitioner's space for ``methods``, with the run's choices when given.

    Args:
        methods: method names of :data:`METHOD_SPACES` (a method without an entry there
            searches only ``lr``, over ``[1e-5, 1]``).
        batch_sizes: choices of ``batch_size`` (``fit`` only), e.g. ``(16, 32, 64, "full")``.
        schedules: choices of ``schedule`` (``None`` for a constant rate, ``"cosine"``,
            ``"step"``, ``"exponential"``, ...), ``fit`` only. A single choice is no
            search: it is given to every trial (``fixed``).
        warmup_steps: ``(low, high)`` linear-warmup steps before the schedule.
        overrides: ``{name: distribution}`` replacing or adding a hyperparameter of
            every method (``{"lr": FloatDistribution(1e-3, 1, log=True)}``).
        fixed: arguments every trial gets unchanged.

    Example:
        >>> from descend.tune import default_space
        >>> default_space("momentum", schedules=(None, "cosine")).run
        {'schedule': CategoricalDistribution(choices=(None, 'cosine'))}
    """
    names = [methods] if isinstance(methods, str) else list(methods)
    table: dict[str, dict[str, BaseDistribution]] = {}
    for name in names:
        key = get_method(name).name
        table[key] = {**METHOD_SPACES.get(key, {"lr": _lr(1e-5, 1.0)}), **(overrides or {})}
    run: dict[str, BaseDistribution] = {}
    given = dict(fixed or {})
    for name, choices in (("batch_size", batch_sizes), ("schedule", schedules)):
        if choices is None:
            continue
        values = list(choices)
        if len(values) > 1:
            run[name] = CategoricalDistribution(values)
        elif values and values[0] is not None:  # one choice is no search: a fixed value
            given[name] = values[0]
    if warmup_steps is not None:
        run["warmup_steps"] = IntDistribution(*warmup_steps)
    return SearchSpace(table, run, given)
