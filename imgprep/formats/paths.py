"""The path and name policy every entry point shares (pure checks; no file system access).

A path that comes from data (a ``.lst`` row, a COCO ``file_name``, a manifest ``source-ref``
under its prefix, a file found in a class folder) is only ever used *relative to a root the
user gave*: absolute paths, drive letters and ``..`` that climbs out are refused here, and
:mod:`imgprep.storage.roots` refuses symlinks that lead out of the root.  A name must also be
one the output formats can carry and read back unchanged: ``.lst`` is tab- and line-separated
UTF-8 text and manifests are JSON Lines, so control characters (tab, newline, CR, NUL...),
Unicode line separators (which ``str.splitlines`` also splits on) and lone surrogates (what
Python makes of file names that are not UTF-8) are refused.

Quoted values in messages are cut to :data:`QUOTE_LIMIT` characters so a 10 MB line makes a
one-line error, not a 10 MB one.
"""

from __future__ import annotations

import os
import posixpath
import stat
import unicodedata
from collections.abc import Iterator
from typing import IO

from imgprep.errors import FormatError

# Longest quoted value in an error message (characters of its repr).
QUOTE_LIMIT = 80
# Unicode categories a name may not contain: control, surrogate, line and paragraph separators.
_REFUSED_CATEGORIES = ("Cc", "Cs", "Zl", "Zp")


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)``, cut to ``limit`` characters with a note of the full length."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, str | bytes) else len(text)
    return f"{text[:limit]}... ({size} characters)"


def unrepresentable(name: str) -> str | None:
    """Why ``name`` cannot be written into a ``.lst`` or manifest and read back, or None."""
    if name.isprintable():  # the usual name, checked in C (the loop costs a microsecond per name)
        return None
    for ch in name:
        if ch.isprintable() or ch == " ":
            continue
        category = unicodedata.category(ch)
        if category in _REFUSED_CATEGORIES:
            what = f"the control character U+{ord(ch):04X}"
            if category == "Cs":
                what = "a lone surrogate (bytes that are not UTF-8)"
            return f"name {quote(name)} contains {what}, which .lst and manifest files cannot carry"
    return None


def check_relative_path(path: str) -> str | None:
    """Why ``path`` may not be used under an image root, or None if it may."""
    if not path:
        return "empty image path"
    if path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":"):
        return f"absolute image path {quote(path)}; paths must be relative to the image root"
    normalized = posixpath.normpath(path.replace("\\", "/")) if ".." in path else path
    if normalized == ".." or normalized.startswith("../"):
        return f"image path {quote(path)} escapes the image root"
    return unrepresentable(path)


def check_regular(name: str) -> None:
    """Refuse to read a device, FIFO or socket as data (``/dev/zero`` never ends; opening a FIFO
    waits for a writer), checked before the file is opened.  The one check here that touches
    the file system; a missing file is left to the caller's ``open``."""
    try:
        mode = os.stat(name).st_mode
    except OSError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise FormatError("not a regular file (a device, FIFO or socket cannot be read as data)", path=name)


def bounded_lines(fh: IO[str], limit: int, name: str) -> Iterator[str]:
    """The lines of a text file, refusing one longer than ``limit`` characters before it is
    held in memory whole."""
    lineno = 0
    while line := fh.readline(limit + 1):
        lineno += 1
        if len(line) > limit and not line.endswith("\n"):
            raise FormatError(f"line longer than {limit} characters", path=name, line=lineno)
        yield line
