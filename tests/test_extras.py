"""The lean install: the core runs without any extra, and a feature whose extra is missing
says so in one line naming it (``pip install 'descend[viz]'``).

A fresh interpreter hides the extras' packages (``sys.modules[name] = None`` makes their
import fail, as on a machine without them) and reports what each feature did.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")

HIDDEN = ["matplotlib", "pyarrow", "pandas", "sklearn", "scipy", "optuna", "fastapi", "plotly"]

PROBE = textwrap.dedent(
    """
    import json, sys
    for name in HIDDEN:
        sys.modules[name] = None
    import torch
    from torch import nn

    import descend
    from descend.callbacks import ProgressBar
    from descend.diagnostics import gradcheck, lr_range_test

    torch.set_num_threads(1)
    outcome = {}

    def attempt(name, action):
        try:
            action()
            outcome[name] = "ok"
        except Exception as error:
            outcome[name] = [type(error).__name__, str(error)]

    def core():
        res = descend.minimize(lambda x: ((x - 1) ** 2).sum(), [0.0, 0.0])
        assert res.converged, res.message
        X = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
        fitted = descend.fit(nn.Linear(3, 1), "mse", (X, X.sum(1, keepdim=True)), epochs=2,
                             callbacks=[ProgressBar(display="log")], progress=False)
        assert fitted.success and "<table>" in fitted._repr_html_() + res._repr_html_()
        assert gradcheck(lambda x: (x**3).sum(), [1.0, 2.0]).passed
        lr_range_test(lambda x: (x**2).sum(), [3.0], steps=20)
        descend.least_squares(lambda x: x - 1, [0.0, 0.0])

    attempt("core", core)
    attempt("viz", lambda: __import__("descend.viz"))
    sweep = lr_range_test(lambda x: (x**2).sum(), [3.0], steps=20)
    attempt("lr_range plot", sweep.plot)
    attempt("to_pandas", descend.minimize(lambda x: (x**2).sum(), [1.0]).history.to_pandas)
    attempt("stream", lambda: descend.train.stream("table.csv", target="y"))
    attempt("estimators", lambda: __import__("descend.estimators"))
    attempt("tune", lambda: __import__("descend.tune"))
    attempt("playground", lambda: __import__("descend.playground.api"))
    print(json.dumps(outcome))
    """
)


@pytest.fixture(scope="module")
def without_extras():
    """What each feature did in an interpreter without any extra's package."""
    code = f"HIDDEN = {HIDDEN!r}\n{PROBE}"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_core_runs_without_any_extra(without_extras):
    assert without_extras["core"] == "ok"


@pytest.mark.parametrize(
    ("feature", "extra"),
    [
        ("viz", "viz"),
        ("lr_range plot", "viz"),
        ("to_pandas", "pandas"),
        ("stream", "data"),
        ("estimators", "estimators"),
        ("tune", "tune"),
        ("playground", "playground"),
    ],
)
def test_a_missing_extra_is_one_line_naming_it(without_extras, feature, extra):
    kind, message = without_extras[feature]
    assert kind == "MissingExtra"
    assert "\n" not in message and message.endswith(f"pip install 'descend[{extra}]'")


def test_all_holds_every_extra_and_dev_installs_all():
    with open(Path(__file__).resolve().parents[1] / "pyproject.toml", "rb") as handle:
        project = tomllib.load(handle)["project"]
    extras = project["optional-dependencies"]
    (everything,) = extras["all"]
    assert everything.startswith("descend[") and everything.endswith("]")
    assert set(everything[len("descend[") : -1].split(",")) == set(extras) - {"all", "dev"}
    assert "descend[all]" in extras["dev"]
    heavy = ("pyarrow", "matplotlib", "pandas", "scikit-learn", "optuna", "fastapi")
    assert not [dep for dep in project["dependencies"] if dep.startswith(heavy)]


def test_a_command_without_its_extra_says_which_in_one_line(tmp_path):
    """descend tune without Optuna: one 'error:' line naming the extra, no traceback."""
    table = tmp_path / "t.csv"
    table.write_text("a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    code = (
        "import sys; sys.modules['optuna'] = None\n"
        "from descend.cli.app import main\n"
        f"sys.argv = ['descend', 'tune', {str(table)!r}, '--target', 'y']\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert lines[0].endswith("pip install 'descend[tune]'")
