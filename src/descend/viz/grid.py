"""Methods against learning rates: a grid of final losses, or small multiples of curves."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from descend.viz.series import check_dpi, check_figsize, curve_of, save

__all__ = ["compare_grid", "plot_grid", "run_grid"]

_KINDS = ("final", "curves")


def run_grid(
    fun_or_problem: Any,
    methods: Sequence[str],
    lrs: Sequence[float],
    *,
    x0: Any = None,
    max_iter: int = 500,
    **options: Any,
) -> dict[tuple[str, float], Any]:
    """Run ``minimize`` for every method and learning rate; ``{(method, lr): result}``.

    Args:
        fun_or_problem: a :class:`descend.problems.Problem`, a problem's name
            (``"rosenbrock"``) or a function as ``minimize`` takes it.
        methods: method names, each with a learning rate (``gd``, ``momentum``, ``adam``,
            ...), at least one, no repeats.
        lrs: learning rates, each > 0, at least one, no repeats.
        x0: the start; default: the problem's standard start (required for a function).
        max_iter: iteration budget of each run, an integer >= 1.
        **options: passed to every run (``momentum=0.5``, ``gtol=1e-8``, ``monitors=None``).

    Example:
        >>> runs = run_grid("rosenbrock", ["gd", "adam"], [1e-3, 1e-2], max_iter=50)
    """
    from descend.methods import get_method
    from descend.minimize import minimize
    from descend.problems import Problem, get_problem

    fun: Callable[..., Any] | Problem = fun_or_problem
    if isinstance(fun_or_problem, str):
        fun = get_problem(fun_or_problem)
    if isinstance(fun, Problem):
        x0 = list(fun.start) if x0 is None else x0
    elif not callable(fun):
        raise TypeError(
            f"fun_or_problem must be a Problem, a problem's name or a function, got "
            f"{type(fun_or_problem).__name__}"
        )
    elif x0 is None:
        raise ValueError("x0 is required when fun_or_problem is a function")
    methods = _unique("methods", [str(m) for m in methods])
    for name in methods:
        if "lr" not in get_method(name).options():
            raise ValueError(f"method {name!r} in methods has no learning rate to vary")
    rates = _unique("lrs", [_rate(r) for r in lrs])
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    if "lr" in options:
        raise ValueError("lr is what the grid varies; give lrs= instead")
    return {
        (name, rate): minimize(fun, x0, name, lr=rate, max_iter=max_iter, **options)
        for name in methods
        for rate in rates
    }


def compare_grid(
    fun_or_problem: Any,
    methods: Sequence[str],
    lrs: Sequence[float],
    path: str | os.PathLike[str] | None = None,
    *,
    kind: str = "final",
    x0: Any = None,
    max_iter: int = 500,
    title: str | None = None,
    dpi: int = 130,
    **options: Any,
) -> Figure:
    """Run every method at every learning rate (:func:`run_grid`) and draw the grid
    (:func:`plot_grid`).

    Args:
        fun_or_problem, methods, lrs, x0, max_iter, **options: as for :func:`run_grid`.
        path: where to save the figure; None: only return it.
        kind: ``"final"`` (a heatmap of final losses) or ``"curves"`` (small multiples).
        title: the figure title; default: the problem's name.
        dpi: resolution of a saved raster image, an integer >= 1.

    Returns:
        the matplotlib ``Figure``.

    Example:
        >>> compare_grid("rosenbrock", ["gd", "adam"], [1e-3, 1e-2], "grid.png", max_iter=50)
        ... # doctest: +ELLIPSIS
        <Figure size ...>
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {', '.join(_KINDS)}, got {kind!r}")
    check_dpi(dpi)
    results = run_grid(fun_or_problem, methods, lrs, x0=x0, max_iter=max_iter, **options)
    name = getattr(
        fun_or_problem, "name", fun_or_problem if isinstance(fun_or_problem, str) else ""
    )
    f_min = getattr(_problem(fun_or_problem), "f_min", None)
    if title is None and name:
        title = f"{name}: methods × learning rates"
    return plot_grid(
        results,
        path,
        kind=kind,
        f_min=f_min if f_min is not None and math.isfinite(f_min) else None,
        title=title,
        dpi=dpi,
    )


