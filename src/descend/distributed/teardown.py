"""How a process that descend started leaves once its work is done.

torch's gloo backend can abort a process at the interpreter's exit, after its group was
destroyed and every rank passed the exit barrier: the process's work is done, saved and
sent, yet it dies by SIGABRT ("terminate called without an active exception", from a
thread that C++ static destruction finds still running; pytorch/pytorch#179291, unfixed
in torch 2.13), and its launcher reports a failed rank. Measured here: about one exit in
six on two CPU processes without a barrier before the group is destroyed, and still
rarely with one, when other processes load the machine.

A process descend itself starts (a rank of ``descend fit --nproc``, a worker of a
federated simulation) therefore leaves without that teardown once its work succeeded:
:func:`exit_when_done` ends it with status 0 as soon as the interpreter starts to exit,
after the launcher's code that delivers its result. A process that failed exits as
usual, with its error. A user's own ``torchrun`` script is the user's process and exits
as Python does.
"""

from __future__ import annotations

import atexit
import os
import sys

__all__ = ["exit_when_done"]


def exit_when_done() -> None:
    """End this process with status 0 when the interpreter begins to exit: first of the
    exit handlers (the last registered runs first), its output flushed, no teardown."""
    atexit.register(_exit_now)


def _exit_now() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
