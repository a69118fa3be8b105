"""``descend fit --nproc N``: the command run again as N data-parallel processes by
torch's elastic launcher (what ``torchrun`` runs), on one machine or several.

:func:`relaunched` wraps a command. With ``--nproc 1`` and ``--nnodes 1`` (the defaults)
it is the command itself. Otherwise the launcher starts ``nproc`` workers on this node;
each joins a gloo process group of ``nproc * nnodes`` ranks and runs the command with
the same options, and the command trains with ``distributed=True``
(:func:`in_worker`). Rank 0 alone prints, saves and records: every other rank runs with
its output silenced and its rank-0-only options (``--save``, ``--plot``, the run record)
off. Nodes meet at a rendezvous: a free local port for one node; for several, the static
rendezvous at ``--master-addr:--master-port`` that node 0 serves, as ``torchrun --nnodes
M --node-rank R --master-addr A --master-port P`` does.

A rank that fails stops the launch (no restarts): the command prints one line naming
the rank and its error (a user's mistake, such as a missing column, as the command
itself would print it) and exits with a non-zero code.

Example:
    $ descend fit data.csv --target y --model mlp-classifier --batch-size 64 --nproc 2
    $ descend fit data.csv --target y --nnodes 2 --node-rank 0 --master-addr 10.0.0.1 \\
        --master-port 29500 --nproc 4   # and --node-rank 1 on the second machine
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import typer

from descend.cli.common import UsageError

__all__ = ["Launch", "in_worker", "relaunched"]

#: the rendezvous port of several nodes when --master-port is not given (torchrun's)
DEFAULT_MASTER_PORT = 29500

#: the launcher's own loggers: their tracebacks of a failed rank are replaced by one line
LAUNCHER_LOGGERS = ("torch.distributed.elastic", "torch.multiprocessing")

#: the prefix of a failure that is a user's mistake, seen by a rank
USER_ERROR = "CommandUsageError"


class CommandUsageError(Exception):
    """A rank's usage error (bad input), carried to the launching process as its message."""


class RankFailed(UsageError):
    """A rank that failed for another reason than bad input: one line, exit code 1."""

    exit_code = 1


@dataclass(frozen=True)
class Launch:
    """Where the command's processes run: ``nproc`` on each of ``nnodes`` machines, this
    one being ``node_rank``, meeting at ``master_addr:master_port`` when there are several.

    Raises:
        ValueError: ``nproc`` or ``nnodes`` below 1, ``node_rank`` outside
            ``[0, nnodes)``, or ``master_port`` outside ``[1, 65535]``, each named by its
            option.
    """

    nproc: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int | None = None

    def __post_init__(self) -> None:
        for option, value in (("--nproc", self.nproc), ("--nnodes", self.nnodes)):
            if value < 1:
                raise ValueError(f"{option} must be an integer >= 1, got {value}")
        if not 0 <= self.node_rank < self.nnodes:
            raise ValueError(
                f"--node-rank must be in [0, --nnodes) = [0, {self.nnodes}), got {self.node_rank}"
            )
        if self.master_port is not None and not 1 <= self.master_port <= 65535:
            raise ValueError(f"--master-port must be in [1, 65535], got {self.master_port}")
        if not self.master_addr.strip():
            raise ValueError("--master-addr must name a host, got an empty string")

    @property
    def world(self) -> int:
        """The number of ranks: ``nproc * nnodes``."""
        return self.nproc * self.nnodes

    def config(self, log_dir: str) -> Any:
        """The launcher's ``LaunchConfig``: one node on a free local port (as ``torchrun
        --standalone``) unless a port or several nodes are given, then the static
        rendezvous at ``master_addr:master_port``; no restarts."""
        from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
        from torch.distributed.launcher.api import LaunchConfig

        if self.nnodes == 1 and self.master_port is None:
            backend, endpoint, options = "c10d", f"{self.master_addr}:0", {}
        else:
            port = self.master_port or DEFAULT_MASTER_PORT
            backend, endpoint = "static", f"{self.master_addr}:{port}"
            options = {"rank": self.node_rank}
        return LaunchConfig(
            min_nodes=self.nnodes,
            max_nodes=self.nnodes,
            nproc_per_node=self.nproc,
            run_id=f"descend-{uuid.uuid4().hex[:12]}" if backend == "c10d" else "descend",
            rdzv_backend=backend,
            rdzv_endpoint=endpoint,
            rdzv_configs=options,
            max_restarts=0,
            monitor_interval=0.1,
            start_method="spawn",
            logs_specs=DefaultLogsSpecs(log_dir=log_dir),
        )

    def run(self, module: str, name: str, options: dict[str, Any]) -> int:
        """Run the command ``module.name`` on this node's ranks with ``options``; the
        highest exit code of its ranks.

        Raises:
            UsageError: a rank failed: which, and why, in one line.
        """
        from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
        from torch.distributed.launcher.api import elastic_launch

        with tempfile.TemporaryDirectory(prefix="descend-launch-") as logs, _quiet_launcher():
            try:
                codes = elastic_launch(self.config(logs), _worker)(module, name, options)
            except ChildFailedError as exc:
                rank, failure = exc.get_first_failure()
                user_error = _user_error(failure)
                if user_error is not None:  # every rank meets it: as one process says it
                    raise UsageError(user_error) from None
                raise RankFailed(_failure_line(rank, failure, self.world)) from None
        return max(codes.values(), default=0)


