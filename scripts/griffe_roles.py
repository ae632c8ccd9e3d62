"""Griffe extension (mkdocs.yml, mkdocstrings ``extensions``): Sphinx roles in docstrings as code.

imgprep's docstrings name other objects the Sphinx way (``:class:`Dataset```, ``:func:`pack```);
Markdown would show the role's name as text. The reference shows the name as code instead.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj):`~?([^`]+)`")


def plain_roles(text: str) -> str:
    """``:class:`~imgprep.data.Sampler``` → ```imgprep.data.Sampler```."""
    return _ROLE.sub(lambda m: f"`{m.group(1)}`", text)


class SphinxRolesAsCode(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain_roles(obj.docstring.value)
