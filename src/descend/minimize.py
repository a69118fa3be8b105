"""``minimize``: the descent loop fed by one function of a vector."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from descend.engine.step_controls import StepControls
from descend.function_run import DEFAULT_METHOD, bounded_methods, keeps_bounds, run_function
from descend.methods import METHODS, Method, get_method
from descend.multistart import multistart
from descend.optim.capabilities import capabilities
from descend.result import OptimizeResult
from descend.scipy_form import bind_args, scipy_callbacks, translate
from descend.train.regularization import GradientClipper
from descend.train.schedules import build_schedule
from descend.validation import check_device, check_int


def minimize(
    fun: Callable[..., Any],
    x0: Any,
    method: str = DEFAULT_METHOD,
    *,
    args: Any = (),
    jac: Callable[..., Any] | bool | None = None,
    tol: float | None = None,
    options: dict[str, Any] | None = None,
    max_iter: int | None = None,
    gtol: float | None = None,
    ftol: float | None = None,
    xtol: float | None = None,
    max_time: float | None = None,
    target: float | None = None,
    callback: Any = None,
    monitors: Any = "default",
    record: bool = False,
    patience: int | None = None,
    divergence_factor: float = 1e6,
    device: str | torch.device | None = None,
    restarts: int | None = None,
    bounds: Any = None,
    schedule: Any = None,
    clip_grad_norm: float | None = None,
    clip_grad_value: float | None = None,
    seed: int | torch.Generator = 0,
    **optimizer_options: Any,
) -> OptimizeResult:
    r"""Minimize a scalar function of a vector (or any-shaped array) by gradient descent.

    Args:
        fun: ``fun(x, *args) -> scalar``. Given a tensor, its gradient comes from autodiff,
            so ``fun`` must compute with torch operations. A NumPy ``fun`` (one that returns
            a float or an array) needs its gradient as ``jac=``.
        x0: the start: list, tuple, NumPy array or tensor. ``res.x`` comes back as the same
            kind (a float64 NumPy array for lists, tuples and arrays).
        method: one of ``descend.methods.METHODS`` (``lbfgs``, the default, ``bfgs, cg, gd,
            momentum, nesterov, adagrad, rmsprop, adam, adamw, amsgrad, newton, newton-cg,
            trust-region``, ...), or one of SciPy's names ``"BFGS"``, ``"L-BFGS-B"``,
            ``"CG"``, ``"Newton-CG"``, ``"trust-ncg"``, ``"trust-exact"``, which run
            descend's ``bfgs``, ``lbfgs``, ``cg``, ``newton-cg``, ``trust-region`` and
            stop by SciPy's rules for that method (see :mod:`descend.scipy_form`; lower
            case, ``"bfgs"``, ``"cg"`` and ``"newton-cg"`` are descend's own).
        args: extra arguments for ``fun`` and ``jac``, as in SciPy (a non-tuple is one).
        jac: the gradient ``jac(x, *args) -> array`` shaped like ``x``, or ``True`` when
            ``fun`` returns ``(f, gradient)``. ``None``: autodiff.
        tol: with SciPy's names, what ``scipy.optimize.minimize`` sets with it (``gtol``;
            L-BFGS-B: ``ftol`` and ``gtol``; Newton-CG: ``xtol``); with descend's, ``gtol``.
        options: with SciPy's names, SciPy's options for the method (``maxiter``, ``gtol``,
            ``norm``, ``ftol``, ``xtol``, ``maxfun``, ``maxcor``, ``disp``,
            ``return_all``, ...); an unknown one is refused with the nearest valid name.
            With descend's names, any of ``max_iter, gtol, ftol, xtol, patience, max_time,
            target, divergence_factor`` and the optimizer's options, as keywords.
        max_iter: iteration budget (default per method: 10,000 for first-order methods,
            15,000 for lbfgs; SciPy's names: SciPy's, mostly 200 n).
        gtol: stop when :math:`\|\nabla f\|_2 \le` gtol (default 1e-5). **Giving gtol
            (or tol) without ftol switches the ftol test off**: the run stops at the
            gradient tolerance, not at the first iteration where f barely moved.
        ftol: stop when the relative change of f is below ftol for ``patience`` iterations
            (default per method: 2.2e-9 for line-search methods, 1e-12 for fixed-step ones;
            0, off, when only gtol is given).
        xtol: stop when :math:`\|x_k - x_{k-1}\| \le` xtol :math:`\max(\|x_k\|, 1)`
            for ``patience`` iterations (default 0: off).
        max_time: wall-clock budget in seconds.
        target: stop as soon as f <= target.
        callback: ``cb(intermediate_result)`` called after every iteration (return True or
            raise StopIteration to stop), a :class:`descend.callbacks.Callback`, or a list.
            With SciPy's names, SciPy's contract: ``cb(xk)`` unless its parameter is named
            ``intermediate_result``, and only ``StopIteration`` stops.
        monitors: health monitors watching the run (``descend.diagnostics``); what they
            find lands on ``res.diagnoses``. ``"default"``: the standard set
            (divergence, oscillation, lr too small, plateau, saddle, gradient noise);
            ``None``: none; or a list of monitors, e.g.
            ``descend.diagnostics.default_monitors(off=["saddle"])``.
        record: keep the trajectory of x in ``res.history``.
        patience: iterations in a row that ftol/xtol must hold (default per method: 1 for
            plain descent, 10 for methods with momentum or adaptive steps).
        divergence_factor: f rising this many times the problem's scale above the best f
            seen ends the run as diverged.
        device: where to run (``"cuda"``, ``"cpu"``); default: where ``x0`` lives.
        restarts: run from this many random starts and return the best run
            (:func:`descend.multistart`, which also returns every run): ``x0`` and normal
            perturbations of it (standard deviation 1), projected onto ``bounds`` if given,
            or with ``x0=None`` uniform draws from ``bounds`` (a finite box); every run is
            constrained to ``bounds``. Not with SciPy's names.
        bounds: the feasible set x is kept in (see ``docs/bounds.md``): ``(low, high)``
            pairs, one per coordinate (None: no bound; SciPy's form), an (n, 2) array,
            a ``scipy.optimize.Bounds``, ``"nonnegative"``, ``"simplex"`` or a
            :mod:`descend.constraints` set. x0 is projected onto it first (the message
            says so if it moved). ``lbfgs`` and ``"L-BFGS-B"`` keep every iterate
            feasible with a projected quasi-Newton step (:mod:`descend.optim.lbfgs_bounds`);
            the first-order rules (``gd, adam, ...``) take projected steps, :math:`x
            \leftarrow P(x - \eta\,\cdot)`; the other line-search and Newton methods
            refuse bounds. The gradient tests and ``res.grad_norm`` read the projected
            gradient :math:`P(x - \nabla f) - x` (``"L-BFGS-B"``: its largest component,
            SciPy's pgtol); the message counts the coordinates that end at a bound
            (``Constraint.active(res.x)`` says which).
        schedule: a learning-rate schedule, as ``descend.fit`` takes it
            (:mod:`descend.train.schedules`): a name (``step``, ``exponential``,
            ``cosine``, ``warmup_cosine``, ``one_cycle``, ``plateau``), a dict of a name and
            options (``{"name": "cosine", "warmup_steps": 20}``), a factory ``optimizer ->
            torch scheduler`` or a :class:`~descend.train.schedules.Schedule`. Stepped once
            after every iteration, as a torch loop steps it after ``optimizer.step()``
            (each iteration is a step and an epoch); ``max_iter`` is the schedule's length
            (``cosine``, ``one_cycle``) and its epochs (``step``: a tenfold drop every
            max_iter // 3); ``plateau`` watches f. First-order methods only (``gd,
            momentum, adam, ...``).
        clip_grad_norm: before each step, rescale the gradient to this 2-norm at most
            (:math:`g \leftarrow g \min(1, c / \|g\|_2)`, ``torch.nn.utils.clip_grad_norm_``),
            > 0. The gradient tests and ``res.grad_norm`` read the gradient before
            clipping. First-order methods only.
        clip_grad_value: before each step, clamp each gradient entry to ``[-v, v]`` (then
            ``clip_grad_norm``, if given), > 0. First-order methods only.
        seed: the restarts' seed (an integer or a ``torch.Generator``).
        **optimizer_options: passed to the optimizer (``lr``, ``momentum``, ``betas``, ...);
            a misspelled keyword is refused with the nearest valid name.

    Returns:
        :class:`descend.OptimizeResult`, also a mapping as SciPy's (``res["x"]``).

    Example:
        >>> res = descend.minimize(lambda x: ((x - 3) ** 2).sum(), [0.0, 0.0], "adam", lr=0.1)
        >>> res.x  # array([3., 3.])
        >>> res = descend.minimize(lambda x, a: ((x - a) ** 2).sum(), [0.0], "BFGS", args=(3.0,))
        >>> res["x"], res["success"]  # (array([3.]), True)
    """
    _check_real(x0)
    if restarts is not None:
        restarts = check_int("restarts", restarts, low=1)
        if device is not None:
            check_device(device)
    call = translate(
        method,
        tol,
        options,
        given=dict(
            max_iter=max_iter, gtol=gtol, ftol=ftol, xtol=xtol, patience=patience,
            max_time=max_time, target=target, divergence_factor=divergence_factor,
        ),
        extra=optimizer_options,
        n=_size(x0),
        keywords=KEYWORDS,
    )  # fmt: skip
    controls = step_controls(
        method, schedule, clip_grad_norm, clip_grad_value, call.stopping["max_iter"],
        method=call.method,
    )  # fmt: skip
    if controls is not None and restarts is not None:
        raise ValueError(
            "restarts= runs its starts as rows of one tensor, which schedule=, "
            "clip_grad_norm= and clip_grad_value= do not handle yet: drop restarts= or them"
        )
    if call.scipy and restarts is not None:
        raise ValueError(
            f"restarts= is descend's (random starts) and runs descend's rules: use "
            f"method={call.method!r} with it"
        )
    if call.scipy and bounds is not None and not keeps_bounds(get_method(call.method)):
        raise ValueError(
            f"method {method!r} cannot handle bounds (SciPy's would ignore them); use "
            "'L-BFGS-B', or one of descend's methods that keep x within bounds: "
            f"{', '.join(bounded_methods())}"
        )
    # call.stopping holds every StoppingCriteria field, resolved (SciPy's norm and budgets too)
    method, options = call.method, call.options
    max_iter, gtol, ftol, xtol, patience = (
        call.stopping[k] for k in ("max_iter", "gtol", "ftol", "xtol", "patience")
    )
    fun, jac = bind_args(fun, jac, args)
    callback = scipy_callbacks(callback, call)
    record = record or call.record
    if restarts is not None:
        # a nested list is x0's shape here, never bounds (which multistart would suspect)
        centre = np.asarray(x0, dtype=np.float64) if isinstance(x0, (list, tuple)) else x0
        runs = multistart(
            fun, centre, method, bounds=bounds, k=restarts, seed=seed,
            constrained=bounds is not None, jac=jac, max_iter=max_iter,
            gtol=gtol, ftol=ftol, xtol=xtol, max_time=max_time, target=target,
            callback=callback, monitors=monitors, record=record, patience=patience,
            divergence_factor=divergence_factor, device=device, **options,
        )  # fmt: skip
        best = runs.best
        best.message = f"best of {restarts} restarts: {best.message}"
        if x0 is not None:  # the rows are flat; x (and its gradient) come back as x0 was
            best.x = best.x.reshape(np.shape(x0))
            if best.jac is not None and np.size(best.jac) == np.size(best.x):
                best.jac = best.jac.reshape(np.shape(x0))
        return best
    return run_function(
        fun, x0, call, jac=jac, callback=callback, monitors=monitors, record=record,
        device=device, bounds=bounds, controls=controls,
    )  # fmt: skip


def step_controls(
    name: str,
    schedule: Any,
    clip_grad_norm: float | None,
    clip_grad_value: float | None,
    steps: int,
    *,
    method: str | None = None,
) -> Callable[[torch.optim.Optimizer], StepControls] | None:
    """What ``minimize`` puts around each step of a first-order rule: gradient clipping
    before it and the learning-rate schedule after it, as a factory of the optimizer (the
    schedule is built on it); None when none of the three is given.

    Args:
        name: the method as the caller named it (for the error).
        schedule, clip_grad_norm, clip_grad_value: as :func:`minimize` takes them.
        steps: the iteration budget, the schedule's length and epochs.
        method: descend's method that runs (``name`` resolved; default: ``name``).

    Raises:
        ValueError: a clipping threshold that is not > 0, or any of the three with a
            method that is not first-order (its line search or curvature pairs read the
            true gradient at a fixed step).
    """
    given = [
        keyword
        for keyword, value in (("schedule", schedule), ("clip_grad_norm", clip_grad_norm),
                               ("clip_grad_value", clip_grad_value))
        if value is not None
    ]  # fmt: skip
    if not given:
        return None
    if not first_order(get_method(method or name)):
        raise ValueError(
            f"method {name!r} takes line-search or curvature steps, which "
            f"{', '.join(k + '=' for k in given)} would break; the first-order methods take "
            f"them: {', '.join(first_order_methods())}"
        )
    if isinstance(schedule, str):
        schedule = {"name": schedule}
    if isinstance(schedule, dict):  # a named schedule moves every iteration, warmup included
        schedule = {"interval": "step", **schedule}
    clipping = clip_grad_norm is not None or clip_grad_value is not None
    clip = GradientClipper(clip_grad_norm, clip_grad_value) if clipping else None

    def controls(optimizer: torch.optim.Optimizer) -> StepControls:
        built = build_schedule(schedule, optimizer, total_steps=steps, epochs=steps, monitor="loss")
        return StepControls(clip, built)

    return controls


def first_order(spec: Method) -> bool:
    """Whether the method's rule takes one gradient per step and no curvature: the rules
    that take a schedule and gradient clipping."""
    caps = capabilities(spec.optimizer)
    return not (caps.needs_fixed_batch or caps.second_order)


def first_order_methods() -> list[str]:
    """The names of the :func:`first_order` methods."""
    return [name for name, spec in METHODS.items() if first_order(spec)]


#: minimize's keywords, for the nearest valid name in a misspelled keyword's error
KEYWORDS = tuple(
    name
    for name, p in inspect.signature(minimize).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY
)


def _check_real(x0: Any) -> None:
    """Refuse a complex x0: its imaginary part would be dropped without a word."""
    try:
        complex_ = x0.is_complex() if isinstance(x0, Tensor) else np.iscomplexobj(x0)
    except (TypeError, ValueError):  # not numbers at all: run_function says so
        complex_ = False
    if complex_:
        raise ValueError(
            "x0 is complex; minimize works on real x: minimize over the real and imaginary "
            "parts as one real vector (torch.view_as_real, or numpy's .real and .imag)"
        )


def _size(x0: Any) -> int:
    """The number of variables (for SciPy's budgets of 200 n iterations); 0 if unknown
    (a bad x0 is reported later, by :func:`descend.function_run.run_function`)."""
    if isinstance(x0, Tensor):
        return x0.numel()
    try:
        return int(np.size(np.asarray(x0, dtype=np.float64)))
    except (TypeError, ValueError):
        return 0
