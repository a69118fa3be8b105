"""The learning-rate range test: sweep the rate exponentially, read a good one off the loss."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from descend.callbacks import Callback
from descend.engine import run_descent
from descend.engine.stopping import StoppingCriteria
from descend.extras import require
from descend.methods import get_method
from descend.minimize import minimize
from descend.notebook import section, table
from descend.objective import Objective
from descend.train.data import Batch, Converter, DataSource, FullPass, Loader, as_source
from descend.train.fit import _batch_size
from descend.train.losses import get_loss
from descend.validation import check_int, check_number

#: rows per step of a model's sweep when no batch_size is given: fit's default
DEFAULT_BATCH_SIZE = 32


@dataclass(frozen=True)
class LRRangeResult:
    """The outcome of :func:`lr_range_test`, as data and as a figure.

    Attributes:
        lrs: the learning rate of each step taken, increasing exponentially.
        losses: the loss after each step (f for a function, the next batch's loss for a
            model).
        smoothed: the bias-corrected exponential moving average of ``losses``.
        suggested_lr: the rate to use: where the smoothed loss falls fastest per decade of
            rate among the rates from a decade to half a decade below ``min_loss_lr``
            (None when the loss never fell).
        steepest_lr: where the smoothed loss falls fastest over the whole sweep (often an
            early transient, such as crossing a valley, that says little about a whole
            run; reported for the plot and for comparison).
        min_loss_lr: the rate at the lowest smoothed loss, near the edge of stability.
        divergence_lr: the first rate where the smoothed loss exceeded ``divergence``
            times its minimum so far (None when the sweep ended first).
        method: the method swept; ``smoothing``, ``divergence``: the settings used.
        seed: the seed of a model's batches (drawn when none was given, to reproduce the
            sweep); None for a function.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggested_lr: float | None
    steepest_lr: float | None
    min_loss_lr: float
    divergence_lr: float | None
    method: str
    smoothing: float
    divergence: float
    seed: int | None = None

    @property
    def suggestion_index(self) -> int | None:
        if self.suggested_lr is None:
            return None
        return int(np.argmin(np.abs(self.lrs - self.suggested_lr)))

    def plot(self, ax: Any = None) -> Any:
        """The loss against the learning rate (log scale), with the suggestion and the
        divergence point marked. Returns the matplotlib Figure (Agg canvas when no
        ``ax`` is given, so no display is needed)."""
        if ax is None:
            feature = "LRRangeResult.plot"
            agg = require("matplotlib.backends.backend_agg", "viz", feature=feature)
            fig = require("matplotlib.figure", "viz", feature=feature).Figure(figsize=(6.4, 4.2))
            agg.FigureCanvasAgg(fig)
            ax = fig.add_subplot(1, 1, 1)
        else:
            fig = ax.figure
        ax.plot(self.lrs, self.losses, color="0.75", linewidth=1, label="loss")
        ax.plot(self.lrs, self.smoothed, color="C0", linewidth=2, label="smoothed loss")
        ax.set_xscale("log")
        finite = self.smoothed[np.isfinite(self.smoothed)]
        if finite.size:
            low = float(finite.min())
            high = float(finite[0]) if finite[0] > low else float(finite.max())
            pad = 0.1 * max(high - low, abs(low) * 1e-3, 1e-12)
            top = high + pad if self.divergence_lr is None else high + 5 * pad
            ax.set_ylim(low - pad, top)
        if self.suggested_lr is not None:
            i = self.suggestion_index
            ax.plot([self.suggested_lr], [self.smoothed[i]], "o", color="C3")
            ax.axvline(
                self.suggested_lr,
                color="C3",
                linestyle="--",
                linewidth=1,
                label=f"suggested lr {self.suggested_lr:.2g}",
            )
        if self.divergence_lr is not None:
            ax.axvline(
                self.divergence_lr,
                color="C1",
                linestyle=":",
                linewidth=1,
                label=f"diverges at {self.divergence_lr:.2g}",
            )
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        ax.set_title(f"learning-rate range test ({self.method})")
        ax.legend(loc="best", fontsize="small")
        return fig

    def _repr_html_(self) -> str:
        """A notebook's view: the sweep and the rates read off it (``plot()`` draws it)."""
        rows = [
            ("suggested lr", self.suggested_lr if self.suggested_lr is not None else "none"),
            ("steepest lr", self.steepest_lr if self.steepest_lr is not None else "none"),
            ("lowest loss at", self.min_loss_lr),
            (
                "diverges at",
                self.divergence_lr if self.divergence_lr is not None else "not reached",
            ),
            ("steps", len(self.lrs)),
            ("rates swept", f"{self.lrs[0]:.3g} to {self.lrs[-1]:.3g}"),
        ]
        return section(f"learning-rate range test ({self.method})", table(rows))

    def __str__(self) -> str:
        def rate(value: float | None, missing: str) -> str:
            return f"{value:.3g}" if value is not None else missing

        lines = [
            f"learning-rate range test ({self.method}): {len(self.lrs)} steps from "
            f"{self.lrs[0]:.3g} to {self.lrs[-1]:.3g}, smoothing {self.smoothing:g}",
            "  suggested lr:    "
            + rate(self.suggested_lr, "none (the smoothed loss never fell)")
            + " (steepest descent from a decade to half a decade below the minimum)",
            "  steepest lr:     " + rate(self.steepest_lr, "none"),
            f"  lowest loss at:  {self.min_loss_lr:.3g}",
            "  diverges at:     "
            + rate(self.divergence_lr, "not reached")
            + f" (smoothed loss > {self.divergence:g}x its minimum)",
        ]
        return "\n".join(lines)