def plot_grid(
    results: Mapping[tuple[str, float], Any],
    path: str | os.PathLike[str] | None = None,
    *,
    kind: str = "final",
    f_min: float | None = None,
    title: str | None = None,
    dpi: int = 130,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    r"""Draw runs keyed by ``(method, lr)`` as a grid: methods in rows, rates in columns.

    ``kind="final"``: a heatmap of each run's final loss (:math:`f - f^*` when ``f_min``
    is given; log color scale), the value written in each cell, and diverged runs
    marked "diverged". ``kind="curves"``: one small loss-curve panel per cell, sharing
    their axes. Drawn from the results' histories only.

    Args:
        results: ``{(method, lr): run}`` (what :func:`run_grid` returns).
        path: where to save the figure; None: only return it.
        kind: ``"final"`` or ``"curves"``.
        f_min: subtract this :math:`f^*` from every loss.
        title: the figure title.
        dpi: resolution of a saved raster image, an integer >= 1.
        figsize: (width, height) in inches; default: grows with the grid.

    Returns:
        the matplotlib ``Figure``.

    Example:
        >>> plot_grid(run_grid("beale", ["gd", "adam"], [1e-3, 1e-2], max_iter=50), "grid.png")
        ... # doctest: +ELLIPSIS
        <Figure size ...>
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {', '.join(_KINDS)}, got {kind!r}")
    dpi = check_dpi(dpi)
    if not isinstance(results, Mapping) or not results:
        raise ValueError("results must be a non-empty mapping {(method, lr): result}")
    for key in results:
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ValueError(f"results keys must be (method, lr) pairs, got {key!r}")
    methods = list(dict.fromkeys(str(m) for m, _ in results))
    rates = sorted({float(r) for _, r in results})
    curves = {
        (str(m), float(r)): curve_of(run, f"{m}, lr={r:g}") for (m, r), run in results.items()
    }
    finals = {
        (str(m), float(r)): _final(run, curves[str(m), float(r)]) for (m, r), run in results.items()
    }
    shift = 0.0 if f_min is None else float(f_min)
    if kind == "final":
        size = figsize or (1.6 + 1.25 * len(rates), 1.4 + 0.6 * len(methods))
        fig = Figure(figsize=check_figsize(size), layout="constrained")
        _final_grid(fig, methods, rates, curves, finals, shift, f_min is not None)
    else:
        size = figsize or (1.0 + 2.3 * len(rates), 0.8 + 1.8 * len(methods))
        fig = Figure(figsize=check_figsize(size), layout="constrained")
        _curve_grid(fig, methods, rates, curves, shift)
    if title is not None:
        fig.suptitle(title, fontsize=12, fontweight="bold")
    return save(fig, path, dpi)


def _final_grid(
    fig: Figure,
    methods: list[str],
    rates: list[float],
    curves: dict,
    finals: dict,
    shift: float,
    gap: bool,
) -> None:
    ax = fig.subplots()
    table = np.full((len(methods), len(rates)), np.nan)
    diverged = np.zeros(table.shape, dtype=bool)
    for i, m in enumerate(methods):
        for j, r in enumerate(rates):
            curve = curves.get((m, r))
            if curve is None:
                continue
            table[i, j] = finals[m, r] - shift
            diverged[i, j] = curve.diverged or not math.isfinite(table[i, j])
    shown = np.where(diverged, np.nan, table)
    finite = shown[np.isfinite(shown)]
    positive = finite[finite > 0]
    if positive.size and (finite > 0).all():
        low = max(float(positive.min()), float(positive.max()) * 1e-16)
        norm: Normalize = LogNorm(vmin=low, vmax=max(float(positive.max()), low * 10))
        shown = np.maximum(shown, low)
    else:
        norm = Normalize(
            vmin=float(finite.min()) if finite.size else 0.0,
            vmax=float(finite.max()) if finite.size else 1.0,
        )
    image = ax.imshow(np.ma.masked_invalid(shown), cmap="viridis_r", norm=norm, aspect="auto")
    ax.set_facecolor("0.85")
    for i in range(len(methods)):
        for j in range(len(rates)):
            if diverged[i, j]:
                text, color = "diverged", "firebrick"
            elif math.isnan(table[i, j]):
                text, color = "—", "0.3"
            else:
                text = f"{table[i, j]:.2g}"
                rgba = image.cmap(image.norm(shown[i, j]))
                color = (
                    "white"
                    if 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] < 0.5
                    else "black"
                )
            ax.text(j, i, text, ha="center", va="center", fontsize=8.5, color=color)
    ax.set_xticks(range(len(rates)), [f"{r:g}" for r in rates])
    ax.set_yticks(range(len(methods)), methods)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("method")
    bar = fig.colorbar(image, ax=ax, pad=0.02)
    bar.set_label(
        ("final f − f*" if gap else "final f") + (" (log)" if isinstance(norm, LogNorm) else "")
    )


def _curve_grid(
    fig: Figure, methods: list[str], rates: list[float], curves: dict, shift: float
) -> None:
    axes = fig.subplots(len(methods), len(rates), sharex=True, sharey=True, squeeze=False)
    values = np.concatenate([c.y - shift for c in curves.values()])
    values = values[np.isfinite(values)]
    log = values.size > 0 and bool((values > 0).all())
    settled = [
        np.abs(c.y[np.isfinite(c.y)] - shift).max()
        for c in curves.values()
        if not c.diverged and np.isfinite(c.y).any()
    ]
    for i, m in enumerate(methods):
        for j, r in enumerate(rates):
            ax = axes[i, j]
            curve = curves.get((m, r))
            if curve is not None:
                color = "firebrick" if curve.diverged else "C0"
                ax.plot(curve.x, curve.y - shift, "-", color=color, lw=1.2)
                if curve.diverged:
                    ax.text(
                        0.5,
                        0.85,
                        "diverged",
                        transform=ax.transAxes,
                        ha="center",
                        color="firebrick",
                        fontsize=8,
                    )
            else:
                ax.text(0.5, 0.5, "—", transform=ax.transAxes, ha="center")
            ax.grid(True, alpha=0.3)
            ax.tick_params(labelsize=7)
            if i == 0:
                ax.set_title(f"lr = {r:g}", fontsize=9)
            if j == 0:
                ax.set_ylabel(m, fontsize=9)
            if i == len(methods) - 1:
                ax.set_xlabel("iteration", fontsize=8)
    if log:
        axes[0, 0].set_yscale("log")
        if settled:
            bottom, top = axes[0, 0].get_ylim()
            axes[0, 0].set_ylim(bottom, min(top, 1e4 * max(settled)))


def _final(run: Any, curve: Any) -> float:
    """The run's reported f (the best iterate, after a failed run), else its last loss."""
    fun = getattr(run, "fun", None)
    if isinstance(fun, int | float):
        return float(fun)
    return float(curve.y[-1])


def _problem(fun_or_problem: Any) -> Any:
    if isinstance(fun_or_problem, str):
        from descend.problems import get_problem

        return get_problem(fun_or_problem)
    return fun_or_problem


def _unique(name: str, items: list) -> list:
    if not items:
        raise ValueError(f"{name} must not be empty")
    seen = set()
    for item in items:
        if item in seen:
            raise ValueError(f"{name} names {item!r} twice; give each once")
        seen.add(item)
    return items


def _rate(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"lrs must hold numbers, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"lrs must hold learning rates > 0, got {value!r}")
    return float(value)