def in_worker() -> bool:
    """Whether this process is one rank of a launch (its process group is up)."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def relaunched(
    rank_zero_only: dict[str, Any],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command taking ``nproc``, ``nnodes``, ``node_rank``, ``master_addr`` and
    ``master_port``: when they ask for more than one process, the command runs on each
    rank of a launch instead, the options in ``rank_zero_only`` (name: value) replaced by
    those values on every rank but 0.

    The decorated command must be reachable by its module and name (the workers import it
    again): decorate the function the module exposes.
    """

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def wrapper(**options: Any) -> Any:
            launch = Launch(
                nproc=options["nproc"],
                nnodes=options["nnodes"],
                node_rank=options["node_rank"],
                master_addr=options["master_addr"],
                master_port=options["master_port"],
            )
            if launch.world == 1 or in_worker():
                return command(**options)
            code = launch.run(
                command.__module__, command.__name__, {**options, RANK_ZERO_ONLY: rank_zero_only}
            )
            if code:
                raise typer.Exit(code)
            return None

        return wrapper

    return decorate


#: the key under which the options that only rank 0 keeps travel to the workers
RANK_ZERO_ONLY = "__rank_zero_only__"


def _worker(module: str, name: str, options: dict[str, Any]) -> int:
    """One rank: join the process group, run the command, leave the group once every rank
    is done. A usage error becomes the rank's failure, carried to the launcher."""
    import torch.distributed as dist

    from descend.distributed.data_parallel import COLLECTIVE_TIMEOUT

    options = dict(options)
    rank_zero_only = options.pop(RANK_ZERO_ONLY, {})
    if int(os.environ["RANK"]) != 0:
        options.update(rank_zero_only)
        _silence_output()
    # the gloo group this rank trains in, from the launcher's environment
    dist.init_process_group("gloo", timeout=COLLECTIVE_TIMEOUT)
    command = getattr(importlib.import_module(module), name)
    try:
        command(**options)
        code = 0
    except typer.Exit as exc:
        code = exc.exit_code
    except UsageError as exc:
        raise CommandUsageError(" ".join(exc.format_message().split())) from None
    # a rank that tears its connections down while a peer still holds them can abort the
    # peer's exit: leave together
    dist.barrier()
    dist.destroy_process_group()
    return code


def _silence_output() -> None:
    """Send this process's stdout and stderr (its file descriptors too) to /dev/null."""
    sys.stdout.flush()
    sys.stderr.flush()
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)


def _recorded(failure: Any) -> str | None:
    """The error a failed rank recorded (``"Type: message"`` on one line), if any."""
    if not isinstance(failure.message, dict):  # no error file: a signal or an exit code
        return None
    return " ".join(str(failure.message.get("message", "")).split())


def _user_error(failure: Any) -> str | None:
    """The usage error a rank met, in the command's words; None for any other failure."""
    text = _recorded(failure)
    if text is None or not text.startswith(f"{USER_ERROR}: "):
        return None
    return text[len(USER_ERROR) + 2 :]


def _failure_line(rank: int, failure: Any, world: int) -> str:
    """One line: the rank that failed and why."""
    text = _recorded(failure)
    if text is not None:
        why = text
    elif failure.signal_name() != "<N/A>":
        why = f"killed by {failure.signal_name()}"
    else:
        why = f"exit code {failure.exitcode}"
    return f"rank {rank} of {world} failed: {why}"


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
