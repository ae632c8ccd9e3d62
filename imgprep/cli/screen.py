"""Lines for the terminal: no line wider than it; output to a file or a pipe is never cut.

Machine-readable output (``--json``) bypasses this.
"""

from __future__ import annotations

import shutil
import sys

import click

from imgprep.formats.display import clip


def width() -> int:
    """Cells per line of the terminal stdout is (``COLUMNS`` overrides its size); 0, unbounded,
    when stdout is a file or a pipe: a log keeps every character."""
    if not sys.stdout.isatty():
        return 0
    return shutil.get_terminal_size(fallback=(0, 0)).columns


def echo(text: str = "", *, err: bool = False) -> None:
    """``click.echo`` with every line clipped to the terminal's width."""
    limit = width()
    if limit:
        text = "\n".join(clip(line, limit) for line in text.split("\n"))
    click.echo(text, err=err)
