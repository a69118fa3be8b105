"""Load a gallery script (``examples/<use>/<name>.py``) as a module, so a test calls its
``main`` in-process (no interpreter start, no subprocess) and asserts on what it returns."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(relative: str) -> ModuleType:
    """Import ``examples/<relative>`` under a private module name; its folder goes on
    ``sys.path`` first, so a script may import its neighbours (a reader, a generator)."""
    path = EXAMPLES / relative
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = "gallery_" + "_".join(Path(relative).with_suffix("").parts)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, f"no example at {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def example():
    """``example("vision/digits_cnn.py")`` returns the script as a module."""
    return load_example
