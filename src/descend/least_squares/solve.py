"""``least_squares``: nonlinear least squares with bounds and robust losses, Jacobians by
autodiff, SciPy's call and SciPy's result."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from descend.least_squares.bounds import in_bounds, strictly_feasible, unbounded
from descend.least_squares.dogbox import dogbox
from descend.least_squares.lm import levenberg_marquardt
from descend.least_squares.losses import LOSSES, LossFunction, RobustLoss
from descend.least_squares.operator import JacobianOperator
from descend.least_squares.residuals import Residuals
from descend.least_squares.result import LeastSquaresResult, Solution
from descend.least_squares.status import MESSAGES
from descend.least_squares.trf import trust_region_reflective
from descend.validation import check_choice, check_int, check_non_negative, check_positive

METHODS = ("trf", "dogbox", "lm")
TR_SOLVERS = ("exact", "lsmr")

#: SciPy's machine epsilon for the tolerance checks (float64's, whatever the run's dtype)
EPS = float(np.finfo(np.float64).eps)

#: above this many Jacobian entries (m n), ``tr_solver=None`` goes matrix-free
#: (``"lsmr"``): a dense float64 Jacobian of this size is 32 MB and its SVD takes seconds
DENSE_LIMIT = 4_000_000


def least_squares(
    residuals: Callable[..., Any],
    x0: Any,
    method: str = "trf",
    *,
    jac: Callable[..., Any] | None = None,
    bounds: Any = None,
    ftol: float | None = 1e-8,
    xtol: float | None = 1e-8,
    gtol: float | None = 1e-8,
    x_scale: Any = None,
    loss: str | Callable[[Tensor], Tensor] = "linear",
    f_scale: float = 1.0,
    max_nfev: int | None = None,
    tr_solver: str | None = None,
    args: Any = (),
    kwargs: dict[str, Any] | None = None,
    device: str | torch.device | None = None,
) -> LeastSquaresResult:
    r"""Minimize :math:`F(x) = \tfrac12 \sum_i C^2 \rho(f_i(x)^2 / C^2)` subject to
    :math:`l \le x \le u`.

    :math:`f: \mathbb{R}^n \to \mathbb{R}^m` are the residuals, :math:`\rho` the loss
    (:math:`\rho(z) = z`, ordinary least squares, by default; see
    :mod:`descend.least_squares.losses`) and :math:`C` its soft margin ``f_scale``.
    Gauss-Newton and Levenberg-Marquardt are gradient descent's nearest relatives for sums
    of squares: the step solves the model :math:`\tfrac12\|f + Jp\|^2` in a trust region,
    with :math:`J` from autodiff. SciPy's ``scipy.optimize.least_squares`` call and stopping
    rules; the statuses are SciPy's (:mod:`descend.least_squares.status`).

    Args:
        residuals: ``residuals(x, *args, **kwargs) -> f``, a tensor computed with torch ops
            (autodiff gives :math:`J`), any shape (flattened to m). With ``jac=`` it may be a
            NumPy function: it is then called with NumPy arrays when ``x0`` is not a tensor.
        x0: the start (n numbers: list, NumPy array, tensor, or a number for n = 1).
            ``res.x`` comes back as the same kind (float64 NumPy for lists and arrays).
            ``"trf"`` moves it strictly inside the bounds first.
        method: ``"trf"`` (Trust Region Reflective, the default; bounds, any m),
            ``"dogbox"`` (dogleg in a box; small bounded problems) or ``"lm"``
            (Levenberg-Marquardt as MINPACK; no bounds, m >= n, linear loss only).
        jac: ``jac(x, *args, **kwargs) -> (m, n)`` Jacobian; None: autodiff
            (``torch.func.jacfwd`` when m >= n, else ``jacrev``; matrix-free products
            with ``tr_solver="lsmr"``).
        bounds: ``(lb, ub)``, each a number or n numbers (``-inf``/``inf`` for no bound),
            or an object with ``.lb`` and ``.ub`` (``scipy.optimize.Bounds``); None: none.
            ``lb < ub`` everywhere and ``x0`` within them.
        ftol: stop when the cost falls by less than ``ftol`` times itself on a step the
            model predicted well (``"lm"``: MINPACK's relative reductions). None: off
            (not for ``"lm"``).
        xtol: stop on a small step: :math:`\|\Delta x\| <` xtol (xtol + :math:`\|x\|`)
            (``"lm"``: trust radius :math:`\Delta \le` xtol :math:`\|Dx\|`). None: off.
        gtol: stop on a small gradient: :math:`\|v \odot g\|_\infty` (``"trf"``, scaled by
            the distance to the bounds), :math:`\|g_\text{free}\|_\infty` (``"dogbox"``),
            the largest cosine between f and a column of J (``"lm"``). None: off. At least
            one tolerance must be >= machine epsilon (all three for ``"lm"``).
        x_scale: each variable's characteristic size (a positive number or n of them), or
            ``"jac"``: the inverse column norms of J, updated as the run goes. None: ``"jac"``
            for ``"lm"``, 1 otherwise (SciPy's defaults).
        loss: ``"linear"``, ``"soft_l1"``, ``"huber"``, ``"cauchy"``, ``"arctan"``, or
            ``loss(z) -> (3, m)`` tensor of :math:`\rho, \rho', \rho''` at z.
        f_scale: the soft margin :math:`C > 0` between inlier and outlier residuals.
        max_nfev: budget of residual evaluations (default 100 n); Jacobian evaluations
            are counted apart (``njev``).
        tr_solver: ``"exact"`` (dense J, an SVD per iteration) or ``"lsmr"`` (only
            products with J: matrix-free with autodiff, an inner CGLS solve and a 2-D
            trust-region step); None: ``"exact"`` unless m n > 4e6 with autodiff.
            ``"trf"`` and ``"dogbox"`` only.
        args, kwargs: extra arguments for ``residuals`` and ``jac``.
        device: where to run; default: where ``x0`` lives (CPU for NumPy).

    Returns:
        :class:`~descend.least_squares.result.LeastSquaresResult` (``x, cost, fun, jac,
        grad, optimality, active_mask, nfev, njev, status, message, success``), also a
        mapping as SciPy's.

    Example:
        >>> res = descend.least_squares(lambda x: torch.stack([10 * (x[1] - x[0]**2), 1 - x[0]]),
        ...                             [-1.2, 1.0], "lm")
        >>> res.x, res.status  # (array([1., 1.]), 1)
    """
    start = time.perf_counter()
    check_choice("method", method, METHODS)
    if tr_solver is not None:
        check_choice("tr_solver", tr_solver, TR_SOLVERS)
    if method == "lm" and tr_solver == "lsmr":
        raise ValueError("tr_solver='lsmr' is for method 'trf' or 'dogbox'; 'lm' factors J")
    ftol, xtol, gtol = _tolerances(ftol, xtol, gtol, method)
    robust = _loss(loss, f_scale, method)
    if max_nfev is not None:
        max_nfev = check_int("max_nfev", max_nfev, low=1)
    x, present = _start(x0, device)
    n = x.numel()
    lb, ub = _bounds(bounds, x, method)
    scale = _x_scale(x_scale, x, method)
    if jac is not None and not callable(jac):
        raise TypeError(f"jac must be callable or None (autodiff), got {type(jac).__name__}")
    fun, jac_fun = _bind(residuals, jac, args, kwargs, x, numpy=not isinstance(x0, Tensor))
    if method == "trf":
        x = strictly_feasible(x, lb, ub)
    f0 = _first_residuals(fun, x)
    m = f0.numel()
    if method == "lm" and m < n:
        raise ValueError(
            f"method 'lm' needs at least as many residuals as variables, got m={m} < n={n}; "
            "use method='trf'"
        )
    if robust is not None:
        robust.cost(f0)  # a user's loss of the wrong shape fails here, before the run
    if tr_solver is None:
        tr_solver = "lsmr" if jac_fun is None and m * n > DENSE_LIMIT else "exact"
    matrix_free = tr_solver == "lsmr" and jac_fun is None
    if matrix_free and isinstance(scale, str):
        raise ValueError(
            "x_scale='jac' needs the Jacobian's columns, which a matrix-free run "
            "(tr_solver='lsmr' without jac=) never forms; give x_scale as numbers"
        )
    problem = Residuals(fun, jac_fun, matrix_free=matrix_free)
    problem.nfev = 1  # f0
    tolerances: dict[str, Any] = dict(ftol=ftol, xtol=xtol, gtol=gtol, max_nfev=max_nfev or 100 * n)
    x_scale_t = None if isinstance(scale, str) else scale
    solution: Solution
    if method == "lm":
        solution = levenberg_marquardt(problem, x, f0, x_scale=x_scale_t, **tolerances)
    else:
        solver = trust_region_reflective if method == "trf" else dogbox
        solution = solver(
            problem, x, f0, lb, ub, x_scale=x_scale_t, loss=robust, tr_solver=tr_solver,
            **tolerances,
        )  # fmt: skip
    jac_out = solution.jac
    return LeastSquaresResult(
        x=present(solution.x),
        cost=solution.cost,
        fun=present(solution.fun),
        jac=jac_out if isinstance(jac_out, JacobianOperator) else present(jac_out),
        grad=present(solution.grad),
        optimality=solution.optimality,
        active_mask=present(solution.active_mask),
        nfev=problem.nfev,
        njev=problem.njev,
        status=solution.status,
        message=MESSAGES[solution.status],
        method=method,
        time=time.perf_counter() - start,
    )


def _tolerances(ftol: Any, xtol: Any, gtol: Any, method: str) -> tuple[float, float, float]:
    """ftol, xtol, gtol as floats (None: 0, off), with SciPy's floor at machine epsilon."""
    values = {}
    for name, value in (("ftol", ftol), ("xtol", xtol), ("gtol", gtol)):
        values[name] = 0.0 if value is None else check_non_negative(name, value)
    if method == "lm":
        low = [name for name, value in values.items() if value < EPS]
        if low:
            raise ValueError(
                f"method 'lm' needs ftol, xtol and gtol >= machine epsilon ({EPS:.2e}); "
                f"{', '.join(f'{k}={values[k]!r}' for k in low)}"
            )
    elif all(value < EPS for value in values.values()):
        raise ValueError(
            f"at least one of ftol, xtol, gtol must be >= machine epsilon ({EPS:.2e}), "
            f"got ftol={values['ftol']!r}, xtol={values['xtol']!r}, gtol={values['gtol']!r}"
        )
    return values["ftol"], values["xtol"], values["gtol"]


def _loss(loss: Any, f_scale: Any, method: str) -> RobustLoss | None:
    """The robust loss (None for linear), checked."""
    f_scale = check_positive("f_scale", f_scale)
    if callable(loss):
        user = loss

        def function(z: Tensor, /) -> tuple[Tensor, Tensor, Tensor]:
            values = torch.as_tensor(user(z), dtype=z.dtype, device=z.device)
            if tuple(values.shape) != (3, z.numel()):
                raise ValueError(
                    f"loss(z) must return shape (3, m) = (3, {z.numel()}) (rho, rho', rho''), "
                    f"got {tuple(values.shape)}"
                )
            return values[0], values[1], values[2]

    else:
        if not isinstance(loss, str):
            raise TypeError(f"loss must be a name or a callable, got {type(loss).__name__}")
        check_choice("loss", loss, tuple(LOSSES))
        if loss == "linear":
            return None
        function = cast(LossFunction, LOSSES[loss])  # only "linear" maps to None
    if method == "lm":
        raise ValueError(f"method 'lm' takes only loss='linear', got loss={loss!r}")
    return RobustLoss(function, f_scale)


def _start(x0: Any, device: Any) -> tuple[Tensor, Callable[[Tensor], Any]]:
    """x0 as a 1-D float tensor, and the function that gives results back as x0's kind."""
    if isinstance(x0, Tensor):
        if x0.is_complex():
            raise ValueError("x0 must be real; split a complex x0 into real and imaginary parts")
        x = x0.detach().clone()
        if not x.is_floating_point():
            x = x.to(torch.float64)
        home = x0.device

        def present(t: Tensor) -> Any:
            return t.detach().to(home).clone()
    else:
        if np.iscomplexobj(x0):
            raise ValueError("x0 must be real; split a complex x0 into real and imaginary parts")
        try:
            array = np.asarray(x0, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"x0 must be a number, list, NumPy array or tensor of numbers, "
                f"got {type(x0).__name__}: {exc}"
            ) from exc
        x = torch.from_numpy(array.copy())

        def present(t: Tensor) -> Any:
            out = t.detach().cpu().numpy()
            return out.copy() if out.dtype == np.int64 else out.astype(np.float64, copy=True)

    if x.ndim > 1:
        raise ValueError(f"x0 must have at most one dimension, got shape {tuple(x.shape)}")
    x = x.reshape(-1)
    if x.numel() == 0:
        raise ValueError("x0 is empty; it needs at least one coordinate")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x0 contains NaN or inf; give a finite start")
    if device is not None:
        x = x.to(device)
    return x, present


def _bounds(bounds: Any, x: Tensor, method: str) -> tuple[Tensor, Tensor]:
    """``(lb, ub)`` as tensors of x's shape, checked."""
    n = x.numel()
    if bounds is None:
        lb, ub = -math.inf, math.inf
    elif hasattr(bounds, "lb") and hasattr(bounds, "ub"):
        lb, ub = bounds.lb, bounds.ub
    else:
        try:
            lb, ub = bounds
        except (TypeError, ValueError):
            raise ValueError(
                f"bounds must be (lb, ub), each a number or {n} numbers, got {bounds!r}"
            ) from None
    sides = []
    for name, side in (("lower", lb), ("upper", ub)):
        try:
            t = torch.as_tensor(np.asarray(side, dtype=np.float64), dtype=x.dtype)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"bounds: the {name} bound must be numbers: {exc}") from exc
        if t.ndim == 0:
            t = t.expand(n)
        if tuple(t.shape) != (n,):
            raise ValueError(
                f"bounds: the {name} bound has shape {tuple(t.shape)}; x0 has {n} "
                "coordinates (give a number or one per coordinate)"
            )
        if bool(torch.isnan(t).any()):
            raise ValueError(f"bounds: the {name} bound contains NaN")
        sides.append(t.to(x.device).clone())
    lb_t, ub_t = sides
    if bool((lb_t >= ub_t).any()):
        i = int((lb_t >= ub_t).nonzero()[0])
        raise ValueError(
            f"bounds: each lower bound must be < its upper bound; coordinate {i} has "
            f"lb={float(lb_t[i])!r} >= ub={float(ub_t[i])!r}"
        )
    if method == "lm" and not unbounded(lb_t, ub_t):
        raise ValueError("method 'lm' does not take bounds; use method='trf' or 'dogbox'")
    if not in_bounds(x, lb_t, ub_t):
        i = int(((x < lb_t) | (x > ub_t)).nonzero()[0])
        raise ValueError(
            f"x0 is outside bounds: x0[{i}] = {float(x[i])!r} is not in "
            f"[{float(lb_t[i])!r}, {float(ub_t[i])!r}]"
        )
    return lb_t, ub_t


def _x_scale(x_scale: Any, x: Tensor, method: str) -> Tensor | str:
    """The variables' scale as a tensor, or ``"jac"``."""
    if x_scale is None:
        x_scale = "jac" if method == "lm" else 1.0
    if isinstance(x_scale, str):
        if x_scale != "jac":
            raise ValueError(f"x_scale must be 'jac' or positive numbers, got {x_scale!r}")
        return x_scale
    try:
        scale = torch.as_tensor(np.asarray(x_scale, dtype=np.float64), dtype=x.dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"x_scale must be 'jac' or positive numbers: {exc}") from exc
    if scale.ndim == 0:
        scale = scale.expand(x.numel())
    if tuple(scale.shape) != (x.numel(),):
        raise ValueError(f"x_scale has shape {tuple(scale.shape)}; x0 has {x.numel()} coordinates")
    if not bool((torch.isfinite(scale) & (scale > 0)).all()):
        raise ValueError(f"x_scale must be positive and finite, got {x_scale!r}")
    return scale.to(x.device).clone()


def _bind(
    residuals: Any,
    jac: Any,
    args: Any,
    kwargs: dict[str, Any] | None,
    x: Tensor,
    *,
    numpy: bool,
) -> tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor] | None]:
    """``residuals`` and ``jac`` as functions of a tensor returning tensors."""
    if not callable(residuals):
        raise TypeError(f"residuals must be callable, got {type(residuals).__name__}")
    if not isinstance(args, tuple):
        args = (args,)
    if kwargs is not None and not isinstance(kwargs, dict):
        raise TypeError(f"kwargs must be a dict, got {type(kwargs).__name__}")
    kwargs = kwargs or {}
    dtype, device = x.dtype, x.device
    through_numpy = numpy and jac is not None

    def call(function: Callable[..., Any], t: Tensor) -> Any:
        if through_numpy:
            return function(t.detach().cpu().numpy(), *args, **kwargs)
        return function(t, *args, **kwargs)

    def fun(t: Tensor) -> Tensor:
        out = call(residuals, t)
        if not isinstance(out, Tensor):
            if jac is None:
                raise TypeError(_NUMPY_RESIDUALS.format(kind=type(out).__name__))
            out = torch.as_tensor(np.asarray(out, dtype=np.float64), device=device)
        return out.reshape(-1).to(dtype)

    if jac is None:
        return fun, None

    def jacobian(t: Tensor) -> Tensor:
        out = call(jac, t)
        if not isinstance(out, Tensor):
            out = torch.as_tensor(np.asarray(out, dtype=np.float64), device=device)
        return out.to(dtype)

    return fun, jacobian


_NUMPY_RESIDUALS = (
    "residuals returned {kind}, not a tensor: without jac=, descend differentiates the "
    "residuals by autodiff, so they must be computed with torch operations on the tensor x "
    "they are given. For a NumPy function, pass jac= (its Jacobian function)"
)


def _first_residuals(fun: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """f(x0), with a failure there turned into a clear error."""
    try:
        f0 = fun(x)
    except RuntimeError as exc:
        if "numpy()" in str(exc):
            raise TypeError(_NUMPY_RESIDUALS.format(kind="a NumPy array")) from exc
        raise ValueError(f"residuals raised RuntimeError at x0: {exc}") from exc
    if f0.numel() == 0:
        raise ValueError("residuals returned no values at x0; it must return m >= 1 residuals")
    if not bool(torch.isfinite(f0).all()):
        raise ValueError("residuals are not finite at x0; start where they are")
    return f0