def lr_range_test(
    fun_or_model: Callable[..., Any] | nn.Module,
    x0_or_loss: Any,
    data: Any = None,
    method: str = "gd",
    *,
    batch_size: int | str | None = None,
    seed: int | None = None,
    start: float = 1e-7,
    end: float = 10.0,
    steps: int = 100,
    smoothing: float = 0.9,
    divergence: float = 4.0,
    skip: int = 3,
    **options: Any,
) -> LRRangeResult:
    r"""Sweep the learning rate exponentially for one short run; suggest the rate to use.

    Step k (of ``steps``) uses :math:`\eta_k = \eta_\text{start}
    (\eta_\text{end}/\eta_\text{start})^{k/(\text{steps}-1)}` and records the loss
    :math:`\ell_k` after it. The curve is smoothed by a bias-corrected exponential
    moving average, :math:`a_k = \beta a_{k-1} + (1-\beta)\ell_k`,
    :math:`s_k = a_k/(1-\beta^{k+1})`. The sweep stops at the divergence point, the first
    k with :math:`s_k >` ``divergence`` :math:`\cdot \min_{j\le k} s_j` (or a non-finite
    loss). The suggested rate is the steepest descent of the smoothed curve,
    :math:`\arg\min ds/d\log\eta`, searched from one decade to half a decade below the
    rate :math:`\eta_\min` of the lowest smoothed loss (after L. Smith, "Cyclical
    Learning Rates for Training Neural Networks", 2017). Why the window: the steepest
    point of the whole curve is often an early transient (on Rosenbrock's function, the
    first fall into the valley, at rates 10x too small for the rest of the run), and
    :math:`\eta_\min` itself sits at the edge of stability. ``steepest_lr`` and
    ``min_loss_lr`` are reported too.

    Two ways to call it:

    * a function: ``lr_range_test(fun, x0, "gd", **options)``: ``fun`` and ``x0``
      as :func:`descend.minimize` takes them; each step is one iteration of the method.
    * a model: ``lr_range_test(model, loss, data, "sgd", batch_size=32, seed=0)``, called
      as :func:`descend.fit` is: ``loss`` a name (``"cross_entropy"``, ``"mse"``, ...) or
      ``loss(model(X), y) -> scalar``; ``data`` what ``fit`` takes (an ``(X, y)`` pair of
      tensors, NumPy arrays or pandas objects, a ``Dataset``, a ``DataLoader``,
      ``descend.train.stream(...)``), read by fit's own data sources: the rows cast to the
      model's dtype and the loss's target type, drawn in batches of ``batch_size`` in the
      order ``fit(..., seed=seed)`` draws them (a ``DataLoader`` keeps its own batches).
      ``data`` may also be a list of ``(X, y)`` batches or a function returning an
      iterator of them. Each step takes the next batch, epoch after epoch. The model's
      weights and train/eval mode are put back afterwards.

    Args:
        fun_or_model: the function to minimize, or a ``torch.nn.Module``.
        x0_or_loss: the start x0 (function), or the loss (model), as ``fit``'s ``loss``.
        data: the rows (model only), as ``fit``'s ``data``.
        method: a name of ``descend.METHODS`` with a learning rate (``gd``, ``momentum``,
            ``adam``, ...); ``"sgd"`` is taken as ``"gd"``.
        start, end: the first and last rate, 0 < start < end.
        steps: steps of the sweep, an integer >= 5.
        smoothing: :math:`\beta` of the moving average, in [0, 1) (0: no smoothing;
            use more, e.g. 0.98, for noisy mini-batch losses and long sweeps).
        divergence: the factor over the minimum that marks divergence, > 1.
        skip: first points left out of the suggestion (the average is still settling),
            an integer >= 0.
        batch_size: rows per step (model only): an integer >= 1 or ``"full"`` (every row
            at each step; an ``(X, y)`` pair only); default 32, as ``fit``'s.
        seed: seeds the order of the rows (model only), as ``fit``'s ``seed``: the same
            seed gives the same batches as ``fit`` and the same curve. Default: drawn at
            random and reported as ``result.seed``.
        **options: other options of the method (``momentum``, ``betas``, ...).

    Returns:
        :class:`LRRangeResult` (arrays, suggestion, divergence rate, ``plot()``).

    Example:
        >>> sweep = lr_range_test(rosenbrock, [-1.2, 1.0], method="gd", end=1.0, steps=50)
        >>> descend.minimize(rosenbrock, [-1.2, 1.0], "gd", lr=sweep.suggested_lr, max_iter=500)
        >>> sweep = lr_range_test(net, "mse", (X, y), "adam", batch_size=16, seed=0)
    """
    start = check_number("start", start, low=0.0, low_open=True)
    end = check_number("end", end, low=start, low_open=True)
    steps = check_int("steps", steps, low=5)
    smoothing = check_number("smoothing", smoothing, low=0.0, high=1.0, high_open=True)
    divergence = check_number("divergence", divergence, low=1.0, low_open=True)
    skip = check_int("skip", skip, low=0)
    if isinstance(data, str) and not isinstance(fun_or_model, nn.Module):
        data, method = None, data  # lr_range_test(fun, x0, "adam"): the method, positionally
    if "lr" in options:
        raise ValueError("lr is what the test sweeps; give start= and end= instead")
    name = "gd" if method == "sgd" else method
    spec = get_method(name)
    if "lr" not in spec.options():
        raise ValueError(
            f"method {method!r} has no learning rate to sweep; use one of: "
            + ", ".join(m for m in _lr_methods())
        )
    lrs = start * (end / start) ** (np.arange(steps) / (steps - 1))
    sweep = _Sweep(lrs, smoothing, divergence)
    if isinstance(fun_or_model, nn.Module):
        if data is None:
            raise ValueError("a model needs data: an (X, y) pair, a Dataset or a DataLoader")
        if seed is None:
            seed = secrets.randbits(63)
        seed = check_int("seed", seed, low=0)
        size = _batch_size(DEFAULT_BATCH_SIZE if batch_size is None else batch_size)
        _sweep_model(fun_or_model, x0_or_loss, data, size, seed, spec, sweep, options)
    else:
        model_only = {"data": data, "batch_size": batch_size, "seed": seed}
        given = [name for name, value in model_only.items() if value is not None]
        if given:
            raise ValueError(
                f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for models; for "
                "a function, give lr_range_test(fun, x0, method)"
            )
        minimize(
            fun_or_model,
            x0_or_loss,
            name,
            max_iter=steps,
            gtol=0.0,
            ftol=0.0,
            xtol=0.0,
            divergence_factor=1e300,
            callback=sweep,
            monitors=None,
            lr=float(lrs[0]),
            **options,
        )
    return sweep.result(spec.name, skip, seed)


