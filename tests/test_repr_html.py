"""The notebook views (``_repr_html_``) of results, histories and diagnostic reports: read
back with an HTML parser, every figure is the object's own and every user string escaped."""

from html.parser import HTMLParser

import numpy as np
import torch
from torch import nn

from descend import History, fit, minimize
from descend.callbacks import Callback
from descend.diagnostics import gradcheck, lr_range_test

HOSTILE = "<script>alert(1)</script> & <b>bold</b>"


class Page(HTMLParser):
    """A page read back: its tags, its badges, paragraphs, captions and tables (rows of
    cell texts, header rows included)."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.badges, self.paragraphs, self.captions = [], [], [], []
        self.tables, self.table_captions = [], []
        self._into = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append([])
            self.table_captions.append(None)
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.tables[-1][-1].append("")
            self._into = "cell"
        elif tag == "span" and attrs.get("class") == "descend-badge":
            self.badges.append((attrs["style"], ""))
            self._into = "badge"
        elif tag == "p":
            self.paragraphs.append("")
            self._into = "p"
        elif tag == "caption":
            self.captions.append("")
            self._into = "caption"

    def handle_endtag(self, tag):
        if tag in ("td", "th", "span", "p", "caption"):
            self._into = None

    def handle_data(self, data):
        if self._into == "cell":
            self.tables[-1][-1][-1] += data
        elif self._into == "badge":
            style, text = self.badges[-1]
            self.badges[-1] = (style, text + data)
        elif self._into == "p":
            self.paragraphs[-1] += data
        elif self._into == "caption":
            self.captions[-1] += data
            self.table_captions[-1] = self.captions[-1]

    def table(self, caption=None):
        """A table as {label: [cells]}: the first one, or the one with this caption."""
        index = 0 if caption is None else self.table_captions.index(caption)
        return {row[0]: row[1:] for row in self.tables[index]}


class StopWithReason(Callback):
    stop_reason = HOSTILE

    def on_step(self, result):
        return result.nit >= 3


def test_minimize_result_shows_status_message_figures_and_escapes_user_text():
    res = minimize(lambda x: (x**2).sum(), [1.0, 2.0], "gd", lr=0.01, callback=StopWithReason())
    text = res._repr_html_()
    assert "<script>" not in text and "<b>bold" not in text
    page = Page(text)
    assert "script" not in page.tags and "b" not in page.tags
    assert page.paragraphs == [res.message] and HOSTILE in res.message
    assert page.badges[0][1] == str(res.status) == "callback"
    figures = page.table()
    assert figures["fun"] == [f"{res.fun:.6g}"]
    assert figures["nit"] == [str(res.nit)]
    assert figures["method"] == ["gd"]
    assert figures["nfev / njev / nhev"] == [f"{res.nfev} / {res.njev} / {res.nhev}"]


def test_badge_colour_follows_the_outcome_and_diagnoses_are_listed():
    good = minimize(lambda x: ((x - 1) ** 2).sum(), [0.0, 0.0], "lbfgs")
    bad = minimize(lambda x: (x**2).sum(), [1.0, 2.0], "gd", lr=1.5)
    assert good.converged and bad.status.failed
    green, red = Page(good._repr_html_()).badges[0][0], Page(bad._repr_html_()).badges[0][0]
    assert green != red
    page = Page(bad._repr_html_())
    rows = page.table("diagnoses")
    assert rows["severity"] == ["kind", "step", "what was seen", "fix"]
    listed = [(sev, cells[0], int(cells[1])) for sev, cells in rows.items() if sev != "severity"]
    expected = {(str(d.severity), d.kind, d.step) for d in bad.diagnoses}
    assert bad.diagnoses and set(listed) <= expected


def test_history_summary_is_first_last_min_max_of_each_column():
    res = minimize(lambda x: (x**2).sum(), [1.0, 2.0], "gd", lr=0.1, max_iter=20)
    page = Page(res.history._repr_html_())
    assert page.captions == [f"history: {len(res.history)} rows"]
    rows = page.table()
    assert rows["column"] == ["first", "last", "min", "max"]
    f = res.history["f"]
    assert rows["f"] == [f"{v:.6g}" for v in (f[0], f[-1], f.min(), f.max())]
    assert set(rows) == {"column", *res.history.columns}


def test_history_escapes_column_names_and_leaves_empty_columns_blank():
    history = History(columns=("step", HOSTILE))
    history.append((0, float("nan")))
    page = Page(history._repr_html_())
    assert "script" not in page.tags
    assert page.table()[HOSTILE] == ["nan", "nan", "", ""]


def test_fit_result_shows_the_latest_metrics_and_the_epoch_history():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(40, 3, generator=g)
    y = X.sum(1, keepdim=True)
    torch.manual_seed(0)
    res = fit(nn.Linear(3, 1), "mse", (X, y), epochs=3, validation=(X, y), progress=False)
    page = Page(res._repr_html_())
    assert page.badges[0][1] == str(res.status) and page.paragraphs == [res.message]
    figures = page.table()
    assert figures["loss"] == [f"{res.fun:.6g}"]
    assert figures["val_loss"] == [f"{res.logs['val_loss']:.6g}"]
    assert figures["epochs"] == [f"{res.epoch} of 3"]
    assert page.captions[-1] == f"history: {len(res.epoch_history)} rows"
    loss = res.epoch_history["loss"]
    assert Page(res.epoch_history._repr_html_()).table()["loss"][1] == f"{loss[-1]:.6g}"


def test_gradcheck_report_gives_its_verdict_and_a_row_per_block():
    ok = gradcheck(lambda x: (x**3).sum(), torch.tensor([1.0, 2.0], dtype=torch.float64))
    wrong = gradcheck(
        lambda x: (x**3).sum(),
        np.array([1.0, 2.0]),
        jac=lambda x: 2 * x,  # the derivative of x**2, not of x**3
        hvp=False,
    )
    for report in (ok, wrong):
        page = Page(report._repr_html_())
        assert page.badges[0][1] == ("passed" if report.passed else "failed")
        rows = page.table()
        for block in report.blocks:
            assert rows[block.name][-1].startswith("ok" if block.passed else "FAILED")
    assert ok.passed and not wrong.passed


def test_lr_range_result_shows_the_rates_it_found():
    res = lr_range_test(lambda x: (x**2).sum(), [3.0], steps=40)
    rows = Page(res._repr_html_()).table()
    assert rows["suggested lr"] == [f"{res.suggested_lr:.6g}"]
    assert rows["lowest loss at"] == [f"{res.min_loss_lr:.6g}"]
    assert rows["steps"] == [str(len(res.lrs))]


def test_a_diagnosis_alone_is_a_one_row_table_with_its_strings_escaped():
    from descend.monitors import Diagnosis, Severity

    found = Diagnosis("plateau", Severity.WARNING, 12, HOSTILE, suggestion="raise lr")
    page = Page(found._repr_html_())
    assert "script" not in page.tags
    (table,) = page.tables
    assert table[1] == ["warning", "plateau", "12", HOSTILE, "raise lr"]
