"""Lines for the terminal: no line wider than it; output to a file or a pipe is never cut.

Machine-readable output (``--json``) bypasses this.
"""

from __future__ import annotations

import shutil
import sys
import textwrap

import click

from imgprep.formats.display import ELLIPSIS, cells, clip


def width() -> int:
    """Cells per line of the terminal stdout is (``COLUMNS`` overrides its size); 0, unbounded,
    when stdout is a file or a pipe: a log keeps every character."""
    if not sys.stdout.isatty():
        return 0
    return shutil.get_terminal_size(fallback=(0, 0)).columns


ROWS = 4  # terminal rows one long line may wrap onto before the rest is cut


def fit(line: str, limit: int) -> list[str]:
    """``line`` as terminal rows of at most ``limit`` cells: wrapped under its own indent (a
    message stays whole), at most :data:`ROWS` of them, the last cut with ``…`` (a line of a
    million characters stays one screen)."""
    if limit <= 0 or cells(line) <= limit:
        return [line]
    indent = " " * (len(line) - len(line.lstrip(" ")))
    rows = textwrap.wrap(line, width=limit, subsequent_indent=indent + "  ", break_long_words=True,
                         break_on_hyphens=False) or [line]
    if len(rows) > ROWS:
        rows = rows[:ROWS]
        last = rows[-1]
        rows[-1] = last + " " + ELLIPSIS if cells(last) + 2 <= limit else clip(last + " " * limit, limit)
    return [clip(row, limit) for row in rows]


def echo(text: str = "", *, err: bool = False) -> None:
    """``click.echo`` with no line wider than the terminal (see :func:`fit`)."""
    limit = width()
    if limit:
        text = "\n".join(row for line in text.split("\n") for row in fit(line, limit))
    click.echo(text, err=err)
