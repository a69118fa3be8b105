"""``minimize``: the descent loop fed by one function of a vector."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from descend.callbacks import CallbackList, as_callbacks
from descend.engine import Engine, FunctionFeed, StoppingCriteria
from descend.methods import get_method
from descend.monitors import monitors_for_run
from descend.objective import Objective
from descend.result import OptimizeResult
from descend.scipy_form import bind_args, inverse_hessian, scipy_callbacks, translate

DEFAULT_METHOD = "lbfgs"


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
            perturbations of it (standard deviation 1), clipped to ``bounds`` if given, or
            with ``x0=None`` uniform draws from ``bounds``. Not with SciPy's names.
        bounds: per-coordinate ``(low, high)`` pairs for the restarts (x is not constrained).
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
    if call.scipy and (restarts is not None or bounds is not None):
        raise ValueError(
            f"restarts= and bounds= are descend's (random starts), not SciPy's box "
            f"constraints, and run descend's rules: use method={call.method!r} with them "
            "(descend.minimize does not constrain x)"
        )
    # the body reads these: descend's method, its optimizer options, resolved tolerances
    # (call.stopping holds every StoppingCriteria field, SciPy's norm and budgets too)
    method, options = call.method, call.options
    max_iter, gtol, ftol, xtol, patience = (
        call.stopping[k] for k in ("max_iter", "gtol", "ftol", "xtol", "patience")
    )
    fun, jac = bind_args(fun, jac, args)
    callback = scipy_callbacks(callback, call)
    record = record or call.record
    if restarts is not None or bounds is not None:
        if restarts is None:
            raise ValueError(
                "bounds is the box that restarts=K draws its starts from; give restarts "
                "(minimize does not constrain x)"
            )
        from descend.multistart import multistart  # multistart runs minimize

        runs = multistart(
            fun, bounds, restarts, x0, method=method, seed=seed, jac=jac, max_iter=max_iter,
            gtol=gtol, ftol=ftol, xtol=xtol, max_time=max_time, target=target,
            callback=callback, monitors=monitors, record=record, patience=patience,
            divergence_factor=divergence_factor, device=device, **options,
        )  # fmt: skip
        best = runs.best
        best.message = f"best of {restarts} restarts: {best.message}"
        return best
    spec = get_method(method)
    x, present = _as_parameter(x0, device)
    evaluate = _evaluator(fun, jac, x, tuple(x0.shape) if isinstance(x0, Tensor) else x.shape)
    stopping = StoppingCriteria(**call.stopping)
    maximize = bool(options.get("maximize", False))
    if maximize and stopping.target is not None:  # the loop reads -f: f >= target
        stopping = replace(stopping, target=-stopping.target)
    optimizer = spec.build([x], options)
    objective = Objective([x], evaluate, loss_fn=None if jac else lambda: fun(x).reshape(()))
    _check_start(objective)
    # monitors first: their findings are on the result when the user's on_end sees it
    callbacks = CallbackList(monitors_for_run(monitors) + as_callbacks(callback))
    callbacks.bind(objective=objective, optimizer=optimizer)
    feed = FunctionFeed(
        objective, optimizer, stopping, record=record,
        present=lambda params: present(params[0]), method=spec.name, maximize=maximize,
    )  # fmt: skip
    engine = Engine(feed, optimizer, stopping, callbacks)
    engine.run()
    result = feed.result(engine)
    objective.closure()  # the gradient at x (cached unless the best iterate was restored)
    result.jac = present(x.grad)
    hess_inv = inverse_hessian(optimizer)
    if hess_inv is not None:
        result.hess_inv = present(hess_inv)
    engine.end(result)
    return result


#: minimize's keywords, for the nearest valid name in a misspelled keyword's error
KEYWORDS = tuple(
    name
    for name, p in inspect.signature(minimize).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY
)


def _size(x0: Any) -> int:
    """The number of variables (for SciPy's budgets of 200 n iterations); 0 if unknown
    (a bad x0 is reported later, by :func:`_as_parameter`)."""
    if isinstance(x0, Tensor):
        return x0.numel()
    try:
        return int(np.size(np.asarray(x0, dtype=np.float64)))
    except (TypeError, ValueError):
        return 0


def _as_parameter(x0: Any, device: Any) -> tuple[Tensor, Callable[[Tensor], Any]]:
    """x0 as a float leaf tensor, and the function that turns a tensor back into x0's kind."""
    if isinstance(x0, Tensor):
        x = x0.detach().clone()
        if not x.is_floating_point():
            x = x.to(torch.get_default_dtype() if x.is_complex() else torch.float64)
        home = x0.device

        def present(t: Tensor) -> Any:
            return t.detach().to(home).clone()
    else:
        try:
            array = np.asarray(x0, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"x0 must be a list, tuple, NumPy array or tensor of numbers, "
                f"got {type(x0).__name__}: {exc}"
            ) from exc
        x = torch.from_numpy(array.copy())

        def present(t: Tensor) -> Any:
            return t.detach().cpu().numpy().astype(np.float64, copy=True)

    if x.numel() == 0:
        raise ValueError("x0 is empty; it needs at least one coordinate")
    if not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).nonzero()[0].tolist()
        raise ValueError(f"x0 contains NaN or inf (first at index {bad}); give a finite start")
    if device is not None:
        x = x.to(device)
    return x.requires_grad_(True), present


