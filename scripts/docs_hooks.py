"""MkDocs hook (mkdocs.yml ``hooks:``): the site's home page is README.md itself.

The README is the front page on GitHub and links into ``docs/``; the site serves the same text as
``index.md`` with those links made relative to ``docs/``, so the front page has one source and a
link the README gets wrong fails the strict build like any other.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File, Files

_DOCS_LINK = re.compile(r"\]\(docs/")


def home_page(readme: str) -> str:
    """README.md as ``docs/index.md``: ``](docs/x.md)`` becomes ``](x.md)``."""
    return _DOCS_LINK.sub("](", readme)


def on_files(files: Files, config) -> Files:
    if files.get_file_from_path("index.md") is not None:
        raise SystemExit("docs/index.md exists: the home page is made from README.md (scripts/docs_hooks.py)")
    readme = Path(config.config_file_path).parent / "README.md"  # beside mkdocs.yml: the repository root
    files.append(File.generated(config, "index.md", content=home_page(readme.read_text(encoding="utf-8"))))
    return files
