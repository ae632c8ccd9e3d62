"""Lines for the terminal: no line wider than it, unless the output goes to a file or a pipe.

``COLUMNS`` (the shell's variable, read by :func:`shutil.get_terminal_size`) sets the width
where the terminal cannot be asked; machine-readable output (``--json``) bypasses this.
"""

from __future__ import annotations

import shutil

import click

from imgprep.formats.display import clip


def width() -> int:
    """Cells per line: ``COLUMNS`` when set, else the terminal's width when stdout is one; 0
    (unbounded) when stdout is a file or a pipe."""
    return shutil.get_terminal_size(fallback=(0, 0)).columns


def echo(text: str = "", *, err: bool = False) -> None:
    """``click.echo`` with every line clipped to the terminal's width."""
    limit = width()
    if limit:
        text = "\n".join(clip(line, limit) for line in text.split("\n"))
    click.echo(text, err=err)
