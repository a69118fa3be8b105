"""One intra-op thread for these tests: a client's fit is a few small steps, which extra
threads on a shared machine only slow down."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
