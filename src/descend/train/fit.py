"""``fit``: the descent loop fed by batches of a data set.

Batch, stochastic and mini-batch gradient descent are one loop fed differently: each step
takes the next batch (all rows, one row, or ``k`` rows), evaluates the loss and gradient
on it through an :class:`descend.objective.Objective`, and hands that objective to the
optimizer as its closure, exactly as ``minimize`` does; second-order methods re-evaluate it
and use its exact Hessian-vector products on the same batch.

Why a loop of its own rather than ``run_descent``: ``run_descent`` tests and records f
at the new point after every step, which on a data set means either a second
forward/backward per step or a record mixing points and batches, and it has no notion of
epochs, validation or a position in the data to checkpoint. So ``fit``'s loop is built
from the same pieces instead: :class:`descend.StoppingCriteria` (gtol on full-batch
gradients, ftol and target on epoch losses, max_time, the divergence test),
:func:`descend.stopping.divergence_message`, :class:`descend.History`, the
:class:`descend.callbacks.Callback` contract and :class:`descend.optim.StepFailed`.
"""

from __future__ import annotations

import math
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from descend.callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    ProgressBar,
    as_callbacks,
    bind_callbacks,
)
from descend.methods import get_method
from descend.monitors import monitors_for_run
from descend.objective import Objective
from descend.optim.optimizer import StepFailed
from descend.result import Status
from descend.stopping import StoppingCriteria, divergence_message
from descend.train.checkpoint import FORMAT, check_compatible, load_checkpoint
from descend.train.data import Converter, DataSource, FullPass, InMemory, as_source
from descend.train.losses import Loss, get_loss, get_metric
from descend.train.regularization import GradientClipper, Penalty
from descend.train.result import FitResult, epoch_history, step_history
from descend.train.schedules import build_schedule
from descend.validation import check_int

#: steps allowed when neither ``epochs`` nor ``max_steps`` bounds a run (never reached)
UNBOUNDED = 2**62


