"""One self-contained HTML page for recorded runs: the page a user attaches to a question
or a paper.

Everything is inline: the figures are base64 PNG images, the styles a ``<style>`` block;
the page loads nothing from anywhere, so it reads the same offline, in a mail, or years
later.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from descend.runs.record import RunRecord

__all__ = ["render_report", "write_report"]

_STYLE = """
:root { --ink: #1d2330; --muted: #5b6475; --line: #dde1e8; --bg: #f6f7f9; --accent: #2f5fb3; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 28px 28px 48px; }
header { border-bottom: 3px solid var(--accent); margin-bottom: 20px; padding-bottom: 10px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 30px 0 10px; padding-bottom: 4px;
     border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 18px 0 8px; }
.sub { color: var(--muted); font-size: 14px; }
section.card { background: #fff; border: 1px solid var(--line); border-radius: 8px;
               padding: 14px 18px; margin: 12px 0; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--line);
         vertical-align: top; }
th { background: #eef1f6; font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv th { width: 28%; background: transparent; color: var(--muted); font-weight: 500; }
table.kv.wide th { width: auto; }
table.kv.wide tr:first-child th { color: var(--ink); font-weight: 600; }
tr.differs td, tr.differs th { background: #fff6df; }
code, .mono { font-family: "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace;
              font-size: 13px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12.5px;
         font-weight: 600; color: #fff; }
.ok { background: #2e8540; } .warn { background: #c27c0e; } .bad { background: #b3261e; }
.info { background: #5b6475; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr));
           gap: 12px; align-items: start; }
figure { margin: 6px 0; text-align: center; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px;
             background: #fff; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.diag { border-left: 4px solid var(--line); padding: 6px 12px; margin: 10px 0; background: #fff; }
.diag.error { border-color: #b3261e; } .diag.warning { border-color: #c27c0e; }
.diag.info { border-color: #5b6475; }
.diag p { margin: 4px 0; }
ul.messages { margin: 0; padding-left: 20px; }
.evidence { color: var(--muted); font-size: 13px; }
footer { margin-top: 36px; color: var(--muted); font-size: 13px; border-top: 1px solid var(--line);
         padding-top: 10px; }
"""


def write_report(
    records: RunRecord | Sequence[RunRecord],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> Path:
    """Write :func:`render_report` to ``path`` (UTF-8); returns the path.

    Example:
        >>> res = descend.minimize(rosenbrock, [-1.2, 1.0], "adam", lr=0.01, max_iter=100)
        >>> config = {"problem": "rosenbrock", "x0": [-1.2, 1.0], "method": "adam",
        ...           "options": {"lr": 0.01, "max_iter": 100}}
        >>> run_id = descend.runs.record(res, config, db="runs.sqlite")
        >>> write_report(descend.runs.load(run_id, db="runs.sqlite"), "report.html").name
        'report.html'

    """
    target = Path(os.fspath(path))
    if target.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"the report path must end in .html, got {str(target)!r}")
    if not target.parent.is_dir():
        raise ValueError(f"the report path {str(target)!r}: its folder does not exist")
    page = render_report(records, title=title)
    target.write_text(page, encoding="utf-8")
    return target


def render_report(records: RunRecord | Sequence[RunRecord], *, title: str | None = None) -> str:
    """The HTML page of one or more recorded runs: the results table, the loss curves
    (and the paths on the landscape for 2-D problems), each run's configuration and
    final point, the diagnoses, and where the runs ran.

    Args:
        records: a :class:`RunRecord` or several (shown side by side in the tables).
        title: the page title; default: from the runs.

    Returns:
        the page as a string (a complete HTML5 document).
    """
    runs = [records] if isinstance(records, RunRecord) else list(records)
    if not runs:
        raise ValueError("records must hold at least one run")
    for run in runs:
        if not isinstance(run, RunRecord):
            raise TypeError(f"records must be RunRecord objects, got {type(run).__name__}")
    heading = title or _heading(runs)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(heading)}</title><style>{_STYLE}</style></head><body><main>",
        "<header>",
        f"<h1>{_e(heading)}</h1>",
        f'<div class="sub">{_e(_subtitle(runs))}</div>',
        "</header>",
        "<h2>Results</h2>",
        _results_table(runs),
        _messages(runs),
        "<h2>Curves</h2>",
        _figures(runs),
        "<h2>Diagnoses</h2>",
        _diagnoses(runs),
        "<h2>Configuration</h2>",
        _configurations(runs),
        "<h2>Environment</h2>",
        _environment(runs),
        _footer(runs),
        "</main></body></html>",
    ]
    return "\n".join(parts)


# -- pieces -----------------------------------------------------------------------------------


def _heading(runs: list[RunRecord]) -> str:
    if len(runs) == 1:
        run = runs[0]
        what = run.problem or run.config.get("model") or run.kind
        return f"descend run {run.id}: {what} by {run.method or run.kind}"
    problems = {r.problem for r in runs}
    what = f" on {problems.pop()}" if len(problems) == 1 and None not in problems else ""
    return f"descend runs {', '.join(str(r.id) for r in runs)}{what}"


def _subtitle(runs: list[RunRecord]) -> str:
    created = sorted(r.created for r in runs if r.created)
    when = _when(created[0]) if created else "not stored"
    if len(created) > 1 and _when(created[-1]) != when:
        when += f" to {_when(created[-1])}"
    kinds = ", ".join(sorted({r.kind for r in runs}))
    return f"recorded {when} · {kinds} · {len(runs)} run{'s' if len(runs) != 1 else ''}"


def _results_table(runs: list[RunRecord]) -> str:
    finite = [r.fun for r in runs if math.isfinite(r.fun)]
    best = min(finite) if finite else None
    fit = any(r.kind == "fit" or r.epoch_history is not None for r in runs)
    head = ["run", "label", "problem" if not fit else "model / data", "status"]
    head += ["final loss" if fit else "final f", "‖∇f‖", "steps" if fit else "iterations"]
    head += ["evaluations", "time", "seed"]
    rows = []
    for r in runs:
        fun = _num(r.fun, 10)
        if best is not None and r.fun == best and len(runs) > 1:
            fun = f"<strong>{fun}</strong>"
        where = r.problem or r.config.get("model") or r.config.get("data") or "—"
        evals = str(r.nfev) if r.nfev == r.njev else f"{r.nfev} f, {r.njev} ∇f"
        cells = [
            f'<td class="num">{r.id if r.id is not None else "—"}</td>',
            f"<td>{_e(r.label)}</td>",
            f"<td>{_e(str(where))}</td>",
            f"<td>{_badge(r)}</td>",
            f'<td class="num">{fun}</td>',
            f'<td class="num">{_num(r.grad_norm, 3, "e")}</td>',
            f'<td class="num">{r.nit}</td>',
            f'<td class="num">{_e(evals)}</td>',
            f'<td class="num">{_seconds(r.time)}</td>',
            f'<td class="num">{"—" if r.seed is None else r.seed}</td>',
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(
        f'<th class="{"num" if i not in (1, 2, 3) else ""}">{_e(h)}</th>'
        for i, h in enumerate(head)
    )
    return f'<section class="card"><table><tr>{header}</tr>{"".join(rows)}</table></section>'


def _messages(runs: list[RunRecord]) -> str:
    items = []
    for r in runs:
        x = r.x
        point = ""
        if x is not None and x.size:
            point = f' Final x = <span class="mono">{_e(_vector(x))}</span>.'
        items.append(
            f"<li><strong>run {r.id}</strong> ({_e(r.label)}): {_e(r.message)}{point}</li>"
        )
    return f'<section class="card"><ul class="messages">{"".join(items)}</ul></section>'


def _figures(runs: list[RunRecord]) -> str:
    from descend.viz.curves import plot_loss
    from descend.viz.landscape import plot_contour

    labels = {f"#{r.id} {r.label}" if len(runs) > 1 else r.label: r for r in runs}
    problem = _problem(runs)
    f_min = problem.f_min if problem is not None and math.isfinite(problem.f_min) else None
    paths = {k: r for k, r in labels.items() if r.history.record_x}
    landscape = problem is not None and problem.dim == 2 and bool(paths)
    # side by side with the landscape (same size, so the same size of text), else wide
    size = (6.6, 5.4) if landscape else (9.0, 4.8)
    figures = []
    try:
        fig = plot_loss(labels, f_min=f_min, figsize=size)
        caption = "f − f* per iteration (log scale)" if f_min is not None else "loss per iteration"
        if any(r.epoch_history is not None for r in runs):
            caption = "loss per step (pale), epoch means and validation loss"
        figures.append(_figure(fig, caption))
    except (ValueError, TypeError) as exc:
        figures.append(f"<p class='sub'>No loss curve: {_e(str(exc))}</p>")
    if landscape:
        fig = plot_contour(problem, paths, title=problem.name, figsize=size)
        figures.append(_figure(fig, "the paths over the landscape (contours of f)"))
    return f'<section class="card figures">{"".join(figures)}</section>'


def _problem(runs: list[RunRecord]) -> Any:
    names = {r.problem for r in runs}
    if len(names) != 1 or None in names:
        return None
    from descend.problems import get_problem

    try:
        return get_problem(str(names.pop()))
    except (ValueError, KeyError):
        return None


def _figure(fig: Any, caption: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (
        f'<figure><img alt="{_e(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _diagnoses(runs: list[RunRecord]) -> str:
    if not any(r.diagnoses for r in runs):
        every = "any of the runs" if len(runs) > 1 else "the run"
        found = f"The health monitors found no problems in {every}."
        return f'<section class="card"><p class="sub">{found}</p></section>'
    blocks = []
    order = {"error": 0, "warning": 1, "info": 2}
    for r in runs:
        found = sorted(
            r.diagnoses, key=lambda d: (order.get(str(d.get("severity")), 3), d.get("step", 0))
        )
        title = f"<h3>run {r.id} ({_e(r.label)})</h3>" if len(runs) > 1 else ""
        if not found:
            blocks.append(f'{title}<p class="sub">No problems found by the health monitors.</p>')
            continue
        items = [title]
        for d in found:
            items.append(_diagnosis(d))
        blocks.append("".join(items))
    return f'<section class="card">{"".join(blocks)}</section>'


def _diagnosis(d: Mapping[str, Any]) -> str:
    severity = str(d.get("severity", "info"))
    badge = {"error": "bad", "warning": "warn"}.get(severity, "info")
    lines = [
        f'<p><span class="badge {badge}">{_e(severity)}</span> '
        f"<strong>{_e(str(d.get('kind', '')))}</strong> "
        f'<span class="sub">at step {_e(str(d.get("step", "?")))}</span></p>',
        f"<p>{_e(str(d.get('message', '')))}</p>",
    ]
    evidence = d.get("evidence") or {}
    if evidence:
        numbers = ", ".join(f"{_e(str(k))} = {_e(_short(v))}" for k, v in evidence.items())
        lines.append(f'<p class="evidence">evidence: {numbers}</p>')
    if d.get("suggestion"):
        lines.append(f"<p><strong>fix:</strong> {_e(str(d['suggestion']))}</p>")
    return f'<div class="diag {_e(severity)}">{"".join(lines)}</div>'


def _configurations(runs: list[RunRecord]) -> str:
    """One key/value table for one run; for several, one column per run, the settings that
    differ between them first and marked."""
    tables = [_settings(r) for r in runs]
    if len(runs) == 1:
        return f'<section class="card">{_kv(list(tables[0].items()))}</section>'
    keys = list(dict.fromkeys(k for t in tables for k in t))
    differ = [k for k in keys if len({t.get(k, "—") for t in tables}) > 1]
    same = [k for k in keys if k not in differ]
    head = "".join(f"<th>run {r.id}</th>" for r in runs)
    body = []
    for key in differ + same:
        mark = ' class="differs"' if key in differ else ""
        cells = "".join(f"<td class='mono'>{_e(t.get(key, '—'))}</td>" for t in tables)
        body.append(f"<tr{mark}><th>{_e(key)}</th>{cells}</tr>")
    note = (
        f'<p class="sub">{len(differ)} setting(s) differ between the runs (shown first, '
        "highlighted).</p>"
        if differ
        else '<p class="sub">The runs share every setting.</p>'
    )
    return (
        f'<section class="card">{note}<table class="kv wide"><tr><th></th>{head}</tr>'
        f"{''.join(body)}</table></section>"
    )


def _settings(run: RunRecord) -> dict[str, str]:
    rows = {"kind": run.kind, "label": run.label}
    if run.group:
        rows["group"] = run.group
    if run.seed is not None:
        rows["seed"] = str(run.seed)
    rows.update((k, _short(v)) for k, v in _flatten(run.config))
    if run.runner:
        rows["runner"] = run.runner
    return rows


def _environment(runs: list[RunRecord]) -> str:
    environments = {tuple(sorted(r.environment.items())) for r in runs}
    if len(environments) == 1:
        env = runs[0].environment
        return f'<section class="card">{_kv([(k, _short(v)) for k, v in env.items()])}</section>'
    blocks = [
        f"<h3>run {r.id}</h3>" + _kv([(k, _short(v)) for k, v in r.environment.items()])
        for r in runs
    ]
    return f'<section class="card">{"".join(blocks)}</section>'


def _footer(runs: list[RunRecord]) -> str:
    ids = " ".join(str(r.id) for r in runs if r.id is not None)
    made = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    version = runs[0].environment.get("descend", "")
    again = ""
    if len(ids.split()) == 1:
        again = f" Reproduce it with <code>descend runs rerun {_e(ids)}</code>."
    elif ids:
        again = f" Reproduce each with <code>descend runs rerun ID</code> (ID: {_e(ids)})."
    return f"<footer>Made by descend {_e(str(version))} on {made}.{again}</footer>"


# -- formatting -------------------------------------------------------------------------------


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


def _kv(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td class='mono'>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def _flatten(config: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out += _flatten(value, f"{name}.")
        else:
            out.append((name, value))
    return out


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        if len(value) > 8:
            return "[" + ", ".join(_short(v) for v in value[:7]) + f", … ({len(value)} items)]"
        return "[" + ", ".join(_short(v) for v in value) + "]"
    if value is None or value == {}:
        return "—"
    return str(value)


def _badge(run: RunRecord) -> str:
    status = run.status.value
    kind = "ok" if run.converged else ("bad" if status == "diverged" else "warn")
    if run.kind == "fit" and status == "max_iter":
        kind = "info"  # a fit that used its epochs ran as asked
    return f'<span class="badge {kind}">{_e(status)}</span>'


def _num(value: float, digits: int, style: str = "g") -> str:
    if not math.isfinite(value):
        return "—" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return f"{value:.{digits}{style}}"


def _seconds(value: float) -> str:
    if not math.isfinite(value):
        return "—"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def _vector(x: np.ndarray) -> str:
    flat = np.asarray(x).reshape(-1)
    shown = [f"{v:.8g}" for v in flat[:8]]
    if flat.size > 8:
        shown = [*shown[:7], "…", f"{flat[-1]:.8g}"]
    return "(" + ", ".join(shown) + ")" + (f" ({flat.size} values)" if flat.size > 8 else "")


def _when(created: str) -> str:
    try:
        moment = _dt.datetime.fromisoformat(created)
    except ValueError:
        return created
    return moment.strftime("%Y-%m-%d %H:%M UTC")
