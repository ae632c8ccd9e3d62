"""Text for people: columns that line up, lists that end, lines that fit.

Pure functions.  Column widths count what a terminal shows (a combining accent takes no cell, a
CJK ideograph two), so a table of NFD class names still lines up; long lists stop at a few rows
and say how many more there are and where all of them are; a line longer than the terminal is
cut with ``…`` (the CLI wraps a long line first; ``--json`` output is never cut).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence

ELLIPSIS = "…"


def cells(text: str) -> int:
    """Terminal cells ``text`` takes."""
    total = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        total += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return total


def ljust(text: str, width: int) -> str:
    return text + " " * max(0, width - cells(text))


def rjust(text: str, width: int) -> str:
    return " " * max(0, width - cells(text)) + text


def clip(line: str, width: int) -> str:
    """``line`` cut to ``width`` cells, ending in ``…`` when cut (``width`` <= 0: unchanged)."""
    if width <= 0 or (len(line) <= width and cells(line) <= width):
        return line
    out, used = [], 0
    for ch in line:
        step = cells(ch)
        if used + step > width - 1:
            break
        out.append(ch)
        used += step
    return "".join(out) + ELLIPSIS


def cap(rows: Sequence[str], limit: int, *, what: str = "", full: str | None = None, indent: str = "",
        slack: int = 5) -> list[str]:
    """The first ``limit`` rows and one line ``…and N more <what> (all in <full>)``; all rows
    when only a few (``slack``) more would be hidden."""
    if len(rows) <= limit + slack:
        return list(rows)
    hidden = len(rows) - limit
    where = f" (all in {full})" if full else ""
    noun = f" {what}" if what else ""
    return [*rows[:limit], f"{indent}{ELLIPSIS}and {hidden:,} more{noun}{where}"]


class Messages:
    """What a run prints, in the order people read it: tables and written files as they come,
    then the warnings (so a long table cannot scroll them away), then the summary, last.

    Used as an ``echo`` callable (``messages(line)`` prints now); :meth:`warn` and
    :meth:`summary` hold their lines until :meth:`flush`.  ``echo=None`` prints nothing.
    """

    def __init__(self, echo: Callable[[str], None] | None) -> None:
        self.echo = echo
        self.warnings: list[str] = []
        self.summaries: list[str] = []

    def __call__(self, line: str) -> None:
        if self.echo is not None:
            self.echo(line)

    def warn(self, line: str) -> None:
        self.warnings.append(line)

    def summary(self, line: str, *, replace: str | None = None) -> None:
        """Add a summary line; ``replace`` drops earlier lines starting with it (a value restated)."""
        if replace is not None:
            self.summaries = [s for s in self.summaries if not s.startswith(replace)]
        self.summaries.append(line)

    def drop(self, prefix: str) -> None:
        """Forget the summary lines starting with ``prefix`` (a note made untrue by later work)."""
        self.summaries = [s for s in self.summaries if not s.startswith(prefix)]

    def flush(self) -> None:
        if self.warnings:
            self("warnings:" if len(self.warnings) > 1 else "warning:")
            for line in self.warnings:
                self(f"  {line}")
        for line in self.summaries:
            self(line)
        self.warnings, self.summaries = [], []


def messages(echo: Callable[[str], None] | Messages | None) -> Messages:
    """``echo`` as :class:`Messages` (the same object when it already is one)."""
    return echo if isinstance(echo, Messages) else Messages(echo)
