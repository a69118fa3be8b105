"""Learning-rate schedules for ``fit`` and ``minimize``'s first-order rules: torch's
schedulers, by name or as given, stepped after every optimizer step or every epoch (in
``minimize`` an iteration is both a step and an epoch).

Names build ``torch.optim.lr_scheduler`` objects (the math is torch's; ``fit`` only
decides when to step them):

=================  ===========================================================  ========
name               built as                                                     steps
=================  ===========================================================  ========
``step``           ``StepLR(step_size=max(1, epochs // 3), gamma=0.1)``          epoch
``exponential``    ``ExponentialLR(gamma=0.9)``                                  epoch
``cosine``         ``CosineAnnealingLR(T_max=total_steps, eta_min=0)``           step
``warmup_cosine``  ``SequentialLR([LinearLR(0.01 -> 1 over warmup_steps),``      step
                   ``CosineAnnealingLR(T_max=total_steps - warmup_steps)])``
``one_cycle``      ``OneCycleLR(max_lr=lr, total_steps=total_steps)``            step
``plateau``        ``ReduceLROnPlateau(factor=0.1, patience=10)`` on the         epoch
                   validation loss (or the training loss without validation)
=================  ===========================================================  ========

Options go in a dict: ``{"name": "step", "step_size": 5, "gamma": 0.5}``; ``"interval"``
(``"step"`` or ``"epoch"``) overrides when it steps, ``"monitor"`` what ``plateau`` watches,
and ``"warmup_steps"`` puts a linear warmup (:class:`Warmup`) before any of them, so a
warmup followed by plateau reduction is ``{"name": "plateau", "warmup_steps": 100}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim import lr_scheduler as torch_schedules

from descend.validation import check_int, check_number

INTERVALS = ("step", "epoch")
NAMES = ("step", "exponential", "cosine", "warmup_cosine", "one_cycle", "plateau")


class Schedule:
    """A torch scheduler and when to step it.

    Args:
        scheduler: a ``torch.optim.lr_scheduler`` object, or a factory
            ``optimizer -> scheduler`` (call :meth:`bind` with the optimizer).
        interval: ``"step"`` (after each optimizer step) or ``"epoch"``; default: step for
            ``OneCycleLR`` and ``CyclicLR``, epoch otherwise (torch's conventions).
        monitor: the metric ``ReduceLROnPlateau`` is stepped with (``"val_loss"``,
            ``"loss"``); default: the validation loss when the run validates.

    Example:
        >>> from torch.optim.lr_scheduler import StepLR
        >>> schedule = Schedule(lambda opt: StepLR(opt, 10))  # lr / 10 every 10 epochs
        >>> res = fit(model, "mse", (X, y), optimizer="gd", lr=0.1, epochs=20,
        ...           schedule=schedule, progress=False)
        >>> [round(float(res.history["lr"][i]), 6) for i in (0, -1)]  # first and last step
        [0.1, 0.01]
    """

    def __init__(
        self, scheduler: Any, interval: str | None = None, monitor: str | None = None
    ) -> None:
        if interval is not None and interval not in INTERVALS:
            raise ValueError(f"unknown interval {interval!r}; valid choices: step, epoch")
        self.factory: Callable[[Any], Any] | None = None
        self.scheduler: Any = None
        if _is_scheduler(scheduler):
            self.scheduler = scheduler
        elif callable(scheduler):
            self.factory = scheduler
        else:
            raise TypeError(
                f"schedule must be a torch LR scheduler or a factory "
                f"optimizer -> scheduler, got {type(scheduler).__name__}"
            )
        self.interval_arg = interval
        self.monitor = monitor

    def bind(self, optimizer: torch.optim.Optimizer, monitor: str) -> Schedule:
        """Build the scheduler from the factory (if any) and settle interval and monitor."""
        if self.scheduler is None:
            assert self.factory is not None
            self.scheduler = self.factory(optimizer)
            if not _is_scheduler(self.scheduler):
                raise TypeError(
                    "the schedule factory must return a torch LR scheduler, got "
                    f"{type(self.scheduler).__name__}"
                )
        if getattr(self.scheduler, "optimizer", optimizer) is not optimizer:
            raise ValueError(
                "the schedule's scheduler was built on a different optimizer than "
                "the one being run; pass a factory (optimizer -> scheduler)"
            )
        self.monitor = self.monitor or monitor
        return self

    @property
    def interval(self) -> str:
        if self.interval_arg is not None:
            return self.interval_arg
        per_step = (torch_schedules.OneCycleLR, torch_schedules.CyclicLR)
        return "step" if isinstance(self.scheduler, per_step) else "epoch"

    def step(self, logs: dict[str, float], at: str) -> None:
        """Step the scheduler if ``at`` ("step" or "epoch") is its interval."""
        if at != self.interval:
            return
        if isinstance(self.scheduler, torch_schedules.ReduceLROnPlateau):
            if self.monitor not in logs:
                raise ValueError(
                    f"the plateau schedule monitors {self.monitor!r}, which this "
                    f"run does not record; valid choices: {sorted(logs)}"
                )
            self.scheduler.step(logs[self.monitor])
        else:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state["scheduler"])


class Warmup:
    """A linear warmup over ``steps`` optimizer steps, then another schedule.

    During warmup the lr rises from ``start_factor * lr`` to ``lr`` (``LinearLR``, stepped
    per optimizer step); the ``after`` schedule is not stepped until warmup ends, then
    takes over from ``lr``. Works with any schedule, ``ReduceLROnPlateau`` included
    (which ``SequentialLR`` does not accept).

    Build ``after`` on the optimizer *before* the warmup, so its construction does not
    undo the warmup's first lr.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        steps: int,
        after: Schedule | None = None,
        start_factor: float = 0.01,
    ) -> None:
        self.steps = check_int("warmup_steps", steps, low=1)
        start_factor = check_number("start_factor", start_factor, low=0.0, high=1.0, low_open=True)
        self.after = after
        self.linear = torch_schedules.LinearLR(
            optimizer, start_factor=start_factor, end_factor=1.0, total_iters=self.steps
        )
        self.done = 0
        self.interval = "step"

    @property
    def scheduler(self) -> Any:
        return self.linear if self.done < self.steps or self.after is None else self.after.scheduler

    def step(self, logs: dict[str, float], at: str) -> None:
        if self.done < self.steps:
            if at == "step":
                self.linear.step()
                self.done += 1
            return
        if self.after is not None:
            self.after.step(logs, at)

    def state_dict(self) -> dict[str, Any]:
        return {
            "linear": self.linear.state_dict(),
            "done": self.done,
            "after": None if self.after is None else self.after.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.linear.load_state_dict(state["linear"])
        self.done = state["done"]
        if self.after is not None:
            self.after.load_state_dict(state["after"])


def build_schedule(
    spec: Any,
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int | None,
    epochs: int,
    monitor: str,
) -> Schedule | Warmup | None:
    """The schedule ``fit`` steps, from a name, a dict, a scheduler, a factory or a Schedule.

    ``total_steps`` (None when unknown) sizes ``cosine``, ``warmup_cosine`` and
    ``one_cycle``; ``monitor`` is what ``plateau`` watches unless told otherwise.
    """
    if spec is None:
        return None
    if isinstance(spec, (Schedule, Warmup)):
        return spec.bind(optimizer, monitor) if isinstance(spec, Schedule) else spec
    if _is_scheduler(spec):
        return Schedule(spec).bind(optimizer, monitor)
    if isinstance(spec, str):
        spec = {"name": spec}
    if isinstance(spec, dict):
        return _named(dict(spec), optimizer, total_steps, epochs, monitor)
    if callable(spec):
        return Schedule(spec).bind(optimizer, monitor)
    raise TypeError(
        f"schedule must be a name ({', '.join(NAMES)}), a dict with 'name', a torch LR "
        f"scheduler, a factory optimizer -> scheduler, or a Schedule; got {type(spec).__name__}"
    )


def _named(
    options: dict[str, Any],
    optimizer: torch.optim.Optimizer,
    total: int | None,
    epochs: int,
    monitor: str,
) -> Schedule | Warmup:
    if "name" not in options:
        raise ValueError(f"a schedule dict needs a 'name' ({', '.join(NAMES)}); got {options}")
    name = str(options.pop("name")).lower().replace("-", "_")
    interval = options.pop("interval", None)
    watch = options.pop("monitor", None) or monitor
    warmup = options.pop("warmup_steps", None)
    start_factor = options.pop("start_factor", 0.01)
    if name not in NAMES:
        raise ValueError(f"unknown schedule {name!r}; valid names: {', '.join(NAMES)}")

    def need_total() -> int:
        if total is None:
            raise ValueError(
                f"schedule {name!r} needs the number of steps, which is unknown for "
                "this data source; give max_steps"
            )
        return total

    def make(default_interval: str, build: Callable[[], Any]) -> Schedule:
        try:
            scheduler = build()
        except TypeError as exc:
            raise ValueError(f"schedule {name!r}: {exc}") from exc
        return Schedule(scheduler, interval or default_interval, watch).bind(optimizer, watch)

    T = torch_schedules
    if name == "warmup_cosine":
        steps = need_total()
        warm = check_int(
            "warmup_steps", warmup if warmup is not None else max(1, steps // 20), low=1
        )
        if warm >= steps:
            raise ValueError(f"warmup_steps must be < the total steps {steps}, got {warm}")
        return make(
            "step",
            lambda: T.SequentialLR(
                optimizer,
                [
                    T.LinearLR(
                        optimizer, start_factor=start_factor, end_factor=1.0, total_iters=warm
                    ),
                    T.CosineAnnealingLR(optimizer, T_max=steps - warm, **options),
                ],
                milestones=[warm],
            ),
        )

    after_warmup = 0 if warmup is None else check_int("warmup_steps", warmup, low=1)
    if name == "step":
        options.setdefault("step_size", max(1, epochs // 3))
        options.setdefault("gamma", 0.1)
        schedule = make("epoch", lambda: T.StepLR(optimizer, **options))
    elif name == "exponential":
        options.setdefault("gamma", 0.9)
        schedule = make("epoch", lambda: T.ExponentialLR(optimizer, **options))
    elif name == "cosine":
        options.setdefault("T_max", max(1, need_total() - after_warmup))
        schedule = make("step", lambda: T.CosineAnnealingLR(optimizer, **options))
    elif name == "one_cycle":
        options.setdefault("max_lr", [g["lr"] for g in optimizer.param_groups])
        options.setdefault("total_steps", max(1, need_total() - after_warmup))
        schedule = make("step", lambda: T.OneCycleLR(optimizer, **options))
    else:  # plateau
        options.setdefault("factor", 0.1)
        options.setdefault("patience", 10)
        schedule = make("epoch", lambda: T.ReduceLROnPlateau(optimizer, **options))
    if warmup is None:
        return schedule
    return Warmup(optimizer, after_warmup, schedule, start_factor=start_factor)


def _is_scheduler(obj: Any) -> bool:
    return isinstance(obj, torch_schedules.LRScheduler)
