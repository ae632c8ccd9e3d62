"""MXNet ``.lst`` files: ``index<TAB>label[<TAB>label...]<TAB>relative/path``.

Reads what ``im2rec.py --list`` writes (labels such as ``3.000000``) and what the SageMaker
examples write (integers); writes integer labels when they are integral so the files diff
cleanly against hand-made ones.  Every problem is reported with the file and line.
"""

from __future__ import annotations

import math
import os
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from imgprep.errors import FormatError


@dataclass(frozen=True)
class LstItem:
    """One line of a ``.lst``: record id, labels (one or a multi-hot/multi-label vector), path."""

    index: int
    labels: tuple[float, ...]
    path: str

    @property
    def label(self) -> float:
        """The single label (the first one for multi-label lines)."""
        return self.labels[0]


def format_label(value: float) -> str:
    """``3`` for integral values, the shortest round-tripping form otherwise."""
    value = float(value)
    if value.is_integer():
        return str(int(value))
    return repr(value)


def format_line(item: LstItem) -> str:
    return "\t".join([str(item.index), *(format_label(x) for x in item.labels), item.path]) + "\n"


def check_relative_path(path: str) -> str | None:
    """Why ``path`` may not be used under an image root, or None if it may."""
    if not path:
        return "empty image path"
    if path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":"):
        return f"absolute image path {path!r}; paths must be relative to the image root"
    normalized = posixpath.normpath(path.replace("\\", "/"))
    if normalized == ".." or normalized.startswith("../"):
        return f"image path {path!r} escapes the image root"
    return None


def parse_line(line: str, *, path: str = "<lst>", lineno: int = 0, columns: int | None = None) -> LstItem:
    """Parse one non-blank ``.lst`` line; ``columns`` enforces the file's column count."""
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) < 3:
        raise FormatError(
            f"expected 'index<TAB>label...<TAB>path', got {len(fields)} tab-separated column(s)",
            path=path,
            line=lineno,
        )
    if columns is not None and len(fields) != columns:
        raise FormatError(
            f"{len(fields)} columns where earlier lines have {columns}", path=path, line=lineno
        )
    try:
        index = int(fields[0])
    except ValueError:
        raise FormatError(f"index {fields[0]!r} is not an integer", path=path, line=lineno) from None
    if index < 0:
        raise FormatError(f"index {index} is negative", path=path, line=lineno)
    labels = []
    for raw in fields[1:-1]:
        try:
            value = float(raw)
        except ValueError:
            raise FormatError(f"label {raw!r} is not a number", path=path, line=lineno) from None
        if not math.isfinite(value):
            raise FormatError(f"label {raw!r} is not a finite number", path=path, line=lineno)
        labels.append(value)
    image = fields[-1]
    problem = check_relative_path(image)
    if problem:
        raise FormatError(problem, path=path, line=lineno)
    return LstItem(index, tuple(labels), image)


def parse_lines(lines: Iterable[str], *, path: str = "<lst>") -> Iterator[LstItem]:
    """Parse ``.lst`` text, enforcing a constant column count and unique indices."""
    seen: dict[int, int] = {}
    columns: int | None = None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        item = parse_line(line, path=path, lineno=lineno, columns=columns)
        columns = len(item.labels) + 2
        if item.index in seen:
            raise FormatError(
                f"duplicate index {item.index} (first on line {seen[item.index]})", path=path, line=lineno
            )
        seen[item.index] = lineno
        yield item


def read_lst(path: str | os.PathLike[str]) -> list[LstItem]:
    """Read and validate a whole ``.lst`` file."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8", newline="") as fh:
            return list(parse_lines(fh, path=name))
    except FileNotFoundError:
        raise FormatError("no such list file", path=name) from None
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=name) from None


def dumps(items: Iterable[LstItem]) -> str:
    return "".join(format_line(item) for item in items)
