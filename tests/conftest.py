"""Shared by every test: no test reads or writes the user's real runs database, and no test
sees a terminal width it did not ask for."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_runs_database(monkeypatch: pytest.MonkeyPatch, tmp_path_factory) -> None:
    """Point DESCEND_HOME (where ``descend`` records runs) into the session's temporary
    folder, for the commands and library calls a test makes and the processes it starts."""
    monkeypatch.setenv("DESCEND_HOME", str(tmp_path_factory.getbasetemp() / "descend-home"))


@pytest.fixture(autouse=True)
def _no_inherited_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest-xdist's workers export COLUMNS=80, and the commands honour COLUMNS: a test
    that wants a width gives it (``env={"COLUMNS": ...}``), the others see none."""
    monkeypatch.delenv("COLUMNS", raising=False)
