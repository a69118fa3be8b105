"""Shared by every test: no test reads or writes the user's real runs database."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_runs_database(monkeypatch: pytest.MonkeyPatch, tmp_path_factory) -> None:
    """Point DESCEND_HOME (where ``descend`` records runs) into the session's temporary
    folder, for the commands and library calls a test makes and the processes it starts."""
    monkeypatch.setenv("DESCEND_HOME", str(tmp_path_factory.getbasetemp() / "descend-home"))
