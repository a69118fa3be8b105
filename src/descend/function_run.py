"""One run of the engine on one function: x0 as a parameter, fun (and jac) as the
objective, the function feed, and the result in the caller's kinds. ``minimize`` calls it
for a single start, ``multistart`` for each start it runs one by one."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from descend.callbacks import CallbackList, as_callbacks
from descend.constraints import Constraint, as_constraint
from descend.engine import Engine, FunctionFeed, StoppingCriteria
from descend.engine.step_controls import StepControls
from descend.methods import METHODS, Method, get_method
from descend.monitors import monitors_for_run
from descend.objective import Objective
from descend.optim.capabilities import capabilities
from descend.result import OptimizeResult
from descend.scipy_form import Call, inverse_hessian
from descend.validation import check_device

#: the method ``minimize`` and ``multistart`` use when none is named
DEFAULT_METHOD = "lbfgs"


def run_function(
    fun: Callable[..., Any],
    x0: Any,
    call: Call,
    *,
    jac: Any = None,
    callback: Any = None,
    monitors: Any = "default",
    record: bool = False,
    device: Any = None,
    bounds: Any = None,
    controls: Callable[[torch.optim.Optimizer], StepControls] | None = None,
) -> OptimizeResult:
    """Minimize ``fun`` from ``x0`` by the method, options and stopping rules of ``call``
    (:func:`descend.scipy_form.translate`); ``fun`` and ``jac`` take x alone (SciPy's
    ``args`` already bound). ``controls`` builds, from the optimizer, the gradient clipping
    and learning-rate schedule around each step (``minimize``'s ``schedule=``,
    ``clip_grad_norm=``, ``clip_grad_value=``). See :func:`descend.minimize` for the
    other arguments."""
    method, options = call.method, call.options
    spec = get_method(method)
    x, present = _as_parameter(x0, device)
    constraint = as_constraint(bounds, n=x.numel())
    moved = 0.0
    if constraint is not None:
        options, project_steps = _bounded_options(spec, options, constraint)
        moved = constraint.projected_gradient(x, torch.zeros_like(x)).norm().item()
        # a feasible x0 can move by rounding (a simplex's sum of n terms): not a move
        rounding = x.numel() * torch.finfo(x.dtype).eps * max(1.0, x.abs().max().item())
        moved = moved if moved > rounding else 0.0
        constraint.project_(x)
    evaluate = _evaluator(fun, jac, x, tuple(x0.shape) if isinstance(x0, Tensor) else x.shape)
    stopping = StoppingCriteria(**call.stopping)
    maximize = bool(options.get("maximize", False))
    if maximize and stopping.target is not None:  # the loop reads -f: f >= target
        stopping = replace(stopping, target=-stopping.target)
    optimizer = spec.build([x], options)
    if constraint is not None and maximize:
        raise ValueError("bounds= with maximize=True is not supported; minimize -f instead")
    if constraint is not None and capabilities(optimizer).proximal:
        raise ValueError(
            f"bounds= cannot combine with {spec.name}'s proximal (L1) step; drop one of them"
        )
    objective = Objective([x], evaluate, loss_fn=None if jac else lambda: fun(x).reshape(()))
    _check_start(objective)
    # monitors first: their findings are on the result when the user's on_end sees it
    # the saddle monitor reads the unconstrained Hessian: at a minimum on a bound, negative
    # curvature along a direction the bound blocks is no saddle
    off = {"off": ["saddle"]} if constraint is not None else {}
    callbacks = CallbackList(monitors_for_run(monitors, **off) + as_callbacks(callback))
    callbacks.bind(objective=objective, optimizer=optimizer)
    feed = FunctionFeed(
        objective, optimizer, stopping, record=record,
        present=lambda params: present(params[0]), method=spec.name, maximize=maximize,
        constraint=constraint, project_steps=constraint is not None and project_steps,
        controls=None if controls is None else controls(optimizer),
    )  # fmt: skip
    engine = Engine(feed, optimizer, stopping, callbacks)
    engine.run()
    result = feed.result(engine)
    objective.closure()  # the gradient at x (cached unless the best iterate was restored)
    result.jac = present(cast(Tensor, x.grad))  # the closure just set it
    hess_inv = inverse_hessian(optimizer)
    if hess_inv is not None:
        result.hess_inv = present(hess_inv)
    if constraint is not None:
        result.message = _bounded_message(result.message, constraint, x, moved)
    engine.end(result)
    return result


def keeps_bounds(spec: Method) -> bool:
    """Whether the method honours ``bounds=``: its rule keeps the iterates feasible itself
    (it takes ``bounds``: ``lbfgs``), or the feed projects after each step (a rule that does
    not re-evaluate f inside its step: every first-order rule)."""
    return "bounds" in spec.options() or not capabilities(spec.optimizer).needs_fixed_batch


def bounded_methods() -> list[str]:
    """The names of the methods that honour ``bounds=`` (:func:`keeps_bounds`)."""
    return [name for name, spec in METHODS.items() if keeps_bounds(spec)]


def _bounded_options(
    spec: Method, options: dict[str, Any], constraint: Constraint
) -> tuple[dict[str, Any], bool]:
    """The optimizer's options with the set, and whether the feed projects each step: a
    rule that takes ``bounds`` keeps its iterates feasible; a rule that does not
    re-evaluate f inside its step is projected after it; any other (a line search or
    trust region through infeasible points, curvature pairs broken by the projection)
    cannot honour the set."""
    if "bounds" in spec.options():
        return {**options, "bounds": constraint}, False
    if capabilities(spec.optimizer).needs_fixed_batch:
        raise ValueError(
            f"method {spec.name!r} cannot keep x within bounds (its line search or trust "
            f"region would step outside them); methods that can: {', '.join(bounded_methods())}"
        )
    return options, True


def _bounded_message(message: str, constraint: Constraint, x: Tensor, moved: float) -> str:
    """The message with where x ended on the set, and whether x0 had to be moved onto it."""
    at_bound = int((constraint.active(x) != 0).sum())
    message = message.rstrip(".") + f"; {at_bound} of {x.numel()} coordinates at a bound"
    if moved > 0:
        message += f"; x0 was outside the bounds and was projected onto them (moved {moved:.3g})"
    return message


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
        x = x.to(check_device(device))
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