def _lr_methods() -> list[str]:
    from descend.methods import METHODS

    return [n for n, m in METHODS.items() if "lr" in m.options()]


class _Sweep(Callback):
    """Sets each step's rate, records each step's loss, stops at the divergence point."""

    def __init__(self, lrs: np.ndarray, smoothing: float, divergence: float) -> None:
        self.lrs = lrs
        self.smoothing = smoothing
        self.divergence = divergence
        self.optimizer: Any = None
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.average = 0.0
        self.lowest = math.inf
        self.diverged_at: int | None = None

    def bind(self, **run: Any) -> None:
        self.optimizer = run["optimizer"]

    def on_begin(self, result: Any) -> None:
        self.history = result.history
        self.column = list(getattr(result.history, "columns", ("iteration", "f"))).index("f")

    def on_iteration(self, nit: int) -> bool:
        loss = float(self.history.rows(nit, nit + 1)[0][self.column])
        return self.record(nit, loss)

    def on_step(self, result: Any) -> bool | None:
        return True  # reached only after record() asked to stop

    def record(self, nit: int, loss: float) -> bool:
        """Take the loss after step ``nit`` (1-based); set the next rate; True to stop."""
        k = len(self.losses)
        self.losses.append(loss)
        beta = self.smoothing
        self.average = beta * self.average + (1 - beta) * loss
        value = self.average / (1 - beta ** (k + 1))
        self.smoothed.append(value)
        if not math.isfinite(value) or (k > 0 and self._diverged(value)):
            self.diverged_at = k
            return True
        self.lowest = min(self.lowest, value)
        if k + 1 < len(self.lrs):
            for group in self.optimizer.param_groups:
                group["lr"] = float(self.lrs[k + 1])
        return False

    def _diverged(self, value: float) -> bool:
        """``value > divergence * lowest``, for losses that may also be negative."""
        lowest = self.lowest
        scale = lowest if lowest > 0 else max(abs(self.smoothed[0] - lowest), abs(lowest), 1e-300)
        return value - lowest > (self.divergence - 1.0) * scale

    def result(self, method: str, skip: int, seed: int | None) -> LRRangeResult:
        n = len(self.losses)
        lrs = self.lrs[:n]
        losses = np.asarray(self.losses, dtype=np.float64)
        smoothed = np.asarray(self.smoothed, dtype=np.float64)
        usable = n if self.diverged_at is None else self.diverged_at
        finite = np.where(np.isfinite(smoothed[:usable]), smoothed[:usable], np.inf)
        min_loss_lr = float(lrs[int(np.argmin(finite))]) if usable else float(lrs[0])
        suggested = steepest = None
        if usable - skip >= 3:
            slope = np.gradient(smoothed[:usable], np.log(lrs[:usable]))
            slope[:skip] = np.inf
            best = int(np.argmin(slope))
            if slope[best] < 0:
                steepest = float(lrs[best])
                # the steepest descent at least half a decade below the minimum: there the
                # loss still falls fast, and the rate is far enough from the edge of
                # stability (where the minimum is) to hold for a whole run
                window = np.flatnonzero(
                    (lrs[:usable] >= min_loss_lr / 10 * (1 - 1e-9))
                    & (lrs[:usable] <= min_loss_lr / math.sqrt(10) * (1 + 1e-9))
                    & (np.arange(usable) >= skip)
                )
                if window.size:
                    suggested = float(lrs[window[int(np.argmin(slope[window]))]])
                else:
                    suggested = min(steepest, min_loss_lr / 10)
        divergence_lr = None if self.diverged_at is None else float(lrs[self.diverged_at])
        return LRRangeResult(
            lrs=lrs,
            losses=losses,
            smoothed=smoothed,
            suggested_lr=suggested,
            steepest_lr=steepest,
            min_loss_lr=min_loss_lr,
            divergence_lr=divergence_lr,
            method=method,
            smoothing=self.smoothing,
            divergence=self.divergence,
            seed=seed,
        )


