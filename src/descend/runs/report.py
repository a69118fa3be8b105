"""One self-contained HTML page for recorded runs: the page a user attaches to a question
or a paper.

Everything is inline: the figures are base64 PNG images, the styles a ``<style>`` block;
the page loads nothing from anywhere, so it reads the same offline, in a mail, or years
later. The page is a Jinja2 template (:data:`_TEMPLATE`, autoescaped: every run's text is
escaped where it lands) filled from plain rows that the functions below compute.
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment

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
    return _PAGE.render(
        style=_STYLE,
        heading=heading,
        subtitle=_subtitle(runs),
        results=_results(runs),
        messages=[_message(r) for r in runs],
        figures=_figures(runs),
        diagnoses=_diagnoses(runs),
        several=len(runs) > 1,
        configuration=_configurations(runs),
        environments=_environments(runs),
        footer=_footer(runs),
    )


# -- the page --------------------------------------------------------------------------------

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ heading }}</title><style>{{ style|safe }}</style></head><body><main>
<header>
  <h1>{{ heading }}</h1>
  <div class="sub">{{ subtitle }}</div>
</header>

<h2>Results</h2>
<section class="card"><table>
  <tr>
  {% for name, numeric in results.header %}
    <th class="{{ 'num' if numeric }}">{{ name }}</th>
  {% endfor %}
  </tr>
  {% for row in results.rows %}
  <tr>
    <td class="num">{{ row.id }}</td>
    <td>{{ row.label }}</td>
    <td>{{ row.where }}</td>
    <td><span class="badge {{ row.tone }}">{{ row.status }}</span></td>
    {% if row.best %}
    <td class="num"><strong>{{ row.fun }}</strong></td>
    {% else %}
    <td class="num">{{ row.fun }}</td>
    {% endif %}
    <td class="num">{{ row.grad_norm }}</td>
    <td class="num">{{ row.nit }}</td>
    <td class="num">{{ row.evaluations }}</td>
    <td class="num">{{ row.time }}</td>
    <td class="num">{{ row.seed }}</td>
  </tr>
  {% endfor %}
</table></section>
<section class="card"><ul class="messages">
{% for m in messages %}
  <li><strong>run {{ m.id }}</strong> ({{ m.label }}): {{ m.message }}
  {%- if m.x %} Final x = <span class="mono">{{ m.x }}</span>.{% endif %}</li>
{% endfor %}
</ul></section>

<h2>Curves</h2>
<section class="card figures">
{% for f in figures %}
  {% if f.image %}
  <figure>
    <img alt="{{ f.caption }}" src="data:image/png;base64,{{ f.image }}">
    <figcaption>{{ f.caption }}</figcaption>
  </figure>
  {% else %}
  <p class="sub">{{ f.caption }}</p>
  {% endif %}
{% endfor %}
</section>

<h2>Diagnoses</h2>
<section class="card">
{% if not diagnoses %}
  <p class="sub">The health monitors found no problems in
    {{ "any of the runs" if several else "the run" }}.</p>
{% endif %}
{% for run in diagnoses %}
  {% if several %}<h3>run {{ run.id }} ({{ run.label }})</h3>{% endif %}
  {% for d in run.found %}
  <div class="diag {{ d.severity }}">
    <p><span class="badge {{ d.tone }}">{{ d.severity }}</span>
      <strong>{{ d.kind }}</strong> <span class="sub">at step {{ d.step }}</span></p>
    <p>{{ d.message }}</p>
    {% if d.evidence %}<p class="evidence">evidence: {{ d.evidence }}</p>{% endif %}
    {% if d.suggestion %}<p><strong>fix:</strong> {{ d.suggestion }}</p>{% endif %}
  </div>
  {% else %}
  <p class="sub">No problems found by the health monitors.</p>
  {% endfor %}
{% endfor %}
</section>

<h2>Configuration</h2>
<section class="card">
{% if several %}
  {% if configuration.differ %}
  <p class="sub">{{ configuration.differ }} setting(s) differ between the runs
    (shown first, highlighted).</p>
  {% else %}
  <p class="sub">The runs share every setting.</p>
  {% endif %}
{% endif %}
<table class="kv{{ ' wide' if several }}">
  {% if several %}
  <tr><th></th>{% for id in configuration.columns %}<th>run {{ id }}</th>{% endfor %}</tr>
  {% endif %}
  {% for key, values, differs in configuration.rows %}
  <tr{{ ' class="differs"'|safe if differs }}><th>{{ key }}</th>
    {% for v in values %}<td class="mono">{{ v }}</td>{% endfor %}</tr>
  {% endfor %}
</table>
</section>

<h2>Environment</h2>
<section class="card">
{% for env in environments %}
  {% if env.id is not none %}<h3>run {{ env.id }}</h3>{% endif %}
  <table class="kv">
  {% for key, value in env.rows %}
    <tr><th>{{ key }}</th><td class="mono">{{ value }}</td></tr>
  {% endfor %}
  </table>
{% endfor %}
</section>

<footer>Made by descend {{ footer.version }} on {{ footer.made }}.
{%- if footer.ids|length == 1 %}
 Reproduce it with <code>descend runs rerun {{ footer.ids[0] }}</code>.
{%- elif footer.ids %}
 Reproduce each with <code>descend runs rerun ID</code> (ID: {{ footer.ids|join(" ") }}).
{%- endif %}</footer>
</main></body></html>
"""

_PAGE = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True).from_string(_TEMPLATE)


# -- what the page shows -----------------------------------------------------------------------


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


def _results(runs: list[RunRecord]) -> dict[str, Any]:
    finite = [r.fun for r in runs if math.isfinite(r.fun)]
    best = min(finite) if finite else None
    fit = any(_is_fit(r) for r in runs)
    names = ["run", "label", "model / data" if fit else "problem", "status"]
    names += ["final loss" if fit else "final f", "‖∇f‖", "steps" if fit else "iterations"]
    names += ["evaluations", "time", "seed"]
    header = [(name, i not in (1, 2, 3)) for i, name in enumerate(names)]
    rows = [
        {
            "id": r.id if r.id is not None else "—",
            "label": r.label,
            "where": _where(r),
            "status": r.status.value,
            "tone": _tone(r),
            "fun": _num(r.fun, 10),
            "best": best is not None and r.fun == best and len(runs) > 1,
            "grad_norm": _num(r.grad_norm, 3, "e"),
            "nit": r.nit,
            "evaluations": str(r.nfev) if r.nfev == r.njev else f"{r.nfev} f, {r.njev} ∇f",
            "time": _seconds(r.time),
            "seed": "—" if r.seed is None else r.seed,
        }
        for r in runs
    ]
    return {"header": header, "rows": rows}


def _is_fit(run: RunRecord) -> bool:
    return run.kind == "fit" or run.epoch_history is not None


def _where(run: RunRecord) -> str:
    """A minimize run's problem; a fit's model and the file it learned from."""
    if not _is_fit(run):
        return run.problem or "—"
    model, data = run.config.get("model"), run.config.get("data")
    parts = [str(model) if model else "", Path(str(data)).name if data else ""]
    return " / ".join(p for p in parts if p) or "—"


def _message(run: RunRecord) -> dict[str, Any]:
    x = run.x
    point = _vector(x) if x is not None and x.size else ""
    return {"id": run.id, "label": run.label, "message": run.message, "x": point}


def _figures(runs: list[RunRecord]) -> list[dict[str, str]]:
    """The loss curves, one figure per loss (a cross-entropy and a standardized MSE are
    not on one scale), and for a 2-D problem the paths over its landscape."""
    from descend.viz.curves import plot_loss
    from descend.viz.landscape import plot_contour

    labels = {f"#{r.id} {r.label}" if len(runs) > 1 else r.label: r for r in runs}
    problem = _problem(runs)
    f_min = problem.f_min if problem is not None and math.isfinite(problem.f_min) else None
    paths = {k: r for k, r in labels.items() if r.history.record_x}
    landscape = problem is not None and problem.dim == 2 and bool(paths)
    groups: dict[str, dict[str, RunRecord]] = {}
    for label, run in labels.items():
        groups.setdefault(_loss_name(run), {})[label] = run
    # side by side with the landscape (same size, so the same size of text), else wide
    size = (6.6, 5.4) if landscape or len(groups) > 1 else (9.0, 4.8)
    figures = []
    for loss, group in groups.items():
        try:
            fig = plot_loss(group, f_min=f_min, figsize=size)
        except (ValueError, TypeError) as exc:
            figures.append({"caption": f"No loss curve: {exc}", "image": ""})
            continue
        caption = "f − f* per iteration (log scale)" if f_min is not None else "loss per iteration"
        if any(r.epoch_history is not None for r in group.values()):
            caption = "loss per step (pale), epoch means and validation loss"
        if len(groups) > 1:
            caption = f"{loss}: {caption}"
        figures.append({"caption": caption, "image": _png(fig)})
    if landscape:
        fig = plot_contour(problem, paths, title=problem.name, figsize=size)
        figures.append(
            {"caption": "the paths over the landscape (contours of f)", "image": _png(fig)}
        )
    return figures


