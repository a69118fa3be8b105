"""A race: every racer runs from the same start on the same landscape, recorded step by
step, with the Python code that reproduces it, and gives exactly the numbers of its own
``descend.minimize`` run. The racers whose rules take one gradient per step run together
as rows of one feed (:mod:`descend.playground.rows_race`); line searches and second-order
rules, and every racer of a race with gradient noise, run through ``minimize`` one by one.

Gradient noise of standard deviation sigma makes a racer's descent stochastic the way a
mini-batch gradient is: f is exact, its gradient is :math:`\\nabla f(x) + \\sigma\\xi`,
:math:`\\xi \\sim N(0, I)` drawn from a generator seeded per racer, so every racer sees
the same noise sequence and a race with the same seed gives the same numbers.

Example:
    >>> from descend.playground.landscape import get_landscape
    >>> from descend.playground.race import Racer, race
    >>> land = get_landscape(problem="rosenbrock")
    >>> adam = Racer("adam", {"lr": 0.05}, schedule="cosine", clip_grad_norm=10.0)
    >>> runs = race(land, (-1.2, 1.0), [adam], steps=100)
    >>> len(runs[0]["x"]) == runs[0]["nit"] + 1  # the iterates, the start first
    True
    >>> print(runs[0]["code"].splitlines()[-3])  # the minimize call that reproduces them
    res = descend.minimize(f, [-1.2, 1.0], 'adam', ..., schedule='cosine', clip_grad_norm=10.0)
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from descend.methods import METHODS, Method, get_method
from descend.minimize import first_order, minimize
from descend.optim import capabilities
from descend.playground.json_values import diagnoses_json, finite, finite_lists
from descend.playground.landscape import Landscape
from descend.playground.monitor_replay import path_gradients
from descend.playground.rows_race import Racer, batchable, run_rows_race
from descend.result import OptimizeResult

__all__ = [
    "MAX_RACERS",
    "MAX_STEPS",
    "RACE_MAX_TIME",
    "Racer",
    "RacerError",
    "StartError",
    "gradients",
    "method_table",
    "race",
    "race_code",
    "with_gradient_noise",
]

#: bounds on one race request: racers, steps per racer, seconds per racer
MAX_RACERS = 8
MAX_STEPS = 5000
RACE_MAX_TIME = 5.0

# options of an optimizer that are about how it runs, not what it does: not offered
_HIDDEN = {"foreach", "fused", "capturable", "differentiable", "maximize"}


def with_gradient_noise(
    fn: Callable[[Tensor], Tensor], sigma: float, seed: int
) -> Callable[[Tensor], Tensor]:
    """``fn`` with N(0, sigma^2) noise added to its gradient (not to its value), drawn
    from a generator seeded with ``seed`` at each evaluation."""
    generator = torch.Generator().manual_seed(seed)

    def noisy(x: Tensor) -> Tensor:
        noise = sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype)
        return fn(x) + (noise * (x - x.detach())).sum()

    return noisy


def race(
    land: Landscape,
    start: Sequence[float],
    racers: Sequence[Racer],
    *,
    steps: int = 200,
    noise: float = 0.0,
    seed: int = 0,
) -> list[dict[str, Any]]:
    r"""Run every racer from ``start`` for at most ``steps`` iterations.

    Returns, per racer: ``method``, ``options``, ``x`` (the iterates, start first), ``f``,
    ``grad_norm`` (per iterate; None where not finite), ``grad`` (the exact gradient at
    each iterate, without the noise), ``velocity`` and ``scale`` (the momentum buffer or
    first moment, and :math:`1/(\sqrt{v} + \epsilon)` per coordinate, after each step;
    None where the rule keeps none or the racer ran through ``minimize``), ``status``,
    ``message``, ``converged``, ``nit``, ``nfev``, ``fun``, ``diagnoses`` (what the health
    monitors found, in words) and ``code`` (a Python snippet calling ``descend.minimize``
    that reproduces the run).

    Raises:
        RacerError: for the first racer whose method or options are refused.
        StartError: where f or its gradient is not finite at the start.
    """
    start = _check_start(start)
    runners = [
        replace(
            racer,
            options={k: tuple(v) if isinstance(v, list) else v for k, v in racer.options.items()},
        )
        for racer in racers
    ]
    for i, racer in enumerate(racers):
        try:
            _check_options(racer)
        except ValueError as exc:
            raise RacerError(i, f"{racer.method}: {_one_line(exc)}") from None
    results: dict[int, OptimizeResult] = {}
    motions: dict[int, dict[str, np.ndarray]] = {}
    together = [i for i, r in enumerate(racers) if noise == 0 and batchable(r.method)]
    if together:
        _check_landscape_at(land, start)
        try:
            runs = run_rows_race(
                land.fn, start, [runners[i] for i in together],
                steps=steps, max_time=RACE_MAX_TIME,
                on_refused=lambda k, exc: RacerError(
                    together[k], f"{racers[together[k]].method}: {_one_line(exc)}"
                ),
            )  # fmt: skip
        except RacerError:
            raise
        except Exception:  # a rule failed in a shared step: alone, its error names it
            runs = []
        for i, (result, motion) in zip(together, runs):
            results[i], motions[i] = result, motion
    for i, racer in enumerate(racers):
        if i in results:
            continue
        fun = land.fn if noise == 0 else with_gradient_noise(land.fn, noise, seed)
        try:
            results[i] = minimize(
                fun, list(start), racer.method, max_iter=steps, record=True,
                max_time=RACE_MAX_TIME, **runners[i].options, **racer.step_keywords(),
            )  # fmt: skip
        except Exception as exc:  # a racer's method or options refused: the request's fault
            raise RacerError(i, f"{racer.method}: {_one_line(exc)}") from None
    reports = []
    for i, racer in enumerate(racers):
        history = results[i].history.as_dict()
        reports.append(
            _report(
                results[i],
                history,
                racer,
                race_code(land, start, racer, steps, noise, seed),
                gradients(land.fn, history["x"]),
                motions.get(i, {}),
            )
        )
    return reports


def _check_landscape_at(land: Landscape, start: tuple[float, float]) -> None:
    """f and its gradient finite at the start, as ``minimize`` checks them."""
    x = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        value = land.fn(x)
        value.backward()
    assert x.grad is not None
    if not (math.isfinite(value.item()) and bool(torch.isfinite(x.grad).all())):
        raise StartError(
            f"f or its gradient is not finite at the start {list(start)}; "
            "start from a point where f is finite and smooth"
        )


class StartError(ValueError):
    """The start is a point where the landscape has no finite value or gradient."""


def _check_options(racer: Racer) -> None:
    """Only the method's own options: minimize's keywords (``restarts``, ``max_time``)
    would change the work a request asks for, not the rule it races."""
    method = get_method(racer.method)
    valid = _offered(method)
    unknown = sorted(set(racer.options) - valid)
    if unknown:
        raise ValueError(
            f"method {method.name!r} has no option {', '.join(map(repr, unknown))}; "
            f"its options: {', '.join(sorted(valid)) or 'none'}"
        )


def _offered(method: Method) -> set[str]:
    """The options a racer may set: the optimizer's, less the fixed and the hidden ones."""
    return method.options() - set(method.fixed) - _HIDDEN


