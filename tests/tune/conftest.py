"""One intra-op thread for these tests: a trial is a few epochs of a small model, which
extra threads on a shared machine only slow down."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
