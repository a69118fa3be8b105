"""What the report page shows for fits and comparisons: the model and the data file, the
learning rate each run used, one figure per kind of loss, and an early stop as a success."""

import re

import numpy as np
import torch
from torch import nn

import descend
from descend.runs import RunRecord
from descend.runs.report import render_report


def table_rows(page):
    """The results table's rows as lists of cell texts (tags stripped)."""
    table = page.split("<h2>Results</h2>", 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)
    return [
        [
            re.sub(r"<[^>]+>", "", c).strip()
            for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r, flags=re.S)
        ]
        for r in rows
    ]


def a_fit(loss="mse", classes=None, **options):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(40, 3, generator=g)
    y = (X[:, 0] > 0).long() if classes else X.sum(1, keepdim=True)
    torch.manual_seed(0)
    model = nn.Linear(3, classes or 1)
    return descend.fit(model, loss, (X, y), epochs=3, progress=False, seed=0, **options)


def test_a_fit_shows_its_model_and_its_data_file():
    config = {"model": "logistic", "data": "/somewhere/tables/train.csv", "target": "label"}
    record = RunRecord.from_result("fit", config, a_fit("cross_entropy", classes=2))
    header, row = table_rows(render_report(record))
    assert header[2] == "model / data" and row[2] == "logistic / train.csv"


def test_a_comparison_lists_the_learning_rate_each_run_used():
    f = lambda x: ((x - 1) ** 2).sum()  # noqa: E731
    runs = [descend.minimize(f, [0.0, 0.0], m, max_iter=20) for m in ("gd", "adam")]
    records = [
        RunRecord.from_result("minimize", {"method": r.method, "x0": [0.0, 0.0]}, r) for r in runs
    ]
    for k, record in enumerate(records):
        record.id = k + 1
    page = render_report(records)
    row = re.search(r"<tr class=\"differs\"><th>lr \(used\)</th>(.*?)</tr>", page, flags=re.S)
    assert row is not None
    shown = re.findall(r"<td class=\"mono\">(.*?)</td>", row.group(1))
    assert shown == [f"{r.history['lr'][0]:.6g}" for r in runs]


def test_a_classifier_and_a_regressor_get_a_figure_each():
    classifier = RunRecord.from_result(
        "fit", {"model": "logistic"}, a_fit("cross_entropy", classes=2)
    )
    regressor = RunRecord.from_result("fit", {"model": "linear"}, a_fit("mse"))
    classifier.id, regressor.id = 1, 2  # as loaded from the database
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", render_report([classifier, regressor]))
    assert [c.split(":")[0] for c in captions] == ["cross-entropy", "standardized MSE"]
    same = RunRecord.from_result("fit", {"model": "linear"}, a_fit("mse", lr=0.05))
    same.id = 3
    assert len(re.findall(r"<figcaption>", render_report([regressor, same]))) == 1


def test_an_early_stopped_fit_is_a_success_not_a_callback():
    g = torch.Generator().manual_seed(0)
    X, Xv = torch.randn(30, 20, generator=g), torch.randn(200, 20, generator=g)
    y = X[:, :1] + 0.5 * torch.randn(30, 1, generator=g)
    torch.manual_seed(0)
    res = descend.fit(
        nn.Linear(20, 1), "mse", (X, y), validation=(Xv, Xv[:, :1]), epochs=200, lr=0.05,
        early_stopping=3, progress=False,
    )  # fmt: skip
    assert res.status == "early_stopping"
    page = render_report(RunRecord.from_result("fit", {"model": "linear"}, res))
    assert '<span class="badge ok">early_stopping</span>' in page


def test_user_text_is_escaped_by_the_template():
    res = descend.minimize(lambda x: (x**2).sum(), [1.0], "gd", max_iter=5)
    record = RunRecord.from_result("minimize", {"note": "<b>x</b>"}, res, label="<i>me</i>")
    page = render_report(record)
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<i>me</i>" not in page and "&lt;i&gt;me&lt;/i&gt;" in page
    assert np.isfinite(res.fun)
