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

The launching is :func:`descend.distributed.launch.run_on_ranks`'s; this module gives
it the command's words. A rank that fails stops the launch (no restarts): the command
prints one line naming the rank and its error and exits 1, or for a user's mistake every
rank meets (a missing column) the line one process prints, exit 2.

Example:
    $ descend fit data.csv --target y --model mlp-classifier --batch-size 64 --nproc 2
    $ descend fit data.csv --target y --nnodes 2 --node-rank 0 --master-addr 10.0.0.1 \\
        --master-port 29500 --nproc 4   # and --node-rank 1 on the second machine
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from descend.cli.common import UsageError

__all__ = ["Launch", "RankFailed", "in_worker", "relaunched"]


class RankFailed(UsageError):
    """A rank that failed for another reason than bad input: one line, exit code 1."""

    exit_code = 1


@dataclass(frozen=True)
class Launch:
    """Where the command's processes run: ``nproc`` on each of ``nnodes`` machines, this
    one being ``node_rank``, meeting at ``master_addr:master_port`` when there are several.

    Raises:
        ValueError: ``nproc`` or ``nnodes`` below 1, ``node_rank`` outside
            ``[0, nnodes)``, ``master_port`` outside ``[1, 65535]`` or an empty
            ``master_addr``, each named by its option.
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

    def run(
        self, module: str, name: str, options: dict[str, Any], rank_zero_only: dict[str, Any]
    ) -> dict[int, Any]:
        """Call ``module.name(**options)`` on this node's ranks; their return values.

        Raises:
            UsageError: the user's mistake a rank met, in the command's words (exit 2).
            RankFailed: any other failure of a rank: which, and why (exit 1).
        """
        from descend.distributed.launch import RankFailure, run_on_ranks

        try:
            return run_on_ranks(
                module,
                name,
                options,
                nproc=self.nproc,
                nnodes=self.nnodes,
                node_rank=self.node_rank,
                master_addr=self.master_addr,
                master_port=self.master_port,
                rank_zero_only=rank_zero_only,
            )
        except RankFailure as failure:
            if failure.error_type == UsageError.__name__:
                raise UsageError(failure.reason) from None
            raise RankFailed(str(failure)) from None


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

    The decorated command must be reachable by its module and name (the ranks import it
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
            launch.run(command.__module__, command.__name__, options, rank_zero_only)
            return None

        return wrapper

    return decorate
