"""How descend shows itself in Jupyter: small HTML tables, escaped, and the kernel test.

The ``_repr_html_`` of results, histories and diagnoses build their pages from
:func:`table` and :func:`badge`; every text that can come from a user (a message that
quotes a file name, a column name, a method name) goes through :func:`html.escape`, so a
``<script>`` in a column name shows as text. :func:`in_notebook` tells a progress display
whether it runs under a Jupyter kernel, without importing IPython.

Example:
    >>> page = table([("fun", 0.5), ("method", "<adam>")], caption="result")
    >>> "&lt;adam&gt;" in page
    True
"""

from __future__ import annotations

import html
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

#: badge colours of a run's outcome: converged, stopped short, failed
_BADGE_COLORS = {"ok": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e"}


def in_notebook() -> bool:
    """True under a Jupyter kernel (an IPython shell with an ``IPKernelApp``).

    Reads ``sys.modules`` only: a kernel has imported IPython already, so a plain script
    never pays for importing it here.
    """
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    config = getattr(shell, "config", None)
    return shell is not None and isinstance(config, Mapping) and "IPKernelApp" in config


def number(value: Any) -> str:
    """``value`` in a table cell: floats to 6 significant digits, arrays abbreviated."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    if hasattr(value, "detach"):  # a tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return np.array2string(value, threshold=8, precision=6, separator=", ")
    return str(value)


def cell(value: Any) -> str:
    """``value`` as escaped HTML text."""
    return html.escape(number(value))


def table(
    rows: Iterable[Sequence[Any]],
    *,
    header: Sequence[str] | None = None,
    caption: str | None = None,
) -> str:
    """An HTML table: one ``<tr>`` per row, the first cell of each row a ``<th>`` label
    when there is no ``header``, every cell escaped."""
    parts = ["<table>"]
    if caption:
        parts.append(f"<caption>{html.escape(caption)}</caption>")
    if header is not None:
        parts.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
    for row in rows:
        cells = [cell(v) for v in row]
        if header is None and cells:
            parts.append(
                f"<tr><th>{cells[0]}</th>" + "".join(f"<td>{c}</td>" for c in cells[1:]) + "</tr>"
            )
        else:
            parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts.append("</table>")
    return "".join(parts)


def badge(text: str, tone: str) -> str:
    """A coloured label (``tone``: ``ok``, ``warn`` or ``fail``) with escaped ``text``."""
    color = _BADGE_COLORS[tone]
    return (
        f'<span class="descend-badge" style="background:{color};color:white;'
        f'padding:1px 6px;border-radius:4px">{html.escape(text)}</span>'
    )


def section(title: str, *blocks: str) -> str:
    """A titled block of already-built HTML (``title`` escaped)."""
    head = f'<div class="descend"><strong>{html.escape(title)}</strong> '
    return head + "".join(blocks) + "</div>"


def paragraph(text: str) -> str:
    """``text`` escaped, as a paragraph."""
    return f"<p>{html.escape(text)}</p>"


def outcome(status: Any, converged: bool, failed: bool, message: str) -> str:
    """A run's status as a badge (green converged, red failed, amber otherwise) and its
    message as a paragraph."""
    tone = "ok" if converged else "fail" if failed else "warn"
    return badge(str(status), tone) + paragraph(message)


def diagnoses_table(diagnoses: Iterable[Any]) -> str:
    """What the health monitors found: severity, kind, step, message and fix, one row each
    (read by attribute, so any object with a :class:`descend.diagnostics.Diagnosis`'s
    fields will do); an empty string when there is none."""
    rows = [
        (str(d.severity), d.kind, d.step, d.message, getattr(d, "suggestion", ""))
        for d in diagnoses
    ]
    if not rows:
        return ""
    header = ("severity", "kind", "step", "what was seen", "fix")
    return table(rows, header=header, caption="diagnoses")


def history_table(columns: Sequence[str], data: Mapping[str, np.ndarray], rows: int) -> str:
    """A history's compact summary: per scalar column its first, last, least and greatest
    finite value (blank where a column holds no finite value)."""
    summary = []
    for name in columns:
        values = np.asarray(data[name], dtype=np.float64)
        finite = values[np.isfinite(values)]
        if values.size == 0:
            summary.append((name, "", "", "", ""))
        elif finite.size == 0:
            summary.append((name, values[0], values[-1], "", ""))
        else:
            summary.append((name, values[0], values[-1], finite.min(), finite.max()))
    caption = f"history: {rows} rows"
    return table(summary, header=("column", "first", "last", "min", "max"), caption=caption)
