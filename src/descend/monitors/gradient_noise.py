"""Gradient noise: how much of a mini-batch gradient is signal, and the batch size to use."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.linalg import vector_norm

from descend.monitors.diagnosis import Diagnosis, Severity
from descend.monitors.monitor import Monitor, flat, grads_of
from descend.validation import check_int, check_number


class GradientNoiseMonitor(Monitor):
    r"""Measures the gradient noise scale and reports batches far smaller than it.

    At a check it computes the gradients :math:`G_1, \dots, G_m` of ``n_batches`` fresh
    mini-batches of size B at the current parameters. Each is the true gradient G plus
    noise of covariance :math:`\Sigma/B` (:math:`\Sigma`: the per-example covariance), so

    .. math::
        S = \frac{1}{m-1}\sum_i \|G_i - \bar G\|^2 \approx \frac{\operatorname{tr}\Sigma}{B},
        \qquad |G|^2 \approx \|\bar G\|^2 - S/m,
        \qquad B_\text{simple} = \frac{\operatorname{tr}\Sigma}{|G|^2} = \frac{B\,S}{|G|^2}

    (unbiased estimates; McCandlish et al., "An Empirical Model of Large-Batch Training",
    2018). Below :math:`B_\text{simple}` a larger batch buys a nearly proportional cut in
    the steps needed; far above it, it buys nothing. With m of 6 the estimate of S has a
    relative spread of about :math:`\sqrt{2/(m-1)}`, so the monitor pools the last
    ``patience`` checks (means of S and of :math:`\|\bar G\|^2`, then the ratio) and
    reports when the pooled :math:`B_\text{simple} \ge` ``ratio`` :math:`\cdot B`. It
    suggests the power of two nearest :math:`B_\text{simple}` (at most the data size).
    As a run converges :math:`|G| \to 0` and :math:`B_\text{simple}` grows (the loss then
    sits at a noise floor): the same advice holds, or decay the learning rate.

    Where the gradients come from: with ``model``, ``loss_fn`` and ``batches`` (an
    iterable of ``(X, y)`` it can iterate again, such as a list or a DataLoader), from
    ``loss_fn(model(X), y)`` on the next batches (B = ``len(X)``; buffers such as
    BatchNorm statistics and the global RNG are restored afterwards). Otherwise, from
    repeated calls of the bound objective's ``loss_fn`` (a ``minimize`` objective that
    samples its own mini-batch); two identical gradients mark the objective deterministic
    and switch the monitor off. There B is ``batch_size`` if given, else the report is in
    multiples of the current batch.

    Extra work: a check first screens for free, comparing the gradients the run computed
    at the two steps before it. When the signal dominates, they point the same way
    (:math:`\cos \approx |G|^2/(|G|^2 + \operatorname{tr}\Sigma/B)`); a cosine of
    ``screen`` or more skips the sampling. Otherwise the check costs ``n_batches``
    gradients (3% of the steps' own at the defaults).

    Args:
        model, loss_fn, batches: the mini-batch source described above (``fit`` binds them;
            ``batches`` may also be a function returning a fresh iterator).
        every: check interval in steps after the first check, an integer >= 1.
        start: step of the first check, an integer >= 1.
        n_batches: mini-batch gradients per check, an integer >= 2.
        ratio: :math:`B_\text{simple}/B` at or above which the noise is reported, > 1.
        patience: checks pooled for the decision, an integer >= 1.
        batch_size: B when the objective samples its own batch, an integer >= 1 or None.
        screen: cosine of two successive steps' gradients at or above which a check
            skips the sampling, in [-1, 1] (1: always sample).

    Example:
        >>> g = torch.Generator().manual_seed(1)
        >>> noisy = y + 3 * torch.randn(64, 1, generator=g)  # mostly noise
        >>> monitor = GradientNoiseMonitor(start=20, every=20)  # fit binds model, loss, batches
        >>> res = fit(model, "mse", (X, noisy), batch_size=2, epochs=5, seed=0,
        ...           monitors=[monitor], progress=False)
        >>> monitor.diagnoses[0].kind, list(monitor.diagnoses[0].suggested)
        ('gradient_noise', ['batch_size'])

        Outside ``fit``: ``GradientNoiseMonitor(model, nn.functional.mse_loss, batches)``.
    """

    kinds = ("gradient_noise",)
    state = ("active", "estimates", "recent", "previous", "screens", "drawn")

    def __init__(
        self,
        model: nn.Module | None = None,
        loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
        batches: Iterable[Any] | None = None,
        *,
        every: int = 200,
        start: int = 50,
        n_batches: int = 6,
        ratio: float = 5.0,
        patience: int = 2,
        batch_size: int | None = None,
        screen: float = 0.5,
    ) -> None:
        super().__init__(every=every)
        if model is not None and not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if loss_fn is not None and not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        self.model = model
        self.loss_fn = loss_fn
        self.batches = _reiterable(batches)
        self.start = check_int("start", start, low=1)
        self.n_batches = check_int("n_batches", n_batches, low=2)
        self.ratio = check_number("ratio", ratio, low=1.0, low_open=True)
        self.patience = check_int("patience", patience, low=1)
        self.batch_size = None if batch_size is None else check_int("batch_size", batch_size, low=1)
        self.screen = check_number("screen", screen, low=-1.0, high=1.0)
        self.estimates: list[dict[str, float]] = []
        self.iterator: Iterator[Any] | None = None
        self.active = True

    def bind(self, **run: Any) -> None:
        super().bind(**run)
        if self.loss_fn is None and callable(run.get("loss_fn")):
            self.loss_fn = run["loss_fn"]
        if self.batches is None and run.get("batches") is not None:
            self.batches = _reiterable(run["batches"])
        if self.batch_size is None and isinstance(run.get("batch_size"), int):
            self.batch_size = run["batch_size"]

    def begin(self, result: Any) -> None:
        self.iterator = None
        self.drawn: int | None = None  # batches drawn from the iterator (None: no iterator)
        self.active = True
        self.estimates = []
        self.recent: list[dict[str, float]] = []  # the latest estimates, pooled
        self.previous: Tensor | None = None
        self.screens = 0

    def watch(self, nit: int) -> int | None:
        if not self.active:
            return 2**62  # switched off for this run
        check = nit >= self.start and (nit - self.start) % self.every == 0
        if check:
            self._check(nit)
        self.previous = None
        if nit + 1 >= self.start and (nit + 1 - self.start) % self.every == 0:
            self.previous = self._gradient()  # the step before a check: for the screen
            return nit + 1
        nxt = self.start + max((nit - self.start) // self.every + 1, 0) * self.every
        return nxt - 1 if nxt - 1 > nit else nxt

    def _gradient(self) -> Tensor | None:
        params = self.params()
        if not params or all(p.grad is None for p in params):
            return None
        return flat(grads_of(params)).clone()

    def _check(self, nit: int) -> None:
        # the screen: successive mini-batch gradients are nearly parallel when the signal
        # dominates (cos ~ |G|^2 / (|G|^2 + tr(Sigma)/B)); only then is sampling skipped
        current = self._gradient()
        if self.previous is not None and current is not None:
            self.screens += 1
            a, b = self.previous, current
            pair = torch.stack([torch.dot(a, b), vector_norm(a), vector_norm(b)])
            dot, na, nb = pair.double().tolist()
            if na > 0 and nb > 0 and dot / (na * nb) >= self.screen:
                return
        estimate = self.measure()
        if estimate is None:
            return
        estimate["step"] = nit
        self.estimates.append(estimate)
        self.recent = [*self.recent, estimate][-self.patience :]
        if len(self.recent) == self.patience:
            pooled = _pool(self.recent)
            if pooled["noise_to_signal"] >= self.ratio:
                self._report(pooled)

    # -- the estimate ----------------------------------------------------------------------

    def measure(self) -> dict[str, float] | None:
        """One estimate of the noise scale at the current parameters (None if unavailable)."""
        source = self._source()
        if source is None:
            return None
        draw, params, sizes = source
        if not params:
            return None
        # sums of deviations from the first gradient: exact zeros for identical gradients,
        # and no cancellation between |G_i|^2 and |mean|^2 when the noise is small
        g = draw()
        if g is None:
            return None
        first = g.clone()
        shift_sum = torch.zeros_like(g)
        shift_squares: list[Tensor] = []
        for i in range(1, self.n_batches):
            g = draw()
            if g is None:
                return None
            if i == 1 and self.batches is None and torch.equal(g, first):
                self.active = False  # a deterministic objective has no gradient noise
                return None
            d = g - first
            shift_sum.add_(d)
            shift_squares.append(torch.dot(d, d))
        m = self.n_batches
        mean = first + shift_sum / m
        numbers = torch.stack(
            [
                torch.stack(shift_squares).sum(),
                torch.dot(shift_sum, shift_sum),
                torch.dot(mean, mean),
            ]
        ).double()
        sum_sq, sum_norm_sq, mean_sq = numbers.cpu().tolist()
        spread = max((sum_sq - sum_norm_sq / m) / (m - 1), 0.0)  # S ~ tr(Sigma)/B
        signal = mean_sq - spread / m  # |G|^2, unbiased
        biased = signal <= 0
        if biased:
            signal = mean_sq  # noise swamps the signal: a lower bound on the noise scale
        multiple = spread / signal if signal > 0 else math.inf
        estimate: dict[str, float] = {
            "noise_to_signal": multiple,
            "trace_cov_over_batch": spread,
            "grad_norm_sq": signal,
            "mean_grad_norm_sq": mean_sq,
            "n_batches": m,
            "lower_bound": float(biased),
        }
        b = round(sum(sizes) / len(sizes)) if sizes else self.batch_size
        if b:
            estimate["batch_size"] = b
            estimate["noise_scale"] = b * multiple
        return estimate

    def _source(self) -> tuple[Callable[[], Tensor | None], list[Tensor], list[int]] | None:
        if self.model is not None and self.loss_fn is not None and self.batches is not None:
            model, batch_loss = self.model, self.loss_fn
            params = [p for p in model.parameters() if p.requires_grad]
            sizes: list[int] = []

            def from_batches() -> Tensor | None:
                batch = self._next_batch()
                if batch is None:
                    return None
                if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
                    return None  # not (X, y): a streamed full pass, say; nothing to sample
                device = params[0].device
                inputs, target = batch[0].to(device), batch[1].to(device)
                sizes.append(int(inputs.shape[0]))
                with _preserved(model, params), torch.enable_grad():
                    loss = batch_loss(model(inputs), target)
                    grads = torch.autograd.grad(loss, params, allow_unused=True)
                return _flat_grads(params, grads)

            return from_batches, params, sizes
        loss_fn = getattr(self.objective, "loss_fn", None)
        if loss_fn is None:
            return None
        params = list(self.objective.params)

        def from_objective() -> Tensor:
            with torch.enable_grad():
                grads = torch.autograd.grad(loss_fn(), params, allow_unused=True)
            return _flat_grads(params, grads)

        return from_objective, params, []

    def _next_batch(self) -> Any:
        for _ in range(2):
            iterator = self._open() if self.iterator is None else self.iterator
            try:
                with torch.random.fork_rng(devices=[]):
                    batch = next(iterator)
            except StopIteration:
                self.iterator, self.drawn = None, None
            else:
                self.drawn = (self.drawn or 0) + 1
                return batch
        return None

    def _open(self) -> Iterator[Any]:
        with torch.random.fork_rng(devices=[]):
            source = self.batches
            self.iterator = iter(source() if callable(source) else source)
        self.drawn = 0
        return self.iterator

    def resume(self) -> None:
        # the same place in the batches: a fresh pass (fit's draws the same order every
        # time) advanced by the batches drawn before the checkpoint
        drawn = self.drawn
        self.iterator = None
        if drawn is not None and self.batches is not None:
            iterator = self._open()
            with torch.random.fork_rng(devices=[]):
                for _ in range(drawn):
                    next(iterator)
            self.drawn = drawn

    def _data_size(self) -> int | None:
        dataset = getattr(self.batches, "dataset", None)
        if dataset is not None and hasattr(dataset, "__len__"):
            return len(dataset)
        if isinstance(self.batches, (list, tuple)):
            return sum(int(b[0].shape[0]) for b in self.batches)
        return None

    # -- the report ------------------------------------------------------------------------

    def _report(self, latest: dict[str, float]) -> None:
        multiple = latest["noise_to_signal"]
        b = latest.get("batch_size")
        evidence = {k: v for k, v in latest.items() if k != "step"}
        suggested: dict[str, float] = {}
        bound = "at least " if latest["lower_bound"] else ""
        if b:
            scale = latest["noise_scale"]
            target = 2 ** round(math.log2(scale)) if math.isfinite(scale) else 2**20
            size = self._data_size()
            if size is not None:
                target = min(target, size)
            target = max(int(target), int(b) + 1)
            suggested["batch_size"] = target
            message = (
                f"the gradient noise scale B_simple = tr(Sigma)/|G|^2 is {bound}{scale:.3g} "
                f"examples, {bound}{multiple:.3g}x the batch size {int(b)}: each step's "
                "gradient is mostly noise"
            )
            suggestion = (
                f"raise the batch size toward {target} (up to B_simple, bigger batches cut "
                f"the steps needed almost proportionally), or lower the learning rate about "
                f"{min(multiple, 1e3):.2g}x to average the noise over more steps"
            )
        else:
            suggested["batch_size_multiplier"] = float(
                2 ** round(math.log2(multiple)) if math.isfinite(multiple) else 1024
            )
            message = (
                f"the gradient noise is {bound}{multiple:.3g}x its signal "
                "(tr(Sigma)/B over |G|^2 for the current batch): each step's gradient is "
                "mostly noise"
            )
            suggestion = (
                f"average about {suggested['batch_size_multiplier']:.0f}x more examples per "
                "gradient (a larger batch), or lower the learning rate"
            )
        self.report(
            Diagnosis(
                kind="gradient_noise",
                severity=Severity.INFO if multiple < 100 * self.ratio else Severity.WARNING,
                step=int(latest["step"]),
                message=message,
                evidence=evidence,
                suggestion=suggestion,
                suggested=suggested,
            )
        )

    def __repr__(self) -> str:
        return f"GradientNoiseMonitor(every={self.every}, n_batches={self.n_batches})"


def _pool(estimates: list[dict[str, float]]) -> dict[str, float]:
    """One estimate from several checks: means of S and of the squared mean gradient, then
    the ratio (a ratio of means is steadier than a mean of ratios)."""
    n = len(estimates)
    m = sum(e["n_batches"] for e in estimates)
    spread = sum(e["trace_cov_over_batch"] for e in estimates) / n
    mean_sq = sum(e["mean_grad_norm_sq"] for e in estimates) / n
    signal = mean_sq - spread * n / m
    biased = signal <= 0
    if biased:
        signal = mean_sq
    multiple = spread / signal if signal > 0 else math.inf
    pooled = {
        "noise_to_signal": multiple,
        "trace_cov_over_batch": spread,
        "grad_norm_sq": signal,
        "n_batches": m,
        "checks": n,
        "lower_bound": float(biased),
        "step": estimates[-1]["step"],
    }
    if "batch_size" in estimates[-1]:
        b = estimates[-1]["batch_size"]
        pooled["batch_size"] = b
        pooled["noise_scale"] = b * multiple
    return pooled


def _flat_grads(params: list[Tensor], grads: Any) -> Tensor:
    return flat([torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)])


def _reiterable(batches: Any) -> Any:
    if batches is None or callable(batches):
        return batches
    if iter(batches) is batches:
        raise TypeError(
            "batches must be re-iterable (a list of (X, y), a DataLoader, or a function "
            f"returning a fresh iterator), got an iterator ({type(batches).__name__}), which "
            "the training loop would share"
        )
    return batches


class _preserved:
    """Restores a model's buffers (BatchNorm statistics) and the global RNG after extra passes."""

    def __init__(self, model: nn.Module, params: list[Tensor]) -> None:
        self.model = model
        self.devices = sorted({p.device.index for p in params if p.device.type == "cuda"})

    def __enter__(self) -> None:
        self.buffers = [b.detach().clone() for b in self.model.buffers()]
        self.rng = torch.random.fork_rng(devices=self.devices)
        self.rng.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.rng.__exit__(*exc)
        with torch.no_grad():
            for b, saved in zip(self.model.buffers(), self.buffers):
                b.copy_(saved)