def _evaluator(
    fun: Callable[..., Any], jac: Any, x: Tensor, shape: tuple[int, ...]
) -> Callable[[], Tensor]:
    """The evaluation the Objective wraps: f at x with the gradient left in ``x.grad``."""
    if not callable(fun):
        raise TypeError(f"fun must be callable, got {type(fun).__name__}")
    if jac is None or jac is False:

        def autodiff() -> Tensor:
            x.grad = None
            with torch.enable_grad():
                try:
                    value = fun(x)
                except RuntimeError as exc:
                    if "numpy()" not in str(exc):
                        raise
                    raise TypeError(_NUMPY_FUN.format(what="turned x into a NumPy array")) from exc
                if not isinstance(value, Tensor):
                    raise TypeError(
                        _NUMPY_FUN.format(what=f"returned {type(value).__name__}, not a tensor")
                    )
                _check_scalar(value)
                if not value.requires_grad:
                    raise ValueError(
                        "fun's result does not depend on x through differentiable torch "
                        "operations (it has no gradient); build it from x with torch ops, "
                        "or pass jac="
                    )
                if value.dim() != 0:  # a reshape adds a node to every backward pass
                    value = value.reshape(())
                value.backward()
            value = value.detach()
            return value if value.dtype == x.dtype else value.to(x.dtype)

        return autodiff

    if isinstance(jac, str):
        raise ValueError(
            f"jac={jac!r} asks for finite differences; descend takes none: pass jac=None "
            "(autodiff of a torch fun), a gradient function, or True"
        )
    if jac is not True and not callable(jac):
        raise TypeError(f"jac must be callable, True or None, got {type(jac).__name__}")

    def explicit() -> Tensor:
        xn = x.detach().cpu().numpy().copy()
        if jac is True:
            out = fun(xn)
            if not isinstance(out, tuple) or len(out) != 2:
                raise TypeError("with jac=True, fun must return a pair (f, gradient)")
            value, grad = out
        else:
            value, grad = fun(xn), jac(xn)
        value_t = _scalar_tensor(value, x)
        grad_a = grad.detach().cpu().numpy() if isinstance(grad, Tensor) else np.asarray(grad)
        if grad_a.size != x.numel() or (grad_a.ndim > 1 and grad_a.shape != tuple(x.shape)):
            raise ValueError(f"jac returned shape {grad_a.shape}, but x has shape {tuple(x.shape)}")
        x.grad = torch.as_tensor(grad_a.reshape(x.shape), dtype=x.dtype).to(x.device)
        return value_t

    return explicit


_NUMPY_FUN = (
    "fun {what}: without jac=, descend differentiates fun by autodiff, so "
    "fun must compute with torch operations on the tensor x it is given. For a NumPy "
    "function, pass jac= (its gradient function, or True if fun returns (f, gradient))"
)


def _check_scalar(value: Tensor) -> None:
    if value.numel() != 1:
        raise ValueError(
            f"fun must return a scalar, got a tensor of shape {tuple(value.shape)}; "
            "reduce it (e.g. .sum() or .mean())"
        )


def _scalar_tensor(value: Any, x: Tensor) -> Tensor:
    if isinstance(value, Tensor):
        _check_scalar(value)
        return value.detach().reshape(()).to(dtype=x.dtype, device=x.device)
    array = np.asarray(value, dtype=np.float64)
    if array.size != 1:
        raise ValueError(f"fun must return a scalar, got an array of shape {array.shape}")
    return torch.tensor(float(array.reshape(())), dtype=x.dtype, device=x.device)


def _check_start(objective: Objective) -> None:
    """Evaluate at x0 once, turning a failure there into a clear error."""
    try:
        value = objective.closure()
    except (TypeError, ValueError) as exc:
        raise type(exc)(str(exc)) from exc
    except Exception as exc:
        raise ValueError(f"fun raised {type(exc).__name__} at x0: {exc}") from exc
    f = value.item()
    if not math.isfinite(f):
        raise ValueError(f"fun(x0) is {f}; start from a point where f is finite")
    grad = objective.params[0].grad
    if grad is not None and not torch.isfinite(grad).all():
        raise ValueError("the gradient at x0 is not finite; start from a point where f is smooth")
