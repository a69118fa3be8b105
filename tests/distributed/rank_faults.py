"""Commands for :class:`descend.cli.launch.Launch` to run on each rank in the tests, kept
apart from the test modules so that a rank imports little."""

from __future__ import annotations

import os


def crash_on_rank_one() -> None:
    """Rank 1 fails as a program does (not a user's mistake); the others succeed."""
    if int(os.environ["RANK"]) == 1:
        raise RuntimeError("the disk is full")


def refuse_on_every_rank() -> None:
    """Every rank meets the user's mistake, as a command raises it."""
    from descend.cli.common import UsageError

    raise UsageError("'data.csv' has no column 'nosuch' (--target)")
