from __future__ import annotations

import pytest

import descend
from descend.problems import get_problem


@pytest.fixture(scope="session")
def booth_run():
    """A small recorded-able minimize run and the configuration that reproduces it."""
    config = {
        "problem": "booth",
        "x0": [-3.0, 4.5],
        "method": "momentum",
        "options": {"lr": 0.02},
        "settings": {"max_iter": 40, "record": True},
    }
    result = descend.minimize(
        get_problem("booth"), config["x0"], "momentum", lr=0.02, max_iter=40, record=True
    )
    return config, result


@pytest.fixture
def db(tmp_path, monkeypatch):
    """A fresh database path under tmp_path, also set as DESCEND_HOME."""
    monkeypatch.setenv("DESCEND_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "runs.sqlite"
