"""The command line starts without torch: ``descend --help``, ``--version``, ``problems``,
``methods`` and ``runs list`` never import it, and the package face loads lazily.

What is asserted is the robust thing, ``'torch' not in sys.modules`` in a fresh
interpreter, never a time (``benchmarks/cli_cold_start.py`` measures the time).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import descend
from descend.cli import catalog
from descend.problems import get_problem
from descend.runs import RunRecord, RunStore

#: commands that compute nothing: they must answer without torch
LISTING = [
    ["--help"],
    ["--version"],
    ["problems"],
    ["problems", "--json"],
    ["methods"],
    ["methods", "--json"],
    ["runs", "list"],
    ["runs", "list", "--json"],
]


def _fresh_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"DESCEND_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "COLUMNS": "80"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )


def test_listing_commands_never_import_torch(tmp_path) -> None:
    result = descend.minimize(get_problem("booth"), [0.0, 0.0], "gd", max_iter=3)
    with RunStore(tmp_path / "runs.sqlite") as store:
        store.add(RunRecord.from_result("minimize", {"problem": "booth"}, result))
    done = _fresh_python(
        f"""
        import sys
        from descend.cli.app import app

        for args in {LISTING!r}:
            code = app(args, standalone_mode=False)
            assert code in (0, None), (args, code)
            heavy = ("torch", "matplotlib", "sklearn", "pyarrow", "optuna", "scipy", "pandas")
            loaded = [m for m in heavy if m in sys.modules]
            assert not loaded, (args, loaded)
            print("OK", " ".join(args))
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    for args in LISTING:
        assert f"OK {' '.join(args)}" in done.stdout
    assert "booth" in done.stdout  # runs list read the recorded run


def test_the_package_face_is_lazy_and_complete(tmp_path) -> None:
    done = _fresh_python(
        """
        import sys
        import descend

        assert "torch" not in sys.modules
        assert descend.__version__
        names = set(dir(descend))
        assert set(descend.__all__) <= names, set(descend.__all__) - names
        assert "torch" not in sys.modules  # dir() imports nothing
        assert descend.problems.get_problem("booth").dim == 2  # a submodule, on first use
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr


def test_every_public_name_is_its_module_value() -> None:
    assert sorted(descend.__all__) == sorted(descend._PUBLIC)
    for name, where in descend._PUBLIC.items():
        module_name, _, attribute = where.partition(":")
        module = importlib.import_module(module_name)
        expected = getattr(module, attribute) if attribute else module
        assert getattr(descend, name) is expected, name
    # a submodule that shares its function's name, imported directly, leaves the function
    importlib.import_module("descend.least_squares.lm")
    assert callable(descend.least_squares) and descend.minimize.__name__ == "minimize"
    try:
        descend.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("an unknown name must raise AttributeError")


def test_the_catalog_agrees_with_the_registries() -> None:
    """``descend problems``/``methods`` read the catalog; it must be what the torch-side
    registries hold. After adding a problem or method: python -m descend.cli.catalog --write
    """
    default, problems, methods = catalog.from_registries()
    assert default == catalog.DEFAULT_METHOD, "run: python -m descend.cli.catalog --write"
    assert problems == catalog.PROBLEMS, "run: python -m descend.cli.catalog --write"
    assert methods == catalog.METHODS, "run: python -m descend.cli.catalog --write"