def fit(
    model: nn.Module,
    loss: str | Callable[[Tensor, Tensor], Tensor],
    data: Any,
    *,
    optimizer: str | torch.optim.Optimizer = "adam",
    lr: float | None = None,
    batch_size: int | str = 32,
    epochs: int | None = 10,
    max_steps: int | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    schedule: Any = None,
    clip_grad_norm: float | None = None,
    clip_grad_value: float | None = None,
    l1: float = 0.0,
    l2: float = 0.0,
    validation: Any = None,
    metric: str | Callable[[Tensor, Tensor], Tensor] | None = None,
    early_stopping: Any = None,
    callbacks: Any = (),
    monitors: Any = "default",
    checkpoint: Any = None,
    resume: Any = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    init: str | None = None,
    stopping: StoppingCriteria | None = None,
    **options: Any,
) -> FitResult:
    r"""Train ``model`` on ``data`` by gradient descent: batch, stochastic or mini-batch.

    Each step draws the next batch, evaluates the mean ``loss`` on it (plus the L2
    penalty :math:`\lambda_2\|w\|^2/2`), clips the gradient if asked, takes one optimizer
    step, then applies the L1 proximal step :math:`w \leftarrow \mathrm{sign}(w)
    \max(|w| - \eta\lambda_1, 0)`. An epoch is one pass over the rows; after each, the
    model is validated, the epoch is recorded, and epoch schedules and callbacks run.

    Args:
        model: a ``torch.nn.Module``; trained in place and returned in the result.
        loss: a name (``mse``, ``mae``, ``huber``, ``bce``, ``bce_with_logits``,
            ``cross_entropy``, ``nll``) or ``loss(prediction, target) -> scalar`` (a mean).
        data: an ``(X, y)`` pair (tensors, NumPy arrays, lists, pandas objects), a torch
            ``Dataset`` of ``(x, y)`` items or a ``DataLoader``, or
            :func:`descend.train.stream` over CSV/Parquet files (bounded memory).
        optimizer: a method name of ``descend.METHODS`` (``adam``, ``gd``, ``momentum``,
            ``lbfgs``, ``newton``, ...) or an optimizer over ``model``'s parameters.
        lr: the learning rate (default: the method's), > 0.
        batch_size: ``"full"`` (batch gradient descent), ``1`` (stochastic) or ``k >= 1``.
        epochs: passes over the data (None: unbounded, then ``max_steps`` is required).
        max_steps: stop after this many optimizer steps (mid-epoch if need be).
        shuffle: draw a new order of rows each epoch (within a buffer when streaming).
        seed: seeds every random choice of the run (order of rows, validation split,
            ``init``, dropout): the same seed gives bit-identical runs. Default: drawn at
            random and reported as ``result.seed``.
        schedule: a learning-rate schedule: a name (``step``, ``exponential``, ``cosine``,
            ``warmup_cosine``, ``one_cycle``, ``plateau``), a dict of a name and options, a
            torch scheduler, a factory ``optimizer -> scheduler``, or a
            :class:`descend.train.schedules.Schedule`.
        clip_grad_norm: rescale the gradient to this global 2-norm at most, > 0.
        clip_grad_value: clamp each gradient entry to ``[-v, v]``, > 0.
        l1: L1 strength >= 0 (by proximal step: exact zeros); ``l2``: L2 strength >= 0.
        validation: held-out data (any form ``data`` takes) or a fraction in (0, 1) of
            in-memory ``data`` to hold out at random; evaluated after every epoch.
        metric: also report ``val_<metric>`` (``accuracy``, ``mse``, ``mae`` or a callable).
        early_stopping: ``True``, a patience (int), a dict of
            :class:`~descend.callbacks.EarlyStopping` options, or an EarlyStopping.
        callbacks: :class:`~descend.callbacks.Callback` objects or functions.
        monitors: health monitors watching the run (``descend.diagnostics``); what they
            find lands on ``result.diagnoses``. ``"default"``: the standard set plus the
            network monitors (layer gradients, dead ReLUs) and the gradient noise scale;
            ``None``: none; or a list of monitors.
        checkpoint: a path (saved after every epoch and at the end) or a
            :class:`~descend.callbacks.Checkpoint`.
        resume: a checkpoint file to continue from (``True``: the ``checkpoint`` path if
            that file exists). The run ends bit-identical to one never interrupted.
        device: ``"cpu"``, ``"cuda"``, ...; the model and each batch are moved there.
        progress: show a progress bar when writing to a terminal.
        init: initialize the model's weights first (:func:`descend.init.initialize`
            scheme, seeded by ``seed``).
        stopping: a :class:`descend.StoppingCriteria`: ``gtol`` tests full-batch
            gradients, ``ftol`` (with ``patience``) and ``target`` the epoch's training
            loss, ``max_time`` the wall clock, ``divergence_factor`` the step losses, and
            ``max_iter`` caps the steps. Default: none of them but divergence.
        **options: passed to the optimizer (``momentum``, ``betas``, ``weight_decay``, ...).

    Returns:
        :class:`descend.train.FitResult` with the model, per-step and per-epoch history.

    Example:
        >>> net = torch.nn.Linear(3, 1)
        >>> res = descend.fit(net, "mse", (X, y), optimizer="gd", lr=0.1, batch_size=16)
        >>> res.epoch_history["loss"]
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no parameters that require grad; nothing to train")
    state = _resume_state(resume, checkpoint)
    if seed is None:
        seed = state["config"]["seed"] if state is not None else secrets.randbits(63)
    seed = check_int("seed", seed, low=0)
    size = _batch_size(batch_size)
    if epochs is not None:
        epochs = check_int("epochs", epochs, low=1)
    if max_steps is not None:
        max_steps = check_int("max_steps", max_steps, low=1)
    if epochs is None and max_steps is None:
        raise ValueError("epochs=None needs max_steps to bound the run; give one of them")
    if stopping is not None and not isinstance(stopping, StoppingCriteria):
        raise TypeError(f"stopping must be a descend.StoppingCriteria, got {stopping!r}")
    device = torch.device(device) if device is not None else params[0].device
    model.to(device)
    if init is not None:
        from descend.init import initialize

        initialize(model, init, seed=_derive(seed, 1))

    loss_spec = get_loss(loss)
    dtype = next((p.dtype for p in params if p.is_floating_point()), torch.get_default_dtype())
    converter = Converter(dtype, loss_spec.target)
    source = as_source(data, converter)
    val_source = None
    if isinstance(validation, float):
        if not isinstance(source, InMemory):
            raise ValueError(
                "validation as a fraction needs in-memory data; give a separate "
                "validation set for streams, datasets and loaders"
            )
        split = torch.Generator().manual_seed(_derive(seed, 2))
        source, val_source = source.split(validation, split)
    elif validation is not None:
        val_source = as_source(validation, converter, "validation")
    if isinstance(source, InMemory) and source.X.device != device:
        source = InMemory(source.X.to(device), source.y.to(device))
    metric_spec = get_metric(metric, loss_spec) if metric is not None else None

    method, opt = _optimizer(optimizer, params, lr, options)
    stopping = (
        stopping
        if stopping is not None
        else StoppingCriteria(max_iter=UNBOUNDED, gtol=0.0, ftol=0.0)
    )
    per_epoch = source.steps_per_epoch(size)
    total = _total_steps(per_epoch, epochs, max_steps, stopping.max_iter)
    monitor = "val_loss" if val_source is not None else "loss"
    sched = build_schedule(schedule, opt, total_steps=total, epochs=epochs or 1, monitor=monitor)

    trainer = Trainer(
        model=model,
        params=params,
        loss=loss_spec,
        source=source,
        validation=val_source,
        metric=metric_spec,
        optimizer=opt,
        method=method,
        schedule=sched,
        penalty=Penalty(model, l1, l2),
        clipper=GradientClipper(clip_grad_norm, clip_grad_value),
        callbacks=monitors_for_run(monitors, model=model)
        + _callbacks(callbacks, early_stopping, checkpoint, progress),
        stopping=stopping,
        batch_size=size,
        epochs=epochs,
        max_steps=max_steps,
        total_steps=total,
        steps_per_epoch=per_epoch,
        shuffle=bool(shuffle),
        seed=seed,
        device=device,
    )
    bind_callbacks(
        trainer.callbacks,
        objective=trainer.objective,
        optimizer=opt,
        model=model,
        loss_fn=loss_spec,
        # a pass over the data in an order of its own, for monitors that sample batches
        batches=lambda: source.batches(
            size, shuffle=True, generator=torch.Generator().manual_seed(_derive(seed, 4))
        ),
        batch_size=size,
    )
    return trainer.run(state)


class Trainer:
    """One training run: its state, the step, the epoch end, and checkpoint round trips."""

    def __init__(
        self,
        *,
        model: nn.Module,
        params: list[Tensor],
        loss: Loss,
        source: DataSource,
        validation: DataSource | None,
        metric: tuple[str, Callable] | None,
        optimizer: torch.optim.Optimizer,
        method: str,
        schedule: Any,
        penalty: Penalty,
        clipper: GradientClipper,
        callbacks: list[Callback],
        stopping: StoppingCriteria,
        batch_size: int | None,
        epochs: int | None,
        max_steps: int | None,
        total_steps: int | None,
        steps_per_epoch: int | None,
        shuffle: bool,
        seed: int,
        device: torch.device,
    ) -> None:
        self.model, self.params, self.loss = model, params, loss
        self.source, self.validation, self.metric = source, validation, metric
        self.optimizer, self.method, self.schedule = optimizer, method, schedule
        self.penalty, self.clipper, self.callbacks = penalty, clipper, callbacks
        self.stopping, self.batch_size = stopping, batch_size
        self.epochs, self.max_steps, self.total_steps = epochs, max_steps, total_steps
        self.shuffle, self.seed, self.device = shuffle, seed, device
        self.steps_per_epoch = steps_per_epoch
        self.generator = torch.Generator().manual_seed(seed)
        self.objective = Objective(params, self._evaluate)
        self.history, self.epoch_history = step_history(), epoch_history()
        # position in the data and running sums; all of it goes into a checkpoint
        self.step = self.epoch = self.batch_index = 0
        self.epoch_start_rng = self.generator.get_state()
        self.epoch_loss_sum, self.epoch_rows = 0.0, 0
        self.f0: float | None = None
        self.best_step_loss, self.best_step_at = math.inf, 0
        self.prev_epoch_loss: float | None = None
        self.calm = 0
        self.fun = self.grad_norm = math.nan
        self.logs: dict[str, float] = {}
        self.best_value, self.best_epoch = math.inf, 0
        self.best_weights = _copy_state(model)
        self.elapsed_before = 0.0
        self._start = time.perf_counter()
        # the batch being evaluated and what its first evaluation measured
        self._batch: Any = None
        self._batch_rows = 0
        self._step_loss: Tensor | None = None
        self._step_norm: Tensor | None = None
        # what the latest evaluation measured: a step that starts where the previous
        # step's line search ended, on the same batch, reuses it instead of evaluating
        self._last_eval: tuple[Tensor, Tensor, int] | None = None

    # -- evaluation of one batch ------------------------------------------------------

    def _penalized(self) -> Tensor:
        X, y = self._batch
        value = self.loss(self.model(X), y)
        term = self.penalty.l2_term()
        return value if term is None else value + term

    def _evaluate(self) -> Tensor:
        for p in self.params:
            p.grad = None
        batch = self._batch
        with torch.enable_grad():
            if isinstance(batch, FullPass):
                data_loss, rows = self._accumulate(batch)
                term = self.penalty.l2_term()
                total = data_loss
                if term is not None:
                    term.backward()
                    total = data_loss + term.detach()
            else:
                X, y = batch
                rows = X.shape[0]
                data = self.loss(self.model(X), y)
                term = self.penalty.l2_term()
                total_t = data if term is None else data + term
                total_t.backward()
                data_loss, total = data.detach(), total_t.detach()
        norm = self.clipper(self.params)
        if self._step_loss is None:  # the step's own point; line searches evaluate others
            self._step_loss, self._step_norm, self._batch_rows = data_loss, norm, rows
        self._last_eval = (data_loss, norm, rows)
        return total

    def _accumulate(self, batch: FullPass) -> tuple[Tensor, int]:
        """The mean loss over all rows, its gradient summed chunk by chunk into p.grad."""
        loss_sum: Tensor | None = None
        rows = 0
        for X, y in batch:
            X, y = self._to_device(X, y)
            n = X.shape[0]
            part = self.loss(self.model(X), y) * n
            part.backward()
            loss_sum = part.detach() if loss_sum is None else loss_sum + part.detach()
            rows += n
        if loss_sum is None:
            raise ValueError("data has no rows; a full pass read nothing")
        grads = [p.grad for p in self.params if p.grad is not None]
        if grads:
            torch._foreach_mul_(grads, 1.0 / rows)
        return loss_sum / rows, rows

    def _to_device(self, X: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        if X.device != self.device:
            X, y = X.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        return X, y

    @torch.no_grad()
    def _validate(self) -> tuple[float, float]:
        assert self.validation is not None
        was_training = self.model.training
        self.model.eval()
        loss_sum = metric_sum = 0.0
        rows = 0
        for X, y in self.validation.chunks():
            X, y = self._to_device(X, y)
            out = self.model(X)
            n = X.shape[0]
            loss_sum += float(self.loss(out, y)) * n
            if self.metric is not None:
                metric_sum += float(self.metric[1](out, y)) * n
            rows += n
        self.model.train(was_training)
        if rows == 0:
            raise ValueError("validation has no rows")
        return loss_sum / rows, (metric_sum / rows if self.metric is not None else math.nan)

    # -- the loop ---------------------------------------------------------------------

    def run(self, state: dict[str, Any] | None) -> FitResult:
        was_training = self.model.training
        self.model.train()
        with _forked_rng(self.device, _derive(self.seed, 3)):
            if state is not None:
                self.load_state_dict(state)
            self._start = time.perf_counter()
            begin = self.result(Status.RUNNING, "starting")
            for cb in self.callbacks:
                cb.on_begin(begin)
            if state is not None:
                _load_callbacks(self.callbacks, state["callbacks"])
            status, message = self._train()
        if status == Status.DIVERGED:  # a failed line search already left the best point
            self.model.load_state_dict(self.best_weights)
            where = f"epoch {self.best_epoch}" if self.best_epoch else "the start"
            message += f" Returned the weights from {where}."
        self.model.train(was_training)
        result = self.result(status, message)
        for cb in self.callbacks:
            cb.on_end(result)
        return result

    def _train(self) -> tuple[Status, str]:
        while True:
            if self.epochs is not None and self.epoch >= self.epochs:
                return Status.MAX_ITER, (
                    f"completed {self.epochs} epoch(s) ({self.step} steps); train longer "
                    "(epochs, max_steps) if the loss is still falling"
                )
            if self.batch_index == 0:
                self.epoch_start_rng = self.generator.get_state()
            else:  # resuming mid-epoch: replay this epoch's draws, skip what was done
                self.generator.set_state(self.epoch_start_rng)
            for batch in self.source.batches(
                self.batch_size,
                shuffle=self.shuffle,
                generator=self.generator,
                skip=self.batch_index,
            ):
                outcome = self._step(batch)
                if outcome is not None:
                    budget = outcome[0] in (Status.MAX_ITER, Status.MAX_TIME)
                    if budget and self.batch_index == self.steps_per_epoch:
                        # the budget ran out on the epoch's last batch: the epoch is complete
                        outcome = self._epoch_end() or outcome
                    return outcome
            if self.batch_index == 0 and self.epoch_rows == 0:
                raise ValueError("data yielded no batches; it needs at least one row")
            outcome = self._epoch_end()
            if outcome is not None:
                return outcome

    def _step(self, batch: Any) -> tuple[Status, str] | None:
        if isinstance(batch, FullPass):
            self._batch = batch
            self.objective.loss_fn = None
            self.objective.forget()
        else:
            previous = self._batch
            self._batch = self._to_device(*batch)
            self.objective.loss_fn = self._penalized
            if not (
                isinstance(previous, tuple)
                and previous[0] is self._batch[0]
                and previous[1] is self._batch[1]
            ):
                self.objective.forget()
        self._step_loss = self._step_norm = None
        lr = _lr(self.optimizer)
        self.objective.closure()
        if self._step_loss is None and self._last_eval is not None:
            # the same batch at the point the last evaluation saw (the Objective's cache
            # checks that no parameter changed since): its values are this step's
            self._step_loss, self._step_norm, self._batch_rows = self._last_eval
        try:
            self.optimizer.step(self.objective)
        except StepFailed as failure:
            return Status(failure.status), failure.message
        self.penalty.prox(self.optimizer)
        self.step += 1
        self.batch_index += 1
        loss, norm = _floats(self._step_loss, self._step_norm)
        self.epoch_loss_sum += loss * self._batch_rows
        self.epoch_rows += self._batch_rows
        self.fun = loss if self.epoch == 0 else self.fun
        self.grad_norm = norm
        elapsed = self.elapsed()
        self.history.append((self.step, self.epoch, loss, norm, lr, elapsed))
        self.logs = {
            "step": self.step,
            "epoch": self.epoch,
            "loss": loss,
            "grad_norm": norm,
            "lr": lr,
            "time": elapsed,
        }

        if not (math.isfinite(loss) and math.isfinite(norm)):
            what, value = (
                ("the loss", loss) if not math.isfinite(loss) else ("the gradient norm", norm)
            )
            if self.f0 is None:
                return Status.DIVERGED, (
                    f"{what} is {value} at the first step, before any update: check the data "
                    "for NaN or infinite values and the model's initialization"
                )
            return Status.DIVERGED, divergence_message(
                value, self.best_step_loss, self.step - self.best_step_at, lr, what
            )
        if self.f0 is None:
            self.f0 = loss
        if loss < self.best_step_loss:
            self.best_step_loss, self.best_step_at = loss, self.step
        elif self.stopping.diverging(loss, self.best_step_loss, self.f0):
            return Status.DIVERGED, divergence_message(
                loss, self.best_step_loss, self.step - self.best_step_at, lr, "the loss"
            )

        outcome = None
        if self.batch_size is None:  # the full gradient: the point tests apply
            outcome = self.stopping.at_point(loss, norm, self.step)
        if self.schedule is not None:
            self.schedule.step(self.logs, "step")
        # a result only for callbacks that want this step (monitors checking every N
        # steps do not), as in descend.loop
        wanted = [cb for cb in self.callbacks if cb.on_iteration(self.step)]
        if wanted and _any_stop(wanted, "on_step", self.result(Status.RUNNING, "running")):
            return Status.CALLBACK, self._stop_message()
        if outcome is not None:
            return outcome
        limit = min(self.max_steps or UNBOUNDED, self.stopping.max_iter)
        if self.step >= limit:
            return Status.MAX_ITER, (
                f"reached max_steps = {limit} in epoch {self.epoch + 1}; raise max_steps or "
                "epochs if the loss is still falling"
            )
        if self.stopping.max_time is not None and elapsed >= self.stopping.max_time:
            return Status.MAX_TIME, (
                f"stopped at max_time = {self.stopping.max_time:g} s after {self.step} steps"
            )
        return None

    def _epoch_end(self) -> tuple[Status, str] | None:
        self.epoch += 1
        self.batch_index = 0
        train_loss = self.epoch_loss_sum / max(self.epoch_rows, 1)
        self.epoch_loss_sum, self.epoch_rows = 0.0, 0
        val_loss = val_metric = math.nan
        if self.validation is not None:
            val_loss, val_metric = self._validate()
        lr = _lr(self.optimizer)
        self.fun = train_loss
        elapsed = self.elapsed()
        self.epoch_history.append(
            (self.epoch, self.step, train_loss, val_loss, val_metric, lr, elapsed)
        )
        self.logs = {"epoch": self.epoch, "step": self.step, "loss": train_loss}
        if self.validation is not None:
            self.logs["val_loss"] = val_loss
            if self.metric is not None:
                self.logs[f"val_{self.metric[0]}"] = val_metric
        self.logs.update(lr=lr, time=elapsed)
        watched = val_loss if self.validation is not None else train_loss
        if math.isfinite(watched) and watched < self.best_value:
            self.best_value, self.best_epoch = watched, self.epoch
            self.best_weights = _copy_state(self.model)

        outcome = None
        if self.stopping.target is not None and train_loss <= self.stopping.target:
            outcome = (
                Status.TARGET,
                (f"epoch loss {train_loss:.6g} reached the target {self.stopping.target:g}"),
            )
        if self.stopping.ftol > 0 and self.prev_epoch_loss is not None:
            met = self.stopping.ftol_met(self.prev_epoch_loss, train_loss)
            self.calm = self.calm + 1 if met else 0
            if outcome is None and self.calm >= self.stopping.patience:
                outcome = (
                    Status.FTOL,
                    (
                        f"relative change of the epoch loss <= ftol {self.stopping.ftol:g} for "
                        f"{self.calm} epoch(s)"
                    ),
                )
        self.prev_epoch_loss = train_loss
        if self.schedule is not None:
            self.schedule.step(self.logs, "epoch")
        if self.callbacks and _any_stop(
            self.callbacks, "on_epoch_end", self.result(Status.RUNNING, "running")
        ):
            return Status.CALLBACK, self._stop_message()
        return outcome

    def _stop_message(self) -> str:
        reasons = [r for cb in self.callbacks if (r := getattr(cb, "stop_reason", None))]
        where = f"after {self.step} steps ({self.epoch} epochs)"
        return (
            ("; ".join(reasons) + f"; stopped {where}")
            if reasons
            else (f"a callback stopped the run {where}")
        )

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self._start

    def result(self, status: Status, message: str) -> FitResult:
        return FitResult(
            model=self.model,
            status=status,
            message=message,
            history=self.history,
            epoch_history=self.epoch_history,
            fun=self.fun,
            grad_norm=self.grad_norm,
            nit=self.step,
            epoch=self.epoch,
            epochs=self.epochs,
            total_steps=self.total_steps,
            nfev=self.objective.nfev,
            njev=self.objective.njev,
            nhev=self.objective.nhev,
            time=self.elapsed(),
            method=self.method,
            seed=self.seed,
            logs=dict(self.logs),
            has_validation=self.validation is not None,
            optimizer=self.optimizer,
            _state_fn=self.state_dict,
        )

    # -- checkpoint round trip -----------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The whole state of the run between two steps (see ``descend.train.checkpoint``)."""
        cuda = self.device.type == "cuda"
        return {
            "format": FORMAT,
            "config": self._config(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": None if self.schedule is None else self.schedule.state_dict(),
            "rng": {
                "generator": self.generator.get_state(),
                "epoch_start": self.epoch_start_rng,
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(self.device) if cuda else None,
            },
            "position": {"step": self.step, "epoch": self.epoch, "batch_index": self.batch_index},
            "sums": {
                "epoch_loss_sum": self.epoch_loss_sum,
                "epoch_rows": self.epoch_rows,
                "f0": self.f0,
                "best_step_loss": self.best_step_loss,
                "best_step_at": self.best_step_at,
                "prev_epoch_loss": self.prev_epoch_loss,
                "calm": self.calm,
                "fun": self.fun,
                "grad_norm": self.grad_norm,
                "logs": dict(self.logs),
            },
            "best": {
                "value": self.best_value,
                "epoch": self.best_epoch,
                "weights": self.best_weights,
            },
            "counts": {
                "nfev": self.objective.nfev,
                "njev": self.objective.njev,
                "nhev": self.objective.nhev,
            },
            "history": self.history.state_dict(),
            "epoch_history": self.epoch_history.state_dict(),
            "callbacks": [(type(cb).__name__, cb.state_dict()) for cb in self.callbacks],
            "elapsed": self.elapsed(),
        }

    def _config(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "num_rows": self.source.num_rows,
            "method": self.method,
            "params": [tuple(p.shape) for p in self.params],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_compatible(state, self._config())
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.schedule is not None:
            if state["schedule"] is None:
                raise ValueError(
                    "the checkpoint was saved without a schedule; resume with "
                    "the same schedule argument as the interrupted run"
                )
            self.schedule.load_state_dict(state["schedule"])
        rng = state["rng"]
        self.generator.set_state(rng["generator"])
        self.epoch_start_rng = rng["epoch_start"]
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        pos = state["position"]
        self.step, self.epoch, self.batch_index = pos["step"], pos["epoch"], pos["batch_index"]
        sums = state["sums"]
        self.epoch_loss_sum, self.epoch_rows = sums["epoch_loss_sum"], sums["epoch_rows"]
        self.f0, self.best_step_loss = sums["f0"], sums["best_step_loss"]
        self.best_step_at, self.prev_epoch_loss = sums["best_step_at"], sums["prev_epoch_loss"]
        self.calm, self.fun, self.grad_norm = sums["calm"], sums["fun"], sums["grad_norm"]
        self.logs = dict(sums["logs"])
        best = state["best"]
        self.best_value, self.best_epoch = best["value"], best["epoch"]
        self.best_weights = {k: v.to(self.device) for k, v in best["weights"].items()}
        counts = state["counts"]
        self.objective.nfev, self.objective.njev = counts["nfev"], counts["njev"]
        self.objective.nhev = counts["nhev"]
        self.history.load_state_dict(state["history"])
        self.epoch_history.load_state_dict(state["epoch_history"])
        self.elapsed_before = state["elapsed"]


# -- pieces -------------------------------------------------------------------------------


def _batch_size(batch_size: Any) -> int | None:
    if isinstance(batch_size, str):
        if batch_size.lower() != "full":
            raise ValueError(f"batch_size must be 'full' or an integer >= 1, got {batch_size!r}")
        return None
    return check_int("batch_size", batch_size, low=1)


def _optimizer(
    optimizer: Any, params: list[Tensor], lr: float | None, options: dict[str, Any]
) -> tuple[str, torch.optim.Optimizer]:
    if isinstance(optimizer, torch.optim.Optimizer):
        if lr is not None or options:
            given = ["lr"] * (lr is not None) + sorted(options)
            raise ValueError(
                f"{', '.join(given)} cannot be given with an optimizer instance; "
                "set them when building it"
            )
        mine = {id(p) for p in params}
        for group in optimizer.param_groups:
            for p in group["params"]:
                if id(p) not in mine:
                    raise ValueError(
                        "the optimizer holds parameters that are not the model's "
                        "trainable parameters; build it on model.parameters()"
                    )
        return type(optimizer).__name__, optimizer
    spec = get_method(optimizer)
    if lr is not None:
        from descend.validation import check_positive

        options = {**options, "lr": check_positive("lr", lr)}
    return spec.name, spec.build(params, options, training=True)


def _total_steps(
    per_epoch: int | None, epochs: int | None, max_steps: int | None, max_iter: int
) -> int | None:
    bounds = [b for b in (max_steps, max_iter if max_iter < UNBOUNDED else None) if b]
    if per_epoch is not None and epochs is not None:
        bounds.append(per_epoch * epochs)
    return min(bounds) if bounds else None


def _callbacks(
    callbacks: Any, early_stopping: Any, checkpoint: Any, progress: bool
) -> list[Callback]:
    out = as_callbacks(callbacks)
    if early_stopping is not None and early_stopping is not False:
        if isinstance(early_stopping, EarlyStopping):
            out.append(early_stopping)
        elif early_stopping is True:
            out.append(EarlyStopping())
        elif isinstance(early_stopping, int):
            out.append(EarlyStopping(patience=early_stopping))
        elif isinstance(early_stopping, dict):
            out.append(EarlyStopping(**early_stopping))
        else:
            raise TypeError(
                "early_stopping must be True, a patience (int), a dict of "
                f"EarlyStopping options or an EarlyStopping; got {early_stopping!r}"
            )
    if checkpoint is not None:
        if isinstance(checkpoint, Checkpoint):
            out.append(checkpoint)
        elif isinstance(checkpoint, (str, os.PathLike)):
            out.append(Checkpoint(checkpoint))
        else:
            raise TypeError(
                f"checkpoint must be a path or a descend.callbacks.Checkpoint, got "
                f"{type(checkpoint).__name__}"
            )
    if progress and not any(isinstance(cb, ProgressBar) for cb in out):
        out.append(ProgressBar())
    # checkpoints last, so what they save includes every other callback's update
    return [cb for cb in out if not isinstance(cb, Checkpoint)] + [
        cb for cb in out if isinstance(cb, Checkpoint)
    ]


def _resume_state(resume: Any, checkpoint: Any) -> dict[str, Any] | None:
    if resume is None or resume is False:
        return None
    if resume is True:
        path = checkpoint.path if isinstance(checkpoint, Checkpoint) else checkpoint
        if path is None:
            raise ValueError("resume=True needs checkpoint= (the file to resume from)")
        path = os.fspath(path)
        return load_checkpoint(path) if os.path.exists(path) else None
    if isinstance(resume, dict):
        return resume
    return load_checkpoint(resume)


def _load_callbacks(callbacks: list[Callback], saved: list[tuple[str, Any]]) -> None:
    names = [type(cb).__name__ for cb in callbacks]
    if names != [name for name, _ in saved]:
        raise ValueError(
            f"the checkpoint was saved with callbacks {[n for n, _ in saved]}, "
            f"this run has {names}; resume with the same callbacks"
        )
    for cb, (_, cb_state) in zip(callbacks, saved):
        cb.load_state_dict(cb_state)


def _any_stop(callbacks: list[Callback], hook: str, result: FitResult) -> bool:
    stop = False
    for cb in callbacks:
        try:
            stop = bool(getattr(cb, hook)(result)) or stop
        except StopIteration:
            stop = True
    return stop


@contextmanager
def _forked_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Seed the global RNG (dropout, user code) for the run and restore it afterwards."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _derive(seed: int, stream: int) -> int:
    """An independent seed for one use of the run's seed (split, init, global RNG)."""
    import numpy as np

    return int(np.random.SeedSequence([seed, stream]).generate_state(1, np.uint64)[0] >> 1)


def _copy_state(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _lr(optimizer: torch.optim.Optimizer) -> float:
    lr = optimizer.param_groups[0].get("lr")
    if isinstance(lr, Tensor):
        return float(lr.item())
    return float(lr) if isinstance(lr, (int, float)) else math.nan


def _floats(*tensors: Tensor | None) -> list[float]:
    """One host synchronization for the step's scalars."""
    values = [t if t is not None else torch.tensor(math.nan) for t in tensors]
    if all(t.device.type == "cpu" for t in values):
        return [float(t) for t in values]
    return torch.stack([t.detach().double().cpu() for t in values]).tolist()
