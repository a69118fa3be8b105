"""Data-parallel fit on a process group of one rank, in this process: the refusals at the
boundary and the paths two-process runs rarely take (max_time agreed across ranks)."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parent))
import fit_worker

import descend


@pytest.fixture
def one_rank_group() -> Iterator[None]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        yield
    finally:  # later tests must not find a group and train distributed
        dist.destroy_process_group()


def test_a_group_of_one_rank_trains_as_one_process(one_rank_group: None) -> None:
    alone = fit_worker.train("adam", False)
    grouped = fit_worker.train("adam", None)  # detected from the initialized group
    for a, b in zip(alone.model.parameters(), grouped.model.parameters()):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-15)


def test_curvature_methods_are_refused_with_the_way_out(one_rank_group: None) -> None:
    X, y = fit_worker.data()
    with pytest.raises(ValueError, match=r"'lbfgs' uses curvature.*descend\.distributed"):
        descend.fit(
            fit_worker.model(), "mse", (X, y), optimizer="lbfgs", batch_size="full",
            distributed=True, progress=False,
        )  # fmt: skip


def test_max_time_stops_every_rank_at_the_same_step(one_rank_group: None) -> None:
    res = fit_worker.train("momentum", True, stopping=descend.StoppingCriteria(max_time=1e-9))
    assert res.status == descend.Status.MAX_TIME
    assert res.nit == 0


def test_distributed_must_be_a_bool_or_none() -> None:
    X, y = fit_worker.data()
    with pytest.raises(TypeError, match="distributed must be True, False or None, got 'yes'"):
        descend.fit(fit_worker.model(), "mse", (X, y), distributed="yes", progress=False)
