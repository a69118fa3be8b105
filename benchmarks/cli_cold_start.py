"""The command line's cold start: how long ``descend --help`` and the listing commands take
in a fresh interpreter, lazily loaded (as shipped) against eagerly loaded (as before).

Each command runs in a new Python process, as a user's shell starts it. Two systems:

* ``eager``: the process first imports what the package face and ``main`` used to import
  at start (every public name of ``descend``, so torch; matplotlib with the Agg backend),
  then runs the command: the cold start before the lazy face;
* ``lazy``: the command alone, as ``descend`` runs it now.

Both run in turn (rotating the order), ``--repeats`` times each; the table gives the
median wall time of each and their ratio, and checks the goal: every listing command
answers in under 0.5 s.

Example:
    $ python benchmarks/cli_cold_start.py
    $ python benchmarks/cli_cold_start.py --repeats 3 --clock cpu
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = [["--help"], ["--version"], ["problems"], ["methods"], ["runs", "list"]]
GOAL_SECONDS = 0.5

EAGER_PRELUDE = (
    "import matplotlib; matplotlib.use('Agg'); "
    "import descend; [getattr(descend, name) for name in descend.__all__]; "
)
RUN = "import sys; from descend.cli.app import main; sys.argv = ['descend', *{args!r}]; main()"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_command(args: list[str], eager: bool, env: dict[str, str], clock: str) -> float:
    """Seconds of one fresh interpreter running ``descend ARGS``: wall time, or the CPU
    time the process used (user + system), which other processes' load barely changes."""
    code = (EAGER_PRELUDE if eager else "") + RUN.format(args=args)
    wall, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, env=env, timeout=120, check=False
    )
    wall, cpu = time.perf_counter() - wall, _children_cpu() - cpu
    if done.returncode != 0:
        raise RuntimeError(f"descend {' '.join(args)} failed: {done.stderr.decode()[-500:]}")
    return cpu if clock == "cpu" else wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="runs of each command per system")
    parser.add_argument("--quick", action="store_true", help="3 runs of each")
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall", help="cpu: on a loaded machine"
    )
    options = parser.parse_args()
    repeats = 3 if options.quick else options.repeats

    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "DESCEND_HOME": home, "COLUMNS": "80"}
        print(f"{'command':<18}{'eager (s)':>11}{'lazy (s)':>10}{'eager/lazy':>12}  goal")
        print(f"({options.clock} time)")
        failed = []
        for args in COMMANDS:
            times: dict[bool, list[float]] = {True: [], False: []}
            for i in range(repeats):
                for eager in (True, False) if i % 2 == 0 else (False, True):
                    times[eager].append(time_command(args, eager, env, options.clock))
            eager_s, lazy_s = statistics.median(times[True]), statistics.median(times[False])
            met = lazy_s < GOAL_SECONDS
            failed += [] if met else [" ".join(args)]
            name = "descend " + " ".join(args)
            mark = "ok" if met else f"MISSED (> {GOAL_SECONDS} s)"
            print(f"{name:<18}{eager_s:>11.3f}{lazy_s:>10.3f}{eager_s / lazy_s:>11.1f}x  {mark}")
    print(f"median of {repeats} fresh processes each; python {sys.version.split()[0]}")
    if failed:
        print(f"goal missed by: {', '.join(failed)}")


if __name__ == "__main__":
    main()
