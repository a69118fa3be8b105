"""The documentation runs: every ```python block of README.md and docs/*.md, as written.

Each block runs alone in a fresh interpreter (its own imports, its own data), in an empty
folder, with matplotlib on the Agg backend. A block opts out only with ``<!-- no-run -->``
on the line before its fence; the opt-outs are counted, and a documentation with no
runnable block fails rather than passes on nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
OPT_OUT = "<!-- no-run -->"
TIMEOUT_S = 120

_FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)")


@dataclass(frozen=True)
class Block:
    document: str  # relative to the repository root
    ordinal: int  # 1-based, among the document's python blocks
    line: int  # 1-based line of the opening fence
    code: str
    runs: bool

    @property
    def id(self) -> str:
        return f"{self.document}:{self.ordinal}"


def python_blocks(path: Path) -> list[Block]:
    """Every fenced block tagged ``python`` in a Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    name = path.relative_to(ROOT).as_posix()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, language = opening.groups()
        end = i + 1
        while end < len(lines) and not lines[end].startswith(fence):
            end += 1
        if language.lower() in ("python", "py"):
            runs = not (i > 0 and lines[i - 1].strip() == OPT_OUT)
            code = "\n".join(lines[i + 1 : end]) + "\n"
            blocks.append(Block(name, len(blocks) + 1, i + 1, code, runs))
        i = end + 1
    return blocks


BLOCKS = [block for path in DOCUMENTS for block in python_blocks(path)]
RUNNABLE = [block for block in BLOCKS if block.runs]


def test_the_documentation_has_runnable_blocks():
    opted_out = [f"{b.id} (line {b.line})" for b in BLOCKS if not b.runs]
    assert RUNNABLE, f"no runnable python block in {[p.name for p in DOCUMENTS]}"
    # a marker that protects nothing hides a typo or a block that changed language
    for path in DOCUMENTS:
        lines = path.read_text(encoding="utf-8").splitlines()
        for n, text in enumerate(lines[:-1], start=1):
            if text.strip() == OPT_OUT:
                fence = _FENCE.match(lines[n])
                assert fence and fence.group(2).lower() in ("python", "py"), (
                    f"{path.name}:{n}: {OPT_OUT} is not on the line before a ```python fence"
                )
    print(f"{len(RUNNABLE)} runnable blocks, {len(opted_out)} opted out: {opted_out}")


@pytest.mark.parametrize("block", RUNNABLE, ids=[block.id for block in RUNNABLE])
def test_block_runs(block: Block, tmp_path: Path):
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
    where = f"{block.document}, the block at line {block.line}"
    try:
        done = subprocess.run(
            [sys.executable, "-c", block.code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        done = None
    if done is None:
        pytest.fail(f"{where} ran past {TIMEOUT_S} s", pytrace=False)
    if done.returncode != 0:
        pytest.fail(f"{where} exited {done.returncode}:\n{done.stderr[-4000:]}", pytrace=False)