def _loss_name(run: RunRecord) -> str:
    """What a run's loss measures, so that only comparable curves share an axis."""
    if not _is_fit(run):
        return "f"
    if run.config.get("loss"):
        return str(run.config["loss"])
    from descend.tabular import CLASSIFIERS, MODELS

    model = run.config.get("model")
    if model in CLASSIFIERS:
        return "cross-entropy"
    return "standardized MSE" if model in MODELS else "loss"


def _problem(runs: list[RunRecord]) -> Any:
    names = {r.problem for r in runs}
    if len(names) != 1 or None in names:
        return None
    from descend.problems import get_problem

    try:
        return get_problem(str(names.pop()))
    except (ValueError, KeyError):
        return None


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _diagnoses(runs: list[RunRecord]) -> list[dict[str, Any]]:
    """Per run, its diagnoses, most severe first; empty when no run has any."""
    if not any(r.diagnoses for r in runs):
        return []
    order = {"error": 0, "warning": 1, "info": 2}
    return [
        {
            "id": r.id,
            "label": r.label,
            "found": [
                _diagnosis(d)
                for d in sorted(
                    r.diagnoses,
                    key=lambda d: (order.get(str(d.get("severity")), 3), d.get("step", 0)),
                )
            ],
        }
        for r in runs
    ]


def _diagnosis(d: Mapping[str, Any]) -> dict[str, str]:
    severity = str(d.get("severity", "info"))
    evidence = d.get("evidence") or {}
    return {
        "severity": severity,
        "tone": {"error": "bad", "warning": "warn"}.get(severity, "info"),
        "kind": str(d.get("kind", "")),
        "step": str(d.get("step", "?")),
        "message": str(d.get("message", "")),
        "evidence": ", ".join(f"{k} = {_short(v)}" for k, v in evidence.items()),
        "suggestion": str(d.get("suggestion") or ""),
    }


def _configurations(runs: list[RunRecord]) -> dict[str, Any]:
    """One row per setting, a value per run; for several runs, the settings that differ
    between them first and marked."""
    tables = [_settings(r) for r in runs]
    keys = list(dict.fromkeys(k for t in tables for k in t))
    differ = [k for k in keys if len({t.get(k, "—") for t in tables}) > 1]
    same = [k for k in keys if k not in differ]
    ordered = differ + same if len(runs) > 1 else keys
    return {
        "columns": [r.id for r in runs],
        "differ": len(differ),
        "rows": [(k, [t.get(k, "—") for t in tables], k in differ) for k in ordered],
    }


def _settings(run: RunRecord) -> dict[str, str]:
    rows = {"kind": run.kind, "label": run.label}
    if run.group:
        rows["group"] = run.group
    if run.seed is not None:
        rows["seed"] = str(run.seed)
    rows.update((k, _short(v)) for k, v in _flatten(run.config))
    lr = _learning_rate(run)
    if lr is not None and not any(key == "lr" or key.endswith(".lr") for key in rows):
        rows["lr (used)"] = _short(lr)
    if run.runner:
        rows["runner"] = run.runner
    return rows


def _learning_rate(run: RunRecord) -> float | None:
    """The learning rate the run started with, from its history (the method's default
    when the configuration did not set one); None where a rule has none."""
    history = run.epoch_history if run.epoch_history is not None else run.history
    if history is None or "lr" not in history.columns or not len(history):
        return None
    lr = float(history["lr"][0])
    return lr if math.isfinite(lr) else None


def _environments(runs: list[RunRecord]) -> list[dict[str, Any]]:
    """The environment once when every run shares it, else one table per run."""
    if len({tuple(sorted(r.environment.items())) for r in runs}) == 1:
        return [{"id": None, "rows": [(k, _short(v)) for k, v in runs[0].environment.items()]}]
    return [{"id": r.id, "rows": [(k, _short(v)) for k, v in r.environment.items()]} for r in runs]


def _footer(runs: list[RunRecord]) -> dict[str, Any]:
    return {
        "version": str(runs[0].environment.get("descend", "")),
        "made": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "ids": [str(r.id) for r in runs if r.id is not None],
    }


def _tone(run: RunRecord) -> str:
    """The badge's colour: green converged or stopped early on purpose, blue a fit that
    used its epochs as asked, red diverged, amber otherwise."""
    status = run.status.value
    if run.converged or status == "early_stopping":
        return "ok"
    if status == "diverged":
        return "bad"
    return "info" if _is_fit(run) and status == "max_iter" else "warn"


# -- formatting -------------------------------------------------------------------------------


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
