"""``fit``: the engine fed by batches of a data set.

Batch, stochastic and mini-batch gradient descent are one loop fed differently: each step
takes the next batch (all rows, one row, or ``k`` rows), evaluates the loss and gradient
on it through an :class:`descend.objective.Objective`, and hands that objective to the
optimizer as its closure, exactly as ``minimize`` does; second-order methods re-evaluate it
and use its exact Hessian-vector products on the same batch. The loop, its tests and
messages are the engine's (:class:`descend.engine.Engine`); :class:`Trainer` is the feed:
epochs, validation, a position in the data and the checkpoint round trip.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from typing import Any, cast

import torch
from torch import Tensor, nn

from descend.callbacks import (
    Callback,
    CallbackList,
    Checkpoint,
    EarlyStopping,
    ProgressBar,
    as_callbacks,
)
from descend.distributed.agreed_callbacks import AgreedCallbacks
from descend.distributed.data_parallel import DataParallel, wanted
from descend.distributed.sharded_dropout import sharded_dropout
from descend.distributed.stream_shards import Share
from descend.engine import Engine, Measure, Outcome, StoppingCriteria, describe
from descend.engine.feed import host, step_tests
from descend.engine.iterates import Iterates
from descend.methods import get_method
from descend.monitors import monitors_for_run
from descend.objective import Objective
from descend.optim.capabilities import capabilities
from descend.optim.proximal import ProximalL1, proximal_gradient_mapping
from descend.result import Status
from descend.train.bounds import ParameterBounds
from descend.train.checkpoint import FORMAT, check_compatible, load_checkpoint
from descend.train.data import Converter, DataSource, FullPass, InMemory, as_source
from descend.train.losses import Loss, get_loss, get_metric
from descend.train.regularization import GradientClipper, Penalty
from descend.train.result import FitResult, epoch_history, step_history
from descend.train.schedules import build_schedule
from descend.validation import check_device, check_int, check_non_negative

#: callbacks that run on rank 0 only in a distributed run: they show or write
RANK_ZERO_ONLY = (ProgressBar, Checkpoint)

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
    bounds: Any = None,
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
    distributed: bool | None = None,
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
        bounds: keep parameters in a set by projecting them after every step (projected
            gradient descent; the starting weights are projected first): one set for every
            trainable tensor (``"nonnegative"``, ``"simplex"``, ``descend.constraints.Box(0,
            1)``) or a dict from parameter names to sets. First-order methods only.
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
        stopping: a :class:`descend.StoppingCriteria`. On the full batch every test
            reads the iterate itself (f with the L2 term, its gradient, or for L1 the
            proximal gradient mapping); on mini-batches ``ftol`` (with ``patience``) and
            ``target`` read each epoch's mean training loss and ``divergence_factor`` each
            batch's loss, and gtol/xtol do not apply. ``max_time`` is the wall clock,
            ``max_iter`` caps the steps. Default: none of them but divergence.
        distributed: data-parallel training over the default ``torch.distributed``
            process group (DistributedDataParallel; see ``docs/distributed.md``): each
            rank takes its share of every global batch of ``batch_size`` rows, the
            gradients are averaged by all-reduce, and the run ends at the parameters one
            process reaches with the same arguments. A streamed file is not read whole by
            every rank: each reads its own pieces, and the global batch is the ranks'
            local batches side by side (``docs/distributed.md``). None (default): on when a
            process group is initialized or torchrun's environment is present; False: off.
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
    params: list[Tensor] = [p for p in model.parameters() if p.requires_grad]
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
    device = check_device(device) if device is not None else params[0].device
    model.to(device)
    parallel = DataParallel(device) if wanted(distributed) else None
    if parallel is not None:  # a seed drawn on each rank would split different batches
        seed = parallel.agreed(seed)
    if init is not None:
        from descend.init import initialize

        initialize(model, init, seed=_derive(seed, 1))

    loss_spec = get_loss(loss)
    dtype = next((p.dtype for p in params if p.is_floating_point()), torch.get_default_dtype())
    converter = Converter(dtype, loss_spec.target)
    source = as_source(data, converter)
    val_source: DataSource | None = None
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
    whole = source  # what monitors sample batches of their own from
    if parallel is not None:  # a stream: each rank reads its own pieces of the files
        source = source.for_ranks(parallel)
        val_source = val_source.for_ranks(parallel) if val_source is not None else None
    metric_spec = get_metric(metric, loss_spec) if metric is not None else None

    method, opt = _optimizer(optimizer, params, lr, options)
    if capabilities(opt).needs_fixed_batch and size is not None:
        raise ValueError(
            f"optimizer {method!r} needs the same function at every step (its line search or "
            f"curvature pairs compare evaluations), so it trains on the full batch only: "
            f"pass batch_size='full', or a first-order method (adam, momentum, gd) for "
            f"batch_size={size}"
        )
    if parallel is not None and capabilities(opt).second_order:
        raise ValueError(
            f"optimizer {method!r} uses curvature, which DistributedDataParallel cannot "
            "differentiate twice; for full-batch second order on sharded data use "
            "descend.distributed.objective (or an estimator's distributed=True), or a "
            "first-order method (adam, momentum, gd) with distributed=True"
        )
    constrained = ParameterBounds(model, bounds)
    if constrained and capabilities(opt).needs_fixed_batch:
        raise ValueError(
            f"bounds= projects the parameters after each step, which would break "
            f"{method!r}'s line search or curvature pairs; use a first-order method (adam, "
            "momentum, gd) with bounds, or minimize(..., 'lbfgs', bounds=...) on a function"
        )
    if constrained:
        constrained.project_()  # training starts from feasible weights
    penalty = Penalty(model, l2)
    if check_non_negative("l1", l1) > 0 and penalty.weights:
        opt = ProximalL1(opt, l1=l1, params=penalty.weights)
    stopping = (
        stopping
        if stopping is not None
        else StoppingCriteria(max_iter=UNBOUNDED, gtol=0.0, ftol=0.0)
    )
    per_epoch = source.steps_per_epoch(size)
    total = _total_steps(per_epoch, epochs, max_steps, stopping.max_iter)
    monitor = "val_loss" if val_source is not None else "loss"
    sched = build_schedule(schedule, opt, total_steps=total, epochs=epochs or 1, monitor=monitor)
    leader = parallel is None or parallel.rank == 0
    if parallel is not None and monitors == "default":
        monitors = None  # they evaluate the model on their own batches: rank by rank
    every_callback = monitors_for_run(monitors, model=model) + _callbacks(
        callbacks, early_stopping, checkpoint, progress
    )
    # only rank 0 shows progress and writes checkpoints
    mine = [cb for cb in every_callback if leader or not isinstance(cb, RANK_ZERO_ONLY)]

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
        penalty=penalty,
        clipper=GradientClipper(clip_grad_norm, clip_grad_value),
        callbacks=mine,
        stopping=stopping,
        batch_size=size,
        epochs=epochs,
        max_steps=max_steps,
        total_steps=total,
        steps_per_epoch=per_epoch,
        shuffle=bool(shuffle),
        seed=seed,
        device=device,
        parallel=parallel,
        bounds=constrained,
    )
    trainer.skipped_callbacks = [type(cb).__name__ for cb in every_callback if cb not in mine]
    trainer.callbacks.bind(
        objective=trainer.objective,
        optimizer=opt,
        model=model,
        loss_fn=loss_spec,
        # a pass over the data in an order of its own, for monitors that sample batches
        batches=lambda: whole.batches(
            size, shuffle=True, generator=torch.Generator().manual_seed(_derive(seed, 4))
        ),
        batch_size=size,
    )
    return trainer.run(state)


class Trainer:
    """One training run as the engine's batch feed: its state, the evaluation of a batch,
    the epoch's end and the checkpoint round trip. The loop itself is the engine's.

    Full batch (``batch_size=None``) is an exact feed: f and the gradient at every iterate,
    so the point tests (gtol, ftol, xtol, target) and the best-iterate rule apply per step.
    Mini-batches are a stochastic feed: divergence on each batch's loss, ftol and target on
    each epoch's mean loss, and the best state is a candidate per epoch (the validated
    weights at its end, or without validation the weights at its start, which its mean
    training loss describes), restored after a failed stop.
    """

    rows = 1

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
        parallel: DataParallel | None = None,
        bounds: ParameterBounds | None = None,
    ) -> None:
        self.model, self.params, self.loss = model, params, loss
        #: sets the parameters are projected onto after every step (projected descent)
        self.bounds = bounds if bounds else None
        # a data-parallel run trains through DDP, on this rank's rows of each batch
        self.parallel = parallel
        self.network = model if parallel is None else parallel.wrap(model)
        #: callbacks the other ranks' runs have and this one does not (rank 0's own)
        self.skipped_callbacks: list[str] = []
        self.source, self.validation, self.metric = source, validation, metric
        self.optimizer, self.method, self.schedule = optimizer, method, schedule
        self.penalty, self.clipper = penalty, clipper
        self.callbacks = (
            CallbackList(callbacks) if parallel is None else AgreedCallbacks(callbacks, parallel)
        )
        self.stopping, self.batch_size = stopping, batch_size
        self.epochs, self.max_steps, self.total_steps = epochs, max_steps, total_steps
        self.shuffle, self.seed, self.device = shuffle, seed, device
        self.steps_per_epoch = steps_per_epoch
        self.exact = batch_size is None
        self.generator = torch.Generator().manual_seed(seed)
        self.objective = Objective(params, self._evaluate)
        # the wall clock differs between ranks: max_time is this feed's test, agreed on
        engine_stopping = stopping if parallel is None else replace(stopping, max_time=None)
        self.engine = Engine(self, optimizer, engine_stopping, self.callbacks)
        self.iterates = Iterates(params) if self.exact else None
        self.history, self.epoch_history = step_history(), epoch_history()
        # position in the data and running sums; all of it goes into a checkpoint
        self.epoch = self.batch_index = 0
        self.epoch_start_rng = self.generator.get_state()
        self.epoch_loss_sum, self.epoch_rows = 0.0, 0
        self.fun = self.grad_norm = math.nan
        self.logs: dict[str, float] = {}
        # the epoch's first weights, and the best candidate (stochastic feeds)
        self.epoch_start = _copy_state(model)
        self.best_value, self.best_epoch = math.inf, 0
        self.best_weights = self.epoch_start
        # the epoch's batches, the batch being evaluated and what its evaluation measured
        self._batches: Iterator[Any] | None = None
        self._next: Any = None
        self._batch: Any = None
        self._measured: tuple[float, float, int] = (math.nan, math.nan, 0)
        self._lr = math.nan
        self._eval: tuple[Tensor, Tensor, int, Tensor] | None = None

    @property
    def nit(self) -> int:
        return self.engine.nit

    # -- evaluation of one batch ------------------------------------------------------

    def _penalized(self) -> Tensor:
        X, y = self._batch
        value = self.loss(self.network(X), y)
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
                if self.parallel is None:
                    data = self.loss(self.model(X), y)
                    data_loss = data.detach()
                else:  # this rank's weighted share; the batch's loss summed over ranks
                    data, rows_sum = self.parallel.weighted_loss(self.loss, self.network(X), y)
                    rows = self.parallel.rows.total
                    data_loss = self.parallel.sum(rows_sum) / rows
                term = self.penalty.l2_term()
                total_t = data if term is None else data + term
                total_t.backward()
                total = data_loss if term is None else data_loss + term.detach()
        self._eval = (data_loss, self.clipper(self.params), rows, total)
        return total

    def _accumulate(self, batch: FullPass) -> tuple[Tensor, int]:
        """The mean loss over all rows, its gradient summed chunk by chunk into p.grad."""
        loss_sum: Tensor | None = None
        rows = 0
        for chunk in batch:
            X, y, n = self._held(chunk)
            if self.parallel is None:
                part = self.loss(self.model(X), y) * n
                done = part.detach()
            else:  # DDP averages the ranks' shares of the chunk's sum
                weighted, done = self.parallel.weighted_loss(self.loss, self.network(X), y)
                part = weighted * n
            part.backward()
            loss_sum = done if loss_sum is None else loss_sum + done
            rows += n
        if loss_sum is None:
            raise ValueError("data has no rows; a full pass read nothing")
        if self.parallel is not None:
            loss_sum = self.parallel.sum(loss_sum)
        grads = [p.grad for p in self.params if p.grad is not None]
        if grads:
            torch._foreach_mul_(grads, 1.0 / rows)
        return loss_sum / rows, rows

    def _held(self, batch: Any) -> tuple[Tensor, Tensor, int]:
        """This rank's rows of a batch or chunk, on the device, and the rows of the whole
        (global) one: a sharded stream's Share is this rank's already; any other batch
        is split among the ranks by rows in a data-parallel run."""
        if isinstance(batch, Share):
            assert self.parallel is not None
            X, y = self._to_device(*batch.held(self.parallel.rows))
            return X, y, batch.total
        X, y = self._to_device(*batch)
        n = X.shape[0]
        if self.parallel is not None:
            X, y = self.parallel.shard(X, y)
        return X, y, n

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
        rows: float = 0  # a float once summed over the ranks
        for chunk in self.validation.chunks():
            X, y, _ = self._held(chunk)  # each rank its share of each chunk
            n = X.shape[0]
            if n == 0:
                continue
            try:
                out = self.model(X)
            except RuntimeError as exc:
                if not any(word in str(exc) for word in ("shape", "size", "dimension")):
                    raise
                raise ValueError(
                    f"validation: the model cannot take its rows: X of shape {tuple(X.shape)} "
                    f"gave {str(exc).splitlines()[0]}; give validation rows with the training "
                    "data's features"
                ) from exc
            loss_sum += float(self.loss(out, y)) * n
            if self.metric is not None:
                metric_sum += float(self.metric[1](out, y)) * n
            rows += n
        self.model.train(was_training)
        if self.parallel is not None:
            loss_sum, metric_sum, rows = self.parallel.sums(loss_sum, metric_sum, rows)
        if rows == 0:
            raise ValueError("validation has no rows")
        return loss_sum / rows, (metric_sum / rows if self.metric is not None else math.nan)

    # -- the feed -------------------------------------------------------------------------

    def _draw(self) -> Any:
        """The next batch of the epoch, starting (or, after a resume, replaying) one."""
        if self._batches is None:
            if self.batch_index == 0:
                self.epoch_start_rng = self.generator.get_state()
                self.epoch_start = _copy_state(self.model)
            else:  # resuming mid-epoch: replay this epoch's draws, skip what was done
                self.generator.set_state(self.epoch_start_rng)
            self._batches = self.source.batches(
                self.batch_size, shuffle=self.shuffle, generator=self.generator,
                skip=self.batch_index,
            )  # fmt: skip
            self._next = next(self._batches, None)
            if self._next is None:
                raise ValueError("data yielded no batches; it needs at least one row")
        batch = self._next
        return batch

    def measure(self, loop: Engine) -> Measure:
        batch = self._draw()
        if isinstance(batch, FullPass):
            self._batch = batch
            self.objective.loss_fn = None
            self.objective.forget()
        else:
            previous = self._batch
            self._batch = self._held(batch)[:2]
            self.objective.loss_fn = self._penalized
            if not (
                isinstance(previous, tuple)
                and previous[0] is self._batch[0]
                and previous[1] is self._batch[1]
            ):
                self.objective.forget()
        self._lr = loop.lr()
        if loop.nit == 0 and self.epoch == 0:
            self._first_evaluation()
        self.objective.closure()
        assert self._eval is not None
        data_loss, norm_t, rows, total_t = self._eval
        loss, norm, total = host(data_loss, norm_t, total_t)
        self._measured = (loss, norm, rows)
        if not self.exact:
            return Measure([loss], [norm], [norm], [math.nan], [1.0])
        # the tests and the best iterate read the objective itself, penalty included
        assert self.iterates is not None
        g_test = norm
        if loop.nit > 0 and self.stopping.xtol > 0:
            step, scale = host(
                *step_tests(self.stopping, self.iterates.step(), self.iterates.data())
            )
        else:
            step, scale = math.nan, 1.0
        if capabilities(self.optimizer).proximal:
            g_test = self._mapping if loop.nit > 0 else math.inf
        return Measure([total], [norm], [g_test], [step], [scale])

    def _first_evaluation(self) -> None:
        """The first batch through the model: a model that cannot take the data's rows
        (another feature count, 1-D X) is the caller's mistake, said in their terms."""
        try:
            self.objective.closure()
        except RuntimeError as exc:
            if not any(word in str(exc) for word in ("shape", "size", "dimension")):
                raise
            batch = self._batch
            X = next(iter(batch))[0] if isinstance(batch, FullPass) else batch[0]
            raise ValueError(
                f"the model cannot take the data's rows: a batch X of shape {tuple(X.shape)} "
                f"gave {type(exc).__name__}: {str(exc).splitlines()[0]}; check that X has one "
                "row per sample and as many features as the model's input"
            ) from exc

    def exhausted(self, loop: Engine) -> Outcome | None:
        limit = self.stopping.max_time
        if (
            self.parallel is not None
            and limit is not None
            and self.parallel.any(loop.elapsed() >= limit)
        ):
            return Status.MAX_TIME, describe(
                Status.MAX_TIME, max_time=limit, nit=loop.nit, g=loop.trackers[0].last_g,
                gradient=loop.gradient_name,
            )  # fmt: skip
        if self.epochs is not None and self.epoch >= self.epochs:
            return Status.MAX_ITER, describe(Status.MAX_ITER, epochs=self.epochs, nit=loop.nit)
        if self.max_steps is not None and loop.nit >= self.max_steps:
            return Status.MAX_ITER, describe(
                Status.MAX_ITER, max_steps=self.max_steps, epoch=self.epoch + 1
            )
        return None

    def step(self, optimizer: torch.optim.Optimizer, active: list[int]) -> None:
        previous = None
        if self.iterates is not None:
            self.iterates.before_step()
            if capabilities(optimizer).proximal:
                previous = [
                    [p.detach().clone() for p in g["params"]] for g in optimizer.param_groups
                ]
        # torch's stub types a closure's loss as a float; it is a tensor
        optimizer.step(self.objective)  # type: ignore[arg-type]
        if self.bounds is not None:
            self.bounds.project_()
        if previous is not None:
            self._mapping = host(proximal_gradient_mapping(optimizer, previous))[0]

    def after_step(self, loop: Engine) -> None:
        """The step's record, and a look at whether the epoch's data ran out."""
        loss, norm, rows = self._measured
        self.batch_index += 1
        self.epoch_loss_sum += loss * rows
        self.epoch_rows += rows
        self.fun = loss if self.epoch == 0 else self.fun
        self.grad_norm = norm
        elapsed = loop.elapsed()
        self.history.append((loop.nit, self.epoch, loss, norm, self._lr, elapsed))
        self.logs = {
            "step": loop.nit, "epoch": self.epoch, "loss": loss, "grad_norm": norm,
            "lr": self._lr, "time": elapsed,
        }  # fmt: skip
        if self.schedule is not None:
            self.schedule.step(self.logs, "step")
        assert self._batches is not None
        self._next = next(self._batches, None)

    def epoch_end(self, loop: Engine) -> Outcome | None:
        if self._next is not None:
            return None
        self._batches = None
        self.epoch += 1
        self.batch_index = 0
        train_loss = self.epoch_loss_sum / max(self.epoch_rows, 1)
        self.epoch_loss_sum, self.epoch_rows = 0.0, 0
        val_loss = val_metric = math.nan
        if self.validation is not None:
            val_loss, val_metric = self._validate()
        lr = loop.lr()
        self.fun = train_loss
        elapsed = loop.elapsed()
        self.epoch_history.append(
            (self.epoch, loop.nit, train_loss, val_loss, val_metric, lr, elapsed)
        )
        self.logs = {"epoch": self.epoch, "step": loop.nit, "loss": train_loss}
        if self.validation is not None:
            self.logs["val_loss"] = val_loss
            if self.metric is not None:
                self.logs[f"val_{self.metric[0]}"] = val_metric
        self.logs.update(lr=lr, time=elapsed)
        # the candidate best state: validated weights now, or the epoch's starting weights
        # that its mean training loss describes
        watched = val_loss if self.validation is not None else train_loss
        if not self.exact and math.isfinite(watched) and watched < self.best_value:
            self.best_value, self.best_epoch = watched, self.epoch
            self.best_weights = (
                _copy_state(self.model) if self.validation is not None else self.epoch_start
            )
        outcome = None
        if not self.exact:  # an exact feed met these at the point itself
            tracker = loop.trackers[0]
            outcome = tracker.target(train_loss, "epoch loss") or tracker.change(
                train_loss, unit="epoch"
            )
        if self.schedule is not None:
            self.schedule.step(self.logs, "epoch")
        if self.callbacks.on_epoch_end(self.result(Status.RUNNING, "running")):
            return loop.callback_outcome(epoch=self.epoch)
        return outcome

    def keep_best(self, rows: list[int]) -> None:
        assert self.iterates is not None
        self.iterates.new_best()

    def restore_best(self, rows: list[int]) -> str | None:
        if self.iterates is not None:
            self.iterates.restore_best()
            self.objective.forget()
            return None
        self.model.load_state_dict(self.best_weights)
        if self.best_epoch == 0:
            return "the starting weights"
        if self.validation is not None:
            return f"the weights from the end of epoch {self.best_epoch}"
        return f"the weights from the start of epoch {self.best_epoch}"

    def intermediate(self, loop: Engine, status: Status, message: str) -> FitResult:
        return self.result(status, message)

    # -- the run ------------------------------------------------------------------------

    def run(self, state: dict[str, Any] | None) -> FitResult:
        was_training = self.model.training
        self.model.train()
        parallel = self.parallel
        dropout = nullcontext() if parallel is None else sharded_dropout(self.model, parallel.rows)
        with _forked_rng(self.device, _derive(self.seed, 3)), dropout:
            if state is not None:
                self.load_state_dict(state)

            def resumed() -> Outcome | None:
                # the callbacks' saved state; then the epoch end the checkpoint came before
                assert state is not None
                # rank 0's own callbacks (progress, checkpoints) are not on the other ranks
                saved = [s for s in state["callbacks"] if s[0] not in self.skipped_callbacks]
                self.callbacks.load_state_dict(saved)
                return self.epoch_end(self.engine) if state["position"]["data_ran_out"] else None

            self.engine.run(after_begin=None if state is None else resumed)
        status, message = self.engine.outcome(0)
        tracker = self.engine.trackers[0]
        if self.exact:
            restored = self.engine.restored[0]
            self.fun = tracker.best_f if restored else tracker.last_f
            self.grad_norm = tracker.best_g if restored else tracker.last_g
        elif self.engine.restored[0]:
            # restored: a value was measured
            self.fun = self.best_value if self.best_epoch else cast(float, tracker.f0)
        self.model.train(was_training)
        result = self.result(status, message)
        self.engine.end(result)
        return result

    def elapsed(self) -> float:
        return self.engine.elapsed()

    def result(self, status: Status, message: str) -> FitResult:
        return FitResult(
            model=self.model,
            status=status,
            message=message,
            history=self.history,
            epoch_history=self.epoch_history,
            fun=self.fun,
            grad_norm=self.grad_norm,
            nit=self.engine.nit,
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
            epoch_start=self.epoch_start,
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
            "position": {
                "epoch": self.epoch,
                "batch_index": self.batch_index,
                # saved between the epoch's last step and its end (a step checkpoint)
                "data_ran_out": self._batches is not None and self._next is None,
            },
            "engine": self.engine.state_dict(),
            "sums": {
                "epoch_loss_sum": self.epoch_loss_sum,
                "epoch_rows": self.epoch_rows,
                "fun": self.fun,
                "grad_norm": self.grad_norm,
                "logs": dict(self.logs),
            },
            "best": {
                "value": self.best_value,
                "epoch": self.best_epoch,
                "weights": self.best_weights,
                "epoch_start": self.epoch_start,
            },
            "counts": {
                "nfev": self.objective.nfev,
                "njev": self.objective.njev,
                "nhev": self.objective.nhev,
            },
            "history": self.history.state_dict(),
            "epoch_history": self.epoch_history.state_dict(),
            "callbacks": self.callbacks.state_dict(),
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
        self.epoch, self.batch_index = pos["epoch"], pos["batch_index"]
        self.engine.load_state_dict(state["engine"])
        sums = state["sums"]
        self.epoch_loss_sum, self.epoch_rows = sums["epoch_loss_sum"], sums["epoch_rows"]
        self.fun, self.grad_norm = sums["fun"], sums["grad_norm"]
        self.logs = dict(sums["logs"])
        best = state["best"]
        self.best_value, self.best_epoch = best["value"], best["epoch"]
        here = self.device
        self.best_weights = {k: v.to(here) for k, v in best["weights"].items()}
        self.epoch_start = {k: v.to(here) for k, v in best["epoch_start"].items()}
        counts = state["counts"]
        self.objective.nfev, self.objective.njev = counts["nfev"], counts["njev"]
        self.objective.nhev = counts["nhev"]
        self.history.load_state_dict(state["history"])
        self.epoch_history.load_state_dict(state["epoch_history"])


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
    try:
        spec = get_method(optimizer)
    except (ValueError, TypeError) as error:  # fit's argument is optimizer=, not method=
        raise type(error)(f"optimizer={optimizer!r}: {error}") from None
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
