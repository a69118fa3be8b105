"""Shared by every test: no test reads or writes the user's real runs database, no test
sees a terminal width it did not ask for, and torch runs on one intra-op thread."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One intra-op thread for the whole session, as ``make test`` sets (OMP_NUM_THREADS=1):
    the tests' tensors are small, where threads only add synchronization, and two pytest
    workers share the machine's cores. A test run by hand behaves as in CI."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
