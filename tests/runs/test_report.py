"""The HTML report is one self-contained page with the run's numbers and figures."""

from __future__ import annotations

import base64
import re

import pytest

from descend.runs import RunRecord, load, record_run
from descend.runs.report import render_report, write_report

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


def _images(page: str) -> list[bytes]:
    found = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    return [base64.b64decode(data) for data in found]


def test_one_run_page_is_self_contained_with_numbers_and_figures(booth_run, db, tmp_path) -> None:
    config, result = booth_run
    run_id = record_run("minimize", config, result)
    path = write_report(load(run_id), tmp_path / "report.html")
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not EXTERNAL.search(page)
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "<script" not in page and "@import" not in page
    images = _images(page)
    assert len(images) == 2  # the loss curve and the path on booth's landscape
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5_000 for png in images)
    assert f"descend run {run_id}: booth by momentum" in page
    assert f"{result.fun:.10g}" in page and f"{result.grad_norm:.3e}" in page
    assert f">{result.nit}<" in page and result.message[:40] in page
    assert "options.lr" in page and "0.02" in page
    assert "torch" in page and "found no problems" in page


def test_several_runs_share_one_table_and_show_what_differs(booth_run, db) -> None:
    config, result = booth_run
    a = load(record_run("minimize", config, result))
    b = load(record_run("minimize", dict(config, options={"lr": 0.01}), result, label="slow"))
    page = render_report([a, b])
    assert f"descend runs {a.id}, {b.id} on booth" in page
    assert page.count('class="badge') >= 2
    assert "2 setting(s) differ" in page and '<tr class="differs"><th>options.lr</th>' in page
    assert '<tr class="differs"><th>label</th>' in page
    assert len(_images(page)) == 2


def test_diagnoses_and_text_are_escaped(booth_run) -> None:
    config, result = booth_run
    entry = RunRecord.from_result("minimize", config, result, label="<script>alert(1)</script>")
    entry.diagnoses = [
        {
            "kind": "divergence",
            "severity": "error",
            "step": 3,
            "message": "f rose <fast> & far",
            "evidence": {"growth": 1e6},
            "suggestion": "lower the learning rate",
        }
    ]
    page = render_report(entry)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "f rose &lt;fast&gt; &amp; far" in page
    assert 'class="diag error"' in page and "growth = 1e+06" in page
    assert "fix:</strong> lower the learning rate" in page


def test_fit_runs_get_their_training_curves(db) -> None:
    import torch

    import descend
    from descend.runs import record

    X = torch.randn(32, 2, generator=torch.Generator().manual_seed(1))
    res = descend.fit(
        torch.nn.Linear(2, 1), "mse", (X, X.sum(1, keepdim=True)), optimizer="gd", lr=0.1,
        epochs=2, batch_size=8, seed=0, validation=0.25, progress=False,
    )  # fmt: skip
    page = render_report(load(record(res, {"model": "linear"})))
    assert "validation" in page and len(_images(page)) == 1
    assert "final loss" in page and ">0<" in page  # the seed


def test_bad_arguments(tmp_path, booth_run) -> None:
    config, result = booth_run
    entry = RunRecord.from_result("minimize", config, result)
    with pytest.raises(ValueError, match="must end in .html"):
        write_report(entry, tmp_path / "r.pdf")
    with pytest.raises(ValueError, match="its folder does not exist"):
        write_report(entry, tmp_path / "no" / "r.html")
    with pytest.raises(ValueError, match="at least one run"):
        render_report([])
    with pytest.raises(TypeError, match="RunRecord objects, got int"):
        render_report([3])
