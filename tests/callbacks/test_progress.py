"""ProgressBar off a terminal: one log line per epoch (or every N steps), and an HTML bar
updated in place under a Jupyter kernel; each figure it shows is the run's own."""

import io
import logging
import sys
import types
from html.parser import HTMLParser

import pytest
import torch
from rich.console import Console
from torch import nn

from descend import fit, minimize
from descend.callbacks import ProgressBar
from descend.notebook import in_notebook


def regression(rows=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(rows, 3, generator=g)
    return X, X.sum(1, keepdim=True)


def model():
    torch.manual_seed(0)
    return nn.Linear(3, 1)


def progress_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "descend.progress"]


def test_off_a_terminal_fit_logs_one_line_per_epoch_with_its_own_figures(caplog):
    caplog.set_level(logging.INFO, logger="descend.progress")
    data = regression()
    bar = ProgressBar(console=Console(file=io.StringIO()))  # not a terminal
    res = fit(model(), "mse", data, epochs=3, batch_size=10, validation=data, callbacks=[bar])
    assert bar.shown == "log"
    lines = progress_lines(caplog)
    assert len(lines) == res.epoch + 1  # an epoch each, then the outcome
    history = res.epoch_history
    for k, line in enumerate(lines[:-1]):
        assert line.startswith(f"epoch {k + 1}/3  step {history['step'][k]}/{res.total_steps} ")
        assert f"loss {history['loss'][k]:.4g} " in line
        assert f"val_loss {history['val_loss'][k]:.4g}" in line
    assert lines[-1].startswith(f"done: {res.status} after {res.nit} steps")


def test_a_run_without_epochs_logs_every_n_steps(caplog):
    caplog.set_level(logging.INFO, logger="descend.progress")
    bar = ProgressBar(display="log", every=10)
    res = minimize(lambda x: (x**2).sum(), [1.0, 2.0], "gd", lr=1e-3, max_iter=35, callback=bar)
    lines = progress_lines(caplog)
    steps = [int(line.split("step ")[1].split()[0]) for line in lines[:-1]]
    assert steps == list(range(10, res.nit + 1, 10))
    f_at = dict(zip(res.history["iteration"], res.history["f"]))
    for step, line in zip(steps, lines):
        assert f"loss {f_at[step]:.4g} " in line
    assert lines[-1].startswith(f"done: {res.status} after {res.nit} steps")


class FakeKernel:
    """What a Jupyter kernel offers: an IPython shell with an IPKernelApp, and display
    handles whose content is replaced in place."""

    def __init__(self, monkeypatch):
        self.shown = []  # (display_id given, handle)
        shell = types.SimpleNamespace(config={"IPKernelApp": {}})
        ipython = types.ModuleType("IPython")
        ipython.get_ipython = lambda: shell
        display_module = types.ModuleType("IPython.display")
        display_module.HTML = lambda text: ("html", text)
        display_module.display = self.display
        ipython.display = display_module
        monkeypatch.setitem(sys.modules, "IPython", ipython)
        monkeypatch.setitem(sys.modules, "IPython.display", display_module)

    def display(self, content, display_id=False):
        handle = types.SimpleNamespace(pages=[content[1]])
        handle.update = lambda new: handle.pages.append(new[1])
        self.shown.append((display_id, handle))
        return handle


class Page(HTMLParser):
    def __init__(self, text):
        super().__init__()
        self.progress, self.text = [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "progress":
            self.progress.append(dict(attrs))

    def handle_data(self, data):
        self.text.append(data)


def test_under_a_jupyter_kernel_one_html_bar_is_updated_in_place(monkeypatch):
    kernel = FakeKernel(monkeypatch)
    assert in_notebook()
    data = regression()
    res = fit(model(), "mse", data, epochs=2, batch_size=10, progress=True)
    assert len(kernel.shown) == 1  # one output, redrawn in place
    display_id, handle = kernel.shown[0]
    assert display_id is True and len(handle.pages) >= 3  # start, epochs, end
    last = Page(handle.pages[-1])
    assert last.progress == [{"value": str(res.nit), "max": str(res.total_steps)}]
    text = "".join(last.text)
    assert f"epoch 2/2  {res.nit}/{res.total_steps}" in text
    assert f"loss {res.epoch_history['loss'][-1]:.4g}" in text and str(res.status) in text


def test_outside_a_kernel_there_is_no_notebook(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert not in_notebook()
    shell = types.SimpleNamespace(config={})  # a terminal IPython: no kernel app
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    assert not in_notebook()


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"display": "html"}, "display"),
        ({"every": 0}, "every"),
        ({"refresh_per_second": 0}, "refresh_per_second"),
    ],
)
def test_bad_options_name_the_argument(options, named):
    with pytest.raises(ValueError, match=named):
        ProgressBar(**options)
