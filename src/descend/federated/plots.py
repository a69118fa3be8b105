"""Figures of federated runs: how a partition deals the labels among clients, and the
global model's test score per round for several runs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from descend.extras import require

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_partition", "plot_rounds"]


def plot_partition(
    counts: Any,
    path: str | os.PathLike[str] | None = None,
    *,
    classes: list[Any] | None = None,
    title: str | None = None,
) -> Figure:
    """Rows of each label per client as stacked bars, one bar per client.

    Args:
        counts: the ``(clients, classes)`` table of :func:`descend.federated.label_counts`.
        path: where to save it (.png, .pdf, .svg); None: only return the figure.
        classes: the labels' names for the legend (default 0..C-1).
        title: the figure title.

    Example:
        >>> from descend.federated import dirichlet, label_counts
        >>> labels = torch.arange(200) % 4  # four classes
        >>> fig = plot_partition(label_counts(labels, dirichlet(labels, 20, 0.1, seed=0)),
        ...                      "partition.png")
    """
    table = np.asarray(counts, dtype=np.float64)
    if table.ndim != 2 or table.size == 0:
        raise ValueError(f"counts must be a (clients, classes) table, got shape {table.shape}")
    names = classes if classes is not None else list(range(table.shape[1]))
    fig = _figure(figsize=(max(6.0, 0.3 * table.shape[0] + 2), 4.0))
    ax = fig.subplots()
    bottom = np.zeros(table.shape[0])
    palette = [f"C{i % 10}" for i in range(table.shape[1])]
    for c in range(table.shape[1]):
        ax.bar(np.arange(table.shape[0]), table[:, c], bottom=bottom, color=palette[c],
               label=str(names[c]), width=0.85)  # fmt: skip
        bottom += table[:, c]
    ax.set_xlabel("client")
    ax.set_ylabel("rows")
    ax.set_xticks(np.arange(table.shape[0]))
    ax.legend(title="label", fontsize="small", ncols=1 + table.shape[1] // 12,
              loc="upper left", bbox_to_anchor=(1.0, 1.0))  # fmt: skip
    if title is not None:
        ax.set_title(title)
    return _save(fig, path)


def plot_rounds(
    runs: Mapping[str, Any],
    path: str | os.PathLike[str] | None = None,
    *,
    column: str = "test_metric",
    title: str | None = None,
) -> Figure:
    """A history column (default the test metric) against the round, one line per run.

    Args:
        runs: ``{label: FederatedResult}`` (or anything with a ``history``).
        path: where to save it; None: only return the figure.
        column: a column of ``ROUND_COLUMNS``: ``test_metric``, ``test_loss``,
            ``client_loss``.

    Example:
        >>> from descend.federated import simulate
        >>> labels = (y[:, 0] > 0).long()
        >>> a, b = (simulate(nn.Linear(3, 2), "cross_entropy", (X[:48], labels[:48]),
        ...                  clients=4, rounds=3, strategy=s, lr=0.5,
        ...                  test=(X[48:], labels[48:]), metric="accuracy")
        ...         for s in ("fedavg", "fedavgm"))
        >>> fig = plot_rounds({"fedavg": a, "fedavgm": b}, "accuracy.png")
    """
    if not runs:
        raise ValueError("runs must hold at least one run")
    fig = _figure(figsize=(7.0, 4.5))
    ax = fig.subplots()
    for label, run in runs.items():
        history = run.history
        if column not in history.columns:
            raise ValueError(f"column must be one of {', '.join(history.columns)}, got {column!r}")
        ax.plot(history["round"], history[column], marker=".", label=label)
    ax.set_xlabel("round")
    ax.set_ylabel(column.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend()
    if title is not None:
        ax.set_title(title)
    return _save(fig, path)


def _figure(figsize: tuple[float, float]) -> Figure:
    """A figure not tied to any window, matplotlib imported only when a plot is drawn."""
    figure = require("matplotlib.figure", "viz", feature="descend.federated's plots").Figure
    return figure(figsize=figsize, layout="constrained")


def _save(fig: Figure, path: str | os.PathLike[str] | None) -> Figure:
    if path is not None:
        fig.savefig(path, dpi=130)
    return fig