def _sweep_model(
    model: nn.Module,
    loss: Any,
    data: Any,
    batch_size: int | None,
    seed: int,
    spec: Any,
    sweep: _Sweep,
    options: dict[str, Any],
) -> None:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no parameters that require grad")
    loss_fn = get_loss(loss)
    dtype = next((p.dtype for p in params if p.is_floating_point()), torch.get_default_dtype())
    source = _source(data, Converter(dtype, loss_fn.target))
    device = params[0].device
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    was_training = model.training
    stream = _batches(source, batch_size, torch.Generator().manual_seed(seed))

    def evaluate() -> Tensor:
        X, y = next(stream)
        X, y = X.to(device), y.to(device)
        for p in params:
            p.grad = None
        with torch.enable_grad():
            value = loss_fn(model(X), y)
            value.backward()
        return value.detach()

    model.train()
    try:
        optimizer = spec.build(params, {**options, "lr": float(sweep.lrs[0])})
        sweep.bind(optimizer=optimizer)
        run_descent(
            Objective(params, evaluate),
            optimizer,
            StoppingCriteria(max_iter=len(sweep.lrs), gtol=0.0, ftol=0.0, divergence_factor=1e300),
            callbacks=[sweep],
            method=spec.name,
        )
    finally:
        model.load_state_dict(saved)
        model.train(was_training)


