"""A griffe extension for the API reference: descend's docstrings title their doctests
``Example:`` (Google style's singular, which griffe reads as a note); this reads it as
``Examples:``, so the ``>>>`` lines render as code instead of Markdown text."""

import re
from typing import Any

from griffe import Extension

_EXAMPLE_TITLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class ExamplesSections(Extension):
    """Rename each docstring's ``Example:`` section to ``Examples:`` as it is loaded."""

    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE_TITLE.sub(r"\1Examples:", obj.docstring.value)
