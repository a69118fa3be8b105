"""The docstring examples of ``src/descend`` run, module by module.

Each module's ``>>>`` lines run in a namespace that holds the names the examples take as
given: ``descend``, ``torch``, ``np``, ``nn``, ``json``, ``fit``, ``minimize``; a small
regression table ``X`` (64 x 3) and ``y`` (64 x 1); ``model`` (``nn.Linear(3, 1)``) and
``net`` (a 3-8-1 ReLU network) over it, ``loss_fn`` (mean squared error) and
``rosenbrock`` (the test problem). An example that states its output must print it
(``...`` matches anything, whitespace is loose); one that shows its result in a comment,
as descend's docstrings do (``res.x  # array([3., 3.])``), must run. Examples run in a
temporary folder, so the files they write land there. Every module's examples run; lines
that need what a test process cannot have (torchrun, a Flower server, worker processes)
carry ``# doctest: +SKIP``.
"""

import doctest
import json
import pkgutil

import numpy as np
import pytest
import torch
from torch import nn

import descend
from descend.extras import MissingExtra

#: the extras' packages: a module that cannot import one is skipped, not failed
OPTIONAL = {"matplotlib", "pyarrow", "pandas", "sklearn", "scipy", "optuna", "fastapi"}
OPTIONAL |= {"uvicorn", "plotly", "flwr", "pydantic"}


def modules():
    found = pkgutil.walk_packages(descend.__path__, "descend.")
    return sorted(m.name for m in found if not m.name.endswith("__main__"))


def example_names():
    """What the examples take as given, fresh for each module."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 3, generator=g)
    y = X @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1 * torch.randn(64, 1, generator=g)
    torch.manual_seed(0)
    return {
        "descend": descend,
        "torch": torch,
        "np": np,
        "nn": nn,
        "json": json,
        "fit": descend.fit,
        "minimize": descend.minimize,
        "X": X,
        "y": y,
        "model": nn.Linear(3, 1),
        "net": nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1)),
        "loss_fn": nn.MSELoss(),
        "rosenbrock": descend.problems.rosenbrock,
    }


class StatedOrCommented(doctest.OutputChecker):
    """A stated output must match; an example with none (its result in a comment) runs."""

    def check_output(self, want, got, optionflags):
        return not want or super().check_output(want, got, optionflags)


def import_or_skip(name):
    try:
        return __import__(name, fromlist=["_"])
    except MissingExtra as missing:
        pytest.skip(str(missing))
    except ModuleNotFoundError as missing:
        if missing.name and missing.name.split(".")[0] in OPTIONAL:
            pytest.skip(f"{name} needs {missing.name}, an extra's package")
        raise


@pytest.mark.parametrize("name", modules())
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    module = import_or_skip(name)
    tests = [t for t in doctest.DocTestFinder().find(module, name, module=module) if t.examples]
    if not tests:
        return
    monkeypatch.chdir(tmp_path)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    runner = doctest.DocTestRunner(checker=StatedOrCommented(), optionflags=flags)
    report = []
    for test in tests:
        test.globs.update(example_names())
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
