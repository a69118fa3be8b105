"""Recording the runs of ``descend minimize``, ``compare`` and ``fit`` in the runs database."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from descend.cli.common import UsageError
from descend.runs import RunRecord, RunStore, StoreError
from descend.tabular import data_identity

__all__ = ["CliRecorder", "minimize_config", "new_group"]


class CliRecorder:
    """Records a command's runs. Made before the runs start, so that a database that
    cannot be used stops the command before it spends any time.

    Example:
        >>> from rich.console import Console
        >>> recorder = CliRecorder(Path("runs.db"))
        >>> config = minimize_config("rosenbrock", [-1.2, 1.0], "bfgs", {}, {})
        >>> result = descend.minimize(rosenbrock, [-1.2, 1.0], "bfgs")
        >>> recorder.record("minimize", config, result)  # the run's id
        1
        >>> recorder.announce(Console(color_system=None, width=200))
        recorded as run 1 in ...runs.db (see: descend runs show 1)
    """

    def __init__(self, db: Path | None, enabled: bool = True) -> None:
        self.enabled = enabled
        self.ids: list[int] = []
        self.path: Path | None = None
        if enabled:
            # open it once now (creating it if need be) to find a broken file early
            try:
                with RunStore(db) as store:
                    self.path = store.path
                    store.check_writable()
            except StoreError as exc:
                raise UsageError(str(exc)) from exc

    def record(
        self,
        kind: str,
        config: dict[str, Any],
        result: Any,
        *,
        label: str | None = None,
        group: str | None = None,
        seed: int | None = None,
        runner: str | None = None,
    ) -> int | None:
        """Record one run (a short transaction of its own); its id, or None when off.

        A ``config`` that names a ``data`` file also keeps its absolute path and the
        SHA-256 of its bytes, for ``descend runs rerun`` from any folder.
        """
        if self.path is None:
            return None
        if isinstance(config.get("data"), str) and Path(config["data"]).is_file():
            config = {**config, **data_identity(config["data"])}
        entry = RunRecord.from_result(
            kind, config, result, label=label, group=group, seed=seed, runner=runner
        )
        try:
            with RunStore(self.path) as store:
                run_id = store.add(entry)
        except StoreError as exc:
            raise UsageError(str(exc)) from exc
        self.ids.append(run_id)
        return run_id

    def announce(self, console: Any) -> None:
        """One dim line saying where the runs went, for the user to find them again."""
        if self.path is None or not self.ids:
            return
        if len(self.ids) == 1:
            what = f"run {self.ids[0]}"
            hint = f"descend runs show {self.ids[0]}"
        else:
            what = f"runs {self.ids[0]}-{self.ids[-1]}"
            hint = f"descend runs compare {' '.join(map(str, self.ids))}"
        console.print(
            f"recorded as {what} in {self.path} (see: {hint})", style="dim", soft_wrap=True
        )


def new_group(prefix: str) -> str:
    """A name for runs recorded together: ``compare-3f9a2c1e``."""
    return f"{prefix}-{secrets.token_hex(4)}"


def minimize_config(
    problem: str, x0: list[float], method: str, options: dict[str, Any], settings: dict[str, Any]
) -> dict[str, Any]:
    """What :func:`descend.runs.minimize_runner` needs to run it again."""
    return {
        "problem": problem,
        "x0": [float(v) for v in x0],
        "method": method,
        "options": dict(options),
        "settings": dict(settings),
    }
