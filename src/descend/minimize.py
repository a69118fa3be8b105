"""``minimize``: the descent loop fed by one function of a vector."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from descend.function_run import DEFAULT_METHOD, bounded_methods, keeps_bounds, run_function
from descend.methods import get_method
from descend.multistart import multistart
from descend.result import OptimizeResult
from descend.scipy_form import bind_args, scipy_callbacks, translate
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
        runs = multistart(
            fun, bounds, restarts, x0, method=method, seed=seed,
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
        device=device, bounds=bounds,
    )  # fmt: skip


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
