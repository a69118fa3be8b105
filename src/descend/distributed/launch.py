"""Run a function on the ranks of a data-parallel launch: torch's elastic launcher (what
``torchrun`` runs) starts ``nproc`` processes on this machine, of ``nnodes`` machines in
all, and each calls the function in a gloo process group of ``nproc * nnodes`` ranks.

This is what ``descend fit --nproc`` and the rerun of its recorded runs
(:func:`descend.tabular.rerun_fit`) run on. Each rank joins the group from the
launcher's environment, calls ``module.name(**options)`` and leaves the group once every
rank is done; rank 0's return value comes back (the others' too, on their node). Every
rank but 0 runs with its output silenced and ``rank_zero_only`` options in place of the
given ones (rank 0 alone shows and writes). The ranks of one machine meet on a free local
port (as ``torchrun --standalone``); several machines at the static rendezvous
``master_addr:master_port`` that node 0 serves (as ``torchrun --master-addr``). No
restarts: a rank that fails stops the launch, raising :class:`RankFailure`.

Example:
    >>> values = run_on_ranks("my_module", "train", {"epochs": 3}, nproc=2)  # doctest: +SKIP
    >>> values[0]  # rank 0's return value  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch.distributed as dist

from descend.distributed.data_parallel import COLLECTIVE_TIMEOUT
from descend.distributed.teardown import exit_when_done

__all__ = ["DEFAULT_MASTER_PORT", "RankFailure", "run_on_ranks"]

#: the rendezvous port of several machines when none is given (torchrun's)
DEFAULT_MASTER_PORT = 29500

#: the launcher's own loggers: a failed rank is reported by RankFailure, not their tracebacks
LAUNCHER_LOGGERS = ("torch.distributed.elastic", "torch.multiprocessing")


class RankFailure(RuntimeError):
    """A rank of a launch failed; the first to fail, and why.

    Attributes:
        rank, world: the rank that failed and the number of ranks.
        error_type: the name of the exception it raised ("" when it died without one).
        reason: its message, or the signal or exit code that ended it.
    """

    def __init__(self, rank: int, world: int, error_type: str, reason: str) -> None:
        self.rank, self.world, self.error_type, self.reason = rank, world, error_type, reason
        kind = f"{error_type}: " if error_type else ""
        super().__init__(f"rank {rank} of {world} failed: {kind}{reason}")


def run_on_ranks(
    module: str,
    name: str,
    options: dict[str, Any],
    *,
    nproc: int,
    nnodes: int = 1,
    node_rank: int = 0,
    master_addr: str = "127.0.0.1",
    master_port: int | None = None,
    rank_zero_only: dict[str, Any] | None = None,
) -> dict[int, Any]:
    """Call ``module.name(**options)`` on each of this machine's ``nproc`` ranks; their
    return values by local rank.

    Args:
        module, name: the function, imported again by each rank.
        options: its keyword arguments (pickled to every rank).
        nproc: ranks on this machine, >= 1; ``nnodes`` machines in all, this one
            ``node_rank`` in ``[0, nnodes)``, meeting at ``master_addr:master_port``
            (default port: :data:`DEFAULT_MASTER_PORT`; on one machine without a port, a
            free local one).
        rank_zero_only: options every rank but 0 takes in place of the given ones.

    Raises:
        RankFailure: the first rank that failed, and why.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch

    world = nproc * nnodes
    with tempfile.TemporaryDirectory(prefix="descend-launch-") as logs, _quiet_launcher():
        config = _launch_config(nproc, nnodes, node_rank, master_addr, master_port, logs)
        try:
            return elastic_launch(config, _rank)(module, name, options, rank_zero_only or {})
        except ChildFailedError as exc:
            rank, failure = exc.get_first_failure()
            raise _failure(rank, failure, world) from None


def _launch_config(
    nproc: int,
    nnodes: int,
    node_rank: int,
    master_addr: str,
    master_port: int | None,
    log_dir: str,
) -> Any:
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
    from torch.distributed.launcher.api import LaunchConfig

    if nnodes == 1 and master_port is None:
        backend, endpoint, rendezvous = "c10d", f"{master_addr}:0", {}
        run_id = f"descend-{uuid.uuid4().hex[:12]}"
    else:
        backend, endpoint = "static", f"{master_addr}:{master_port or DEFAULT_MASTER_PORT}"
        rendezvous, run_id = {"rank": node_rank}, "descend"
    return LaunchConfig(
        min_nodes=nnodes,
        max_nodes=nnodes,
        nproc_per_node=nproc,
        run_id=run_id,
        rdzv_backend=backend,
        rdzv_endpoint=endpoint,
        rdzv_configs=rendezvous,
        max_restarts=0,
        monitor_interval=0.1,
        start_method="spawn",
        logs_specs=DefaultLogsSpecs(log_dir=log_dir),
    )


def _rank(module: str, name: str, options: dict[str, Any], rank_zero_only: dict[str, Any]) -> Any:
    """One rank: join the group, call the function, leave the group once every rank is
    done (a rank that tears its connections down while a peer still holds them can abort
    the peer's exit), and the process without the interpreter's teardown, where torch's
    gloo can still abort it (:mod:`descend.distributed.teardown`)."""
    if int(os.environ["RANK"]) != 0:
        options = {**options, **rank_zero_only}
        _silence_output()
    dist.init_process_group("gloo", timeout=COLLECTIVE_TIMEOUT)
    value = getattr(importlib.import_module(module), name)(**options)
    dist.barrier()
    dist.destroy_process_group()
    exit_when_done()  # after the launcher has the value: see descend.distributed.teardown
    return value


def _silence_output() -> None:
    """Send this process's stdout and stderr (its file descriptors too) to /dev/null."""
    sys.stdout.flush()
    sys.stderr.flush()
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)


def _failure(rank: int, failure: Any, world: int) -> RankFailure:
    """The failure as :class:`RankFailure`: the exception the rank recorded (its error
    file holds ``"Type: message"``), else the signal or exit code that ended it."""
    if isinstance(failure.message, dict):
        text = " ".join(str(failure.message.get("message", "")).split())
        error_type, _, reason = text.partition(": ")
        return RankFailure(rank, world, error_type, reason)
    if failure.signal_name() != "<N/A>":
        return RankFailure(rank, world, "", f"killed by {failure.signal_name()}")
    return RankFailure(rank, world, "", f"exit code {failure.exitcode}")


@contextmanager
def _quiet_launcher() -> Iterator[None]:
    """The launcher's log lines (its tracebacks of a failed rank) off while it runs."""
    loggers = [logging.getLogger(name) for name in LAUNCHER_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
