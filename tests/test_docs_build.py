"""The documentation site builds with ``mkdocs build --strict`` (a broken link, a missing
page or a docstring mkdocstrings cannot render fails it), offline, and the command-line
page names every command the app has."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from click import Group

ROOT = Path(__file__).resolve().parents[1]


def test_the_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is in the dev extra")
    pytest.importorskip("mkdocstrings", reason="mkdocstrings is in the dev extra")
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or "mkdocs"
    done = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "site" / "api" / "minimize" / "index.html").is_file()
    page = (tmp_path / "site" / "api" / "minimize" / "index.html").read_text()
    assert "OptimizeResult" in page and "max_iter" in page


def commands(group, prefix=""):
    for name, command in group.commands.items():
        yield f"{prefix}{name}"
        if isinstance(command, Group):
            yield from commands(command, f"{prefix}{name} ")


def test_the_command_line_page_names_every_command():
    from descend.cli.app import app

    page = (ROOT / "docs" / "api" / "cli.md").read_text()
    missing = [
        name for name in commands(typer.main.get_command(app)) if f"`descend {name}" not in page
    ]
    assert not missing, f"docs/api/cli.md does not describe: {missing}"


def test_every_page_of_docs_is_in_the_nav():
    config = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md"))
    assert [page for page in pages if f": {page}" not in config] == []


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_every_relative_link_of_the_docs_resolves():
    """What mkdocs cannot check: links out of docs/ (to ../benchmarks/README.md), which
    work where the docs are read on GitHub."""
    broken = []
    for page in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:
        for target in LINK.findall(page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []
