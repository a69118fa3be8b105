r"""Random restarts: run a local method from K starting points and keep every outcome.

A local method finds the minimum of the basin it starts in. Restarting it from K points
spread over the domain finds the global minimum of a multimodal function with probability
:math:`1 - (1 - p)^K`, where p is the share of starts that lead to it, and maps the
function's distinct local minima on the way ("multistart"; see A. Törn and A. Žilinskas,
*Global Optimization*, LNCS 350, Springer 1989, ch. 2, and M. Locatelli and F. Schoen,
*Global Optimization: Theory, Algorithms, and Applications*, SIAM 2013, ch. 4).

Elementwise first-order methods (``capabilities(...).elementwise``: ``gd, momentum,
nesterov, adagrad, rmsprop, adam, adamw, amsgrad``, ...) run all K starts as one
computation: one optimizer over a (K, n) tensor X with objective :math:`F(X) = \sum_k
f(x_k)`. Since :math:`\partial F / \partial x_k = \nabla f(x_k)` and the update rules
act elementwise, every row follows exactly the iterates it would follow alone: the
engine's rows feed (:mod:`descend.engine.rows_feed`), each row with its own stopping
tests, a finished row frozen while the others go on. Methods with line searches or
Hessians (``lbfgs, bfgs, cg, newton, newton-cg, trust-region``) couple the coordinates
through inner products and run the starts one after another through :func:`minimize`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from descend.constraints import Box, Constraint, as_constraint
from descend.engine import Engine, StoppingCriteria
from descend.engine.rows_feed import RowsFeed
from descend.function_run import DEFAULT_METHOD, run_function
from descend.methods import get_method
from descend.optim.capabilities import capabilities
from descend.problems.problem import Problem
from descend.result import OptimizeResult
from descend.scipy_form import translate
from descend.validation import check_int, check_positive

__all__ = ["LocalMinimum", "MultistartResult", "multistart"]


@dataclass(frozen=True)
class LocalMinimum:
    """A distinct local minimum found by one or more runs.

    Attributes:
        x: the lowest point of the cluster (of the kind the result's ``x`` has).
        fun: f there.
        count: how many runs ended in it.
        runs: their indices into :attr:`MultistartResult.results`.
    """

    x: Any
    fun: float
    count: int
    runs: tuple[int, ...]


@dataclass
class MultistartResult:
    """The outcome of :func:`multistart`.

    Attributes:
        best: the run with the lowest f (the earliest of equals).
        results: one :class:`OptimizeResult` per start, in the order of ``x``.
        x: the K starting points, shape (K, n) (a tensor if ``x0`` or ``bounds`` was one,
            otherwise a NumPy array).
        batched: whether the runs were one batched computation.
        time: wall-clock seconds for all runs.
    """

    best: OptimizeResult
    results: list[OptimizeResult]
    x: Any
    batched: bool
    time: float = 0.0
    seed: Any = field(default=None, repr=False)

    @property
    def fun(self) -> float:
        return self.best.fun

    @property
    def nfev(self) -> int:
        """Evaluations of f summed over all runs."""
        return sum(r.nfev for r in self.results)

    def minima(self, tol: float = 1e-3, converged_only: bool = True) -> list[LocalMinimum]:
        r"""The distinct local minima the runs ended in, lowest f first.

        Runs are taken in order of increasing f; each joins the first cluster whose lowest
        point :math:`c` satisfies :math:`\|x - c\|_2 \le \text{tol}\cdot\max(1, \|c\|_2)`,
        or starts a new one.

        Args:
            tol: relative distance under which two end points are one minimum, > 0.
            converged_only: leave out runs that did not converge (they may have stopped
                on a slope).
        """
        check_positive("tol", tol)
        order = sorted(range(len(self.results)), key=lambda i: (self.results[i].fun, i))
        clusters: list[tuple[np.ndarray, list[int]]] = []
        for i in order:
            run = self.results[i]
            if (converged_only and not run.converged) or not math.isfinite(run.fun):
                continue
            point = _flat(run.x)
            for centre, members in clusters:
                if np.linalg.norm(point - centre) <= tol * max(1.0, float(np.linalg.norm(centre))):
                    members.append(i)
                    break
            else:
                clusters.append((point, [i]))
        return [
            LocalMinimum(
                x=self.results[members[0]].x,
                fun=self.results[members[0]].fun,
                count=len(members),
                runs=tuple(sorted(members)),
            )
            for _, members in clusters
        ]

    def __repr__(self) -> str:
        converged = sum(r.converged for r in self.results)
        return (
            f"MultistartResult({len(self.results)} runs, {converged} converged, "
            f"{'batched' if self.batched else 'sequential'}, best f = {self.best.fun:.10g}, "
            f"time {self.time:.3g} s)"
        )


def multistart(
    fun: Callable[[Tensor], Tensor] | Problem,
    x0: Any = None,
    method: str = DEFAULT_METHOD,
    *,
    bounds: Any = None,
    k: int = 16,
    scale: float | Sequence[float] = 1.0,
    seed: int | torch.Generator = 0,
    batched: bool | None = None,
    vectorized: bool = False,
    constrained: bool = False,
    **minimize_options: Any,
) -> MultistartResult:
    r"""Minimize ``fun`` from ``k`` random starts; return every run and the best.

    The arguments follow :func:`descend.minimize`'s: ``fun``, ``x0`` and ``method`` by
    position, the rest by keyword.

    Starts are drawn from a ``torch.Generator`` seeded by ``seed`` (global RNG state is
    never touched; the same seed gives the same starts and the same numbers):

    * with ``x0``: :math:`x_0` itself, then :math:`x_0 + \sigma z` with
      :math:`z \sim N(0, I)` and :math:`\sigma` = ``scale``, projected onto ``bounds`` if
      given;
    * otherwise uniformly in the box ``bounds``, which must then be finite (a
      :class:`~descend.problems.Problem`'s own bounds when ``fun`` is one and neither
      bounds nor x0 is given).

    Args:
        fun: ``f(x) -> scalar`` built from torch ops, or a ``Problem``. Elementwise methods
            evaluate all starts at once: through the problem's batched function, through
            ``fun`` itself when ``vectorized=True`` (it maps (..., n) to (...)), and
            otherwise through ``torch.func.vmap(fun)``.
        x0: a centre for normally distributed starts (list, array or tensor of n numbers).
        method: a name from ``descend.METHODS``; ``lbfgs`` by default.
        bounds: where the starts lie: per-coordinate ``(low, high)`` pairs (a sequence,
            array or (n, 2) tensor), or any set :func:`descend.constraints.as_constraint`
            takes (with ``x0``).
        k: the number of starts, >= 1.
        scale: the standard deviation around ``x0`` (a positive number or one per coordinate).
        seed: an integer seed or a ``torch.Generator`` (whose state advances).
        batched: ``None`` (default) batches the elementwise methods whenever ``fun`` can be
            evaluated on a batch; ``True`` insists (an error says why it cannot);
            ``False`` runs the starts one by one.
        vectorized: ``fun`` already accepts a batch of points (shape (K, n) -> (K,)).
        constrained: also keep every run within ``bounds`` (``minimize(..., restarts=K,
            bounds=...)`` does, as SciPy's bounded methods). One by one, each run is
            ``minimize(..., bounds=...)``; batched, every step is followed by the projection
            of every row, and the gradient test reads the gradient itself, so a row that
            ends on a bound stops by ftol (the projection holds f still there).
            False: ``bounds`` only places the starts.
        **minimize_options: as for :func:`descend.minimize` (``max_iter, gtol, ftol, lr``,
            ...); ``callback``, ``jac`` and ``monitors`` force sequential runs.

    Returns:
        :class:`MultistartResult`.

    Raises:
        TypeError: a call in the order of 0.1 (``multistart(fun, bounds, k, ...)``), which
            would otherwise read the bounds as ``x0`` or ``k`` as the method.

    Example:
        >>> from descend.problems import get_problem
        >>> res = descend.multistart(get_problem("himmelblau"), k=32, method="adam", lr=0.05)
        >>> [round(m.fun, 8) for m in res.minima()]  # four minima, all with f = 0
    """
    started = time.perf_counter()
    _refuse_the_old_order(x0, method)
    k = check_int("k", k, low=1)
    spec = get_method(method)
    problem = fun if isinstance(fun, Problem) else None
    if problem is not None and bounds is None and x0 is None:
        bounds = problem.bounds
    if not callable(fun):
        raise TypeError(f"fun must be callable or a Problem, got {type(fun).__name__}")
    kind_tensor = isinstance(x0, Tensor) or (x0 is None and isinstance(bounds, Tensor))
    dim = None if problem is None else problem.dim
    starts, constraint = _starts(k, bounds, x0, scale, seed, dim)
    if constrained and constraint is None:
        raise ValueError("constrained=True keeps the runs within bounds: give bounds")
    present = _presenter(kind_tensor, x0)

    elementwise = capabilities(spec.optimizer).elementwise
    blockers = [name for name in ("callback", "jac") if minimize_options.get(name) is not None]
    if minimize_options.get("monitors", "default") not in (None, "default"):
        blockers.append("monitors")
    if batched is True and not elementwise:
        raise ValueError(
            f"batched=True needs an elementwise method (gd, momentum, nesterov, adagrad, "
            f"rmsprop, adam, adamw, amsgrad); {spec.name!r} runs the starts one by one"
        )
    if batched is True and blockers:
        raise ValueError(f"batched=True does not support {', '.join(blockers)}; pass batched=False")
    use_batch = batched is not False and elementwise and not blockers
    batch_fn = None
    if use_batch:
        batch_fn = _batch_function(fun, problem, vectorized, starts, strict=batched is True)
        use_batch = batch_fn is not None

    if use_batch:
        assert batch_fn is not None
        results = _run_batched(
            batch_fn, starts, spec, present, minimize_options, constraint if constrained else None
        )
    else:
        single = problem.fn if problem is not None else fun
        call = _call(spec, minimize_options, starts.shape[1])
        run = {k: minimize_options[k] for k in _RUN if k in minimize_options}
        if constrained:
            run["bounds"] = constraint
        results = [run_function(single, present(row), call, **run) for row in starts]
    best = min(range(k), key=lambda i: (_sortable(results[i].fun), i))
    return MultistartResult(
        best=results[best],
        results=results,
        x=present(starts),
        batched=use_batch,
        time=time.perf_counter() - started,
        seed=seed,
    )


def _refuse_the_old_order(x0: Any, method: Any) -> None:
    """A TypeError for a call written for the old order ``multistart(fun, bounds, k, x0,
    scale, method, seed)``: bounds where ``x0`` now stands (a set's name, a ``Constraint``,
    SciPy's ``Bounds``, a sequence of ``(low, high)`` pairs or of None), or a number where
    ``method`` stands (the old ``k``)."""
    order = (
        "multistart's arguments follow minimize's order: multistart(fun, x0, method, *, "
        "bounds=..., k=..., scale=..., seed=...)"
    )
    if _looks_like_bounds(x0):
        raise TypeError(
            f"{order}; the second argument looks like bounds ({_shown(x0)}), not x0: pass "
            "bounds= (and k=) by keyword"
        )
    if isinstance(method, (int, float)) and not isinstance(method, bool):
        raise TypeError(f"{order}; method got the number {method!r}: pass k= by keyword")


def _looks_like_bounds(value: Any) -> bool:
    if isinstance(value, (str, Constraint)) or (hasattr(value, "lb") and hasattr(value, "ub")):
        return True
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(
            isinstance(pair, (list, tuple))
            and len(pair) == 2
            and all(end is None or isinstance(end, (int, float)) for end in pair)
            for pair in value
        )
    )


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------------------
# starts


def _starts(
    k: int, bounds: Any, x0: Any, scale: Any, seed: Any, dim: int | None
) -> tuple[Tensor, Constraint | None]:
    """The (k, n) float64 (or x0's float dtype) starting points, and the set ``bounds``
    describes."""
    generator = _generator(seed)
    if x0 is not None:
        centre = _vector("x0", x0)
        n = centre.numel()
        constraint = as_constraint(bounds, n)
        spread = _scale(scale, n, centre.dtype)
        noise = torch.randn(k, n, generator=generator, dtype=torch.float64).to(centre.dtype)
        points = centre + spread * noise
        points[0] = centre
        if constraint is not None:
            points = torch.stack([constraint.project(row) for row in points])
        return points, constraint
    if bounds is None:
        raise ValueError("give bounds (low, high) per coordinate, x0 with scale, or a Problem")
    box = as_constraint(bounds)
    if box is not None and dim is not None:
        box.check_size(dim, against="the problem")
    if (
        not isinstance(box, Box)
        or box.size is None
        or not (torch.isfinite(box.low).all() and torch.isfinite(box.high).all())
    ):
        raise ValueError(
            f"uniform starts need a finite box of (low, high) pairs, got {box!r}; give x0 "
            "(starts around it are projected onto the set) or finite bounds"
        )
    unit = torch.rand(k, box.size, generator=generator, dtype=torch.float64)
    return box.low + (box.high - box.low) * unit, box


def _generator(seed: Any) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer or a torch.Generator, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed}")
    return torch.Generator().manual_seed(seed)


def _vector(name: str, value: Any) -> Tensor:
    if isinstance(value, Tensor):
        vec = value.detach().cpu().reshape(-1)
        vec = vec if vec.is_floating_point() else vec.to(torch.float64)
    else:
        try:
            vec = torch.as_tensor(np.asarray(value, dtype=np.float64).reshape(-1))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be a vector of numbers, got {value!r}") from exc
    if vec.numel() == 0 or not torch.isfinite(vec).all():
        raise ValueError(f"{name} must be a non-empty vector of finite numbers, got {value!r}")
    return vec.clone()


def _scale(scale: Any, n: int, dtype: torch.dtype) -> Tensor:
    if isinstance(scale, (int, float)) and not isinstance(scale, bool):
        check_positive("scale", scale)
        return torch.full((n,), float(scale), dtype=dtype)
    spread = _vector("scale", scale).to(dtype)
    if spread.numel() != n or not (spread > 0).all():
        raise ValueError(f"scale must be a positive number or {n} positive numbers, got {scale!r}")
    return spread


def _presenter(as_tensor: bool, x0: Any) -> Callable[[Tensor], Any]:
    """Rows and blocks of starts or solutions in the caller's kind."""
    if as_tensor:
        home = x0.device if isinstance(x0, Tensor) else torch.device("cpu")
        return lambda t: t.detach().to(home).clone()
    return lambda t: t.detach().cpu().numpy().astype(np.float64, copy=True)


def _flat(x: Any) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().cpu().double().numpy().reshape(-1)
    return np.asarray(x, dtype=np.float64).reshape(-1)


def _sortable(f: float) -> float:
    return f if not math.isnan(f) else math.inf


# ---------------------------------------------------------------------------------------
# one batched run


def _batch_function(
    fun: Any, problem: Problem | None, vectorized: bool, starts: Tensor, strict: bool
) -> Callable[[Tensor], Tensor] | None:
    """``F(X) -> (K,)`` for a (K, n) batch, or None (strict: an error) if ``fun`` has none."""
    if problem is not None:
        return problem.fn
    candidate = fun if vectorized else torch.func.vmap(fun)
    try:
        with torch.enable_grad():
            probe = starts[:2].clone().requires_grad_(True)
            value = candidate(probe)
    except Exception as exc:
        if strict:
            raise ValueError(
                f"fun cannot be evaluated on a batch of starts "
                f"({'as given' if vectorized else 'through torch.func.vmap'}: "
                f"{type(exc).__name__}: {exc}); pass batched=False"
            ) from exc
        return None
    if not isinstance(value, Tensor) or tuple(value.shape) != (probe.shape[0],):
        shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        if strict or vectorized:
            raise ValueError(
                f"fun maps a batch of shape {tuple(probe.shape)} to {shape}; a batched fun "
                f"must return shape ({probe.shape[0]},)"
            )
        return None
    return candidate


def _run_batched(
    batch_fn: Callable[[Tensor], Tensor],
    starts: Tensor,
    spec: Any,
    present: Callable[[Tensor], Any],
    options: dict[str, Any],
    constraint: Constraint | None = None,
) -> list[OptimizeResult]:
    """All starts as rows of one tensor under one optimizer: the engine on a rows feed,
    with minimize's stopping rules for the method; with a ``constraint``, each step is
    followed by the projection of every row (a torch step post-hook)."""
    call = _call(spec, options, starts.shape[1])
    stopping = StoppingCriteria(**call.stopping)
    x = starts.clone()
    if options.get("device") is not None:
        x = x.to(options["device"])
    x.requires_grad_(True)
    optimizer = spec.build([x], call.options)
    if constraint is not None:
        optimizer.register_step_post_hook(lambda *_: constraint.project_rows_(x))
    feed = RowsFeed(batch_fn, x, stopping, record=bool(options.get("record")),
                    present=present, method=spec.name)  # fmt: skip
    engine = Engine(feed, optimizer, stopping)
    engine.run()
    return feed.results(engine)


def _call(spec: Any, options: dict[str, Any], n: int) -> Any:
    """minimize's keywords as one call of the method: its stopping rules and optimizer options."""
    given = {key: options.get(key) for key in _STOPPING}
    extra = {k: v for k, v in options.items() if k not in (*_STOPPING, *_RUN)}
    return translate(
        spec.name, None, None, given=given, extra=extra, n=n, keywords=(*_STOPPING, *_RUN)
    )


#: minimize's keywords that make its stopping rule, and those that shape the run
_STOPPING = (
    "max_iter", "gtol", "ftol", "xtol", "max_time", "target", "patience", "divergence_factor",
)  # fmt: skip
_RUN = ("device", "callback", "jac", "monitors", "record")