class RacerError(ValueError):
    """A racer's run was refused (unknown method, bad option); ``index`` says which."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if isinstance(exc, (ValueError, TypeError)) else f"{type(exc).__name__}: {text}"


def gradients(fn: Callable[[Tensor], Tensor], points: np.ndarray) -> list[list[float | None]]:
    """The exact gradient of ``fn`` at every point of ``points`` (shape ``(T, 2)``), in one
    batched autodiff call (:func:`~descend.playground.monitor_replay.path_gradients`):
    what the arrows at each step of the page show."""
    path = torch.as_tensor(points, dtype=torch.float64)
    return finite_lists(path_gradients(fn, path).numpy())


def _report(
    res: OptimizeResult,
    history: dict[str, np.ndarray],
    racer: Racer,
    code: str,
    grad: list[list[float | None]],
    motion: dict[str, np.ndarray],
) -> dict[str, Any]:
    return {
        **{
            name: finite_lists(motion[name]) if name in motion else None
            for name in ("velocity", "scale")
        },
        "method": racer.method,
        "options": racer.options,
        "schedule": racer.schedule,
        "clip_grad_norm": racer.clip_grad_norm,
        "lr": finite_lists(history["lr"]),
        "x": finite_lists(history["x"]),
        "grad": grad,
        "f": finite_lists(history["f"]),
        "grad_norm": finite_lists(history["grad_norm"]),
        "status": res.status.value,
        "message": res.message,
        "converged": res.converged,
        "nit": res.nit,
        "nfev": res.nfev,
        "fun": finite(res.fun),
        "diagnoses": diagnoses_json(res.diagnoses),
        "code": code,
    }


def _check_start(start: Sequence[float]) -> tuple[float, float]:
    try:
        point = tuple(float(v) for v in start)
    except (TypeError, ValueError):
        raise ValueError(f"start must be two numbers [x, y], got {start!r}") from None
    if len(point) != 2 or not all(math.isfinite(v) for v in point):
        raise ValueError(f"start must be two finite numbers [x, y], got {start!r}")
    return point


def race_code(
    land: Landscape,
    start: Sequence[float],
    racer: Racer,
    steps: int,
    noise: float = 0.0,
    seed: int = 0,
) -> str:
    """The Python code that reproduces one racer's run with ``descend.minimize``."""
    lines = ["import descend"]
    if land.formula is not None:
        lines += [
            "from descend.playground.formula import parse_formula",
            "",
            f"f = parse_formula({land.formula!r})",
        ]
    elif land.rest:
        lines += [
            "import torch",
            "from descend.problems import get_problem",
            "",
            f"problem = get_problem({land.name!r})",
            f"rest = torch.tensor({list(land.rest)!r}, dtype=torch.float64)",
            "",
            "",
            "def f(x):",
            "    # the slice through the minimum: coordinates 3.. held at `rest`",
            "    return problem(torch.cat([x, rest.to(x.dtype).expand(*x.shape[:-1], "
            "rest.numel())], dim=-1))",
        ]
    else:
        lines += ["from descend.problems import get_problem", "", f"f = get_problem({land.name!r})"]
    fun = "f"
    if noise:
        if "import torch" not in lines:
            lines.insert(1, "import torch")
        lines += [
            *([""] if land.rest else []),  # two blank lines after the def of f
            "",
            f"sigma, generator = {noise!r}, torch.Generator().manual_seed({seed!r})",
            "",
            "",
            "def noisy(x):",
            "    # the gradient gets N(0, sigma^2) noise; the value stays f(x)",
            "    noise = sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype)",
            "    return f(x) + (noise * (x - x.detach())).sum()",
        ]
        fun = "noisy"
    options = "".join(
        f", {k}={tuple(v) if isinstance(v, list) else v!r}"
        for k, v in {**racer.options, **racer.step_keywords()}.items()
    )
    lines += [
        *([""] if fun == "noisy" or land.rest else []),
        "",
        f"res = descend.minimize({fun}, {list(start)!r}, {racer.method!r}, max_iter={steps}, "
        f"record=True{options})",
        "print(res)",
        'trajectory = res.history["x"]  # the iterates, the start first',
    ]
    return "\n".join(lines) + "\n"


def method_table() -> list[dict[str, Any]]:
    """Every method: name, summary, whether it is elementwise, whether it is first order
    (it takes a schedule and gradient clipping) and the options a racer may set with their
    defaults (JSON values: tuples as lists)."""
    return [_describe(m) for m in METHODS.values()]


def _describe(method: Method) -> dict[str, Any]:
    sig = inspect.signature(method.optimizer.__init__).parameters
    options = []
    for name in sorted(_offered(method)):
        default = method.defaults.get(name, sig[name].default)
        if default is inspect.Parameter.empty:
            default = None
        value = _json_value(default)
        if value is not _UNSHOWN:
            options.append({"name": name, "default": value})
    return {
        "name": method.name,
        "summary": method.summary,
        "elementwise": capabilities(method.optimizer).elementwise,
        "first_order": first_order(method),
        "options": options,
    }


_UNSHOWN = object()


def _json_value(value: Any) -> Any:
    """``value`` as JSON (tuples as lists), or _UNSHOWN when JSON cannot hold it."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _UNSHOWN
    if isinstance(value, tuple):
        items = [_json_value(v) for v in value]
        return _UNSHOWN if any(v is _UNSHOWN for v in items) else items
    return _UNSHOWN
