"""MkDocs hook (mkdocs.yml ``hooks:``): the site's home page is README.md itself.

The README is the front page on GitHub and links into ``docs/``; the site serves the same text as
``index.md`` with those links made relative to ``docs/``, so the front page has one source and a
link the README gets wrong fails the strict build like any other. A page under ``docs/`` that
links back to the README (``../README.md``, right on GitHub) is pointed at that home page.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path, PurePosixPath

from mkdocs.structure.files import File, Files

_DOCS_LINK = re.compile(r"\]\(docs/")


class _StarredAll(logging.Filter):
    """griffe reads ``__all__ = [*NAME]`` as "the ``__all__`` of module NAME" and warns when NAME is a
    list imported from elsewhere (``imgprep/__init__.py``'s callable submodules); the reference
    names every object it shows, so that guess about the package's exports changes nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not re.search(r"Unsupported item in imgprep\.__all__:", record.getMessage())


logging.getLogger("mkdocs.plugins.griffe").addFilter(_StarredAll())
_README_LINK = re.compile(r"\]\(((?:\.\./)+)README\.md(?=[#)])")


def home_page(readme: str) -> str:
    """README.md as ``docs/index.md``: ``](docs/x.md)`` becomes ``](x.md)``."""
    return _DOCS_LINK.sub("](", readme)


def readme_links_to_home(markdown: str, page: str) -> str:
    """In ``docs/<page>``, ``](../README.md#x)`` (one ``../`` more than the page is deep) becomes
    ``](index.md#x)`` relative to the page; other links are left to the strict build to judge."""
    depth = len(PurePosixPath(page).parts) - 1

    def home(match: re.Match[str]) -> str:
        ups = match.group(1).count("../")
        return f"]({'../' * depth}index.md" if ups == depth + 1 else match.group(0)

    return _README_LINK.sub(home, markdown)


def on_files(files: Files, config) -> Files:
    if files.get_file_from_path("index.md") is not None:
        raise SystemExit("docs/index.md exists: the home page is made from README.md (scripts/docs_hooks.py)")
    readme = Path(config.config_file_path).parent / "README.md"  # beside mkdocs.yml: the repository root
    files.append(File.generated(config, "index.md", content=home_page(readme.read_text(encoding="utf-8"))))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri == "index.md":
        return markdown
    return readme_links_to_home(markdown, page.file.src_uri)