def _source(data: Any, converter: Converter) -> DataSource:
    """``fit``'s data source for ``data``, or a :class:`Loader` over a list of ``(X, y)``
    batches or over the passes of a function that returns an iterator of them."""
    if callable(data) and not isinstance(data, DataSource):
        return Loader(_Passes(data), converter)
    if _is_batch_list(data):
        return Loader(data, converter)
    if _iter_once(data):
        raise TypeError(
            "data must be re-iterable (an (X, y) pair, a Dataset, a DataLoader, a list of "
            "(X, y) batches) or a function returning an iterator, so the sweep can pass "
            "over it more than once"
        )
    return as_source(data, converter)


def _batches(source: DataSource, batch_size: int | None, generator: Any) -> Iterator[Batch]:
    """Epoch after epoch of ``source``'s batches, drawn as ``fit`` draws them with a
    generator seeded alike."""
    while True:
        empty = True
        for batch in source.batches(batch_size, shuffle=True, generator=generator):
            if isinstance(batch, FullPass):
                raise ValueError(
                    "batch_size='full' takes every row at each step, which the sweep does "
                    "for an (X, y) pair only; give the rows as (X, y), or a batch size"
                )
            empty = False
            yield batch
        if empty:
            raise ValueError("data yielded no batches; the sweep needs at least one (X, y)")


class _Passes:
    """A function returning an iterator of batches, as an iterable: a pass per call."""

    def __init__(self, make: Callable[[], Iterator[Any]]) -> None:
        self.make = make

    def __iter__(self) -> Iterator[Any]:
        return iter(self.make())


def _is_batch_list(data: Any) -> bool:
    """A list of ``(X, y)`` batches of tensors or arrays (an ``(X, y)`` pair holds
    features, not pairs, in its first place)."""
    return (
        isinstance(data, (list, tuple))
        and len(data) > 0
        and all(
            isinstance(batch, (tuple, list))
            and len(batch) == 2
            and all(isinstance(part, (Tensor, np.ndarray)) for part in batch)
            for batch in data
        )
    )


def _iter_once(data: Any) -> bool:
    """Whether ``data`` is an iterator, which a second pass would find empty."""
    try:
        return iter(data) is data
    except TypeError:
        return False
