"""MXNet ``.lst`` files: ``index<TAB>label[<TAB>label...]<TAB>relative/path``.

Reads what ``im2rec.py --list`` writes (labels such as ``3.000000``) and what the SageMaker
examples write (integers); writes integer labels when they are integral so the files diff
cleanly against hand-made ones.  Every problem is reported with the file and line.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from imgprep.errors import FormatError, reading
from imgprep.formats.paths import bounded_lines, check_relative_path, quote

# Record ids are unsigned 64-bit in the RecordIO header; labels are float32 there.
MAX_INDEX = 2**64 - 1
MAX_LABEL = 3.4028234663852886e38
# Label columns per row (a multi-hot vector per class): bounds the memory one line can ask for.
MAX_LABELS = 100_000
# Longest line accepted: a path of 4 KiB plus the labels is far below it.
MAX_LINE = 1 << 20
_BOM = "\ufeff"


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
    """One ``.lst`` line.  What :func:`parse_line` would refuse (a path the format cannot
    carry, an id or label out of range) raises FormatError here, so nothing is written through."""
    problem = check_relative_path(item.path)
    if not 0 <= item.index <= MAX_INDEX:
        problem = f"index {item.index} is not in 0..2^64-1"
    elif not item.labels or len(item.labels) > MAX_LABELS:
        problem = f"{len(item.labels)} labels (1 to {MAX_LABELS} allowed)"
    elif not all(math.isfinite(x) and abs(x) <= MAX_LABEL for x in item.labels):
        problem = f"labels {quote(item.labels)} are not all finite float32 values"
    if problem:
        raise FormatError(f"record {item.index}: {problem}")
    return "\t".join([str(item.index), *(format_label(x) for x in item.labels), item.path]) + "\n"


def parse_line(line: str, *, path: str = "<lst>", lineno: int = 0, columns: int | None = None) -> LstItem:
    """Parse one non-blank ``.lst`` line; ``columns`` enforces the file's column count."""
    if len(line) > MAX_LINE:
        raise FormatError(f"line longer than {MAX_LINE} characters ({len(line)})", path=path, line=lineno)
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) < 3:
        spaced = len(fields[0].split()) >= 3
        hint = (" — this line separates its columns with spaces; .lst columns are separated by tabs "
                "(e.g. sed 's/ \\+/\\t/g' if no path holds a space)") if spaced else ""
        raise FormatError(
            f"expected 'index<TAB>label...<TAB>path', got {len(fields)} tab-separated column(s){hint}",
            path=path,
            line=lineno,
        )
    if columns is not None and len(fields) != columns:
        raise FormatError(
            f"{len(fields)} columns where earlier lines have {columns}", path=path, line=lineno
        )
    index = _parse_index(fields[0], path, lineno)
    if len(fields) - 2 > MAX_LABELS:
        raise FormatError(f"{len(fields) - 2} labels (the limit is {MAX_LABELS})", path=path, line=lineno)
    labels = tuple(_parse_label(raw, path, lineno) for raw in fields[1:-1])
    image = fields[-1]
    problem = check_relative_path(image)
    if problem:
        raise FormatError(problem, path=path, line=lineno)
    return LstItem(index, labels, image)


def _parse_index(raw: str, path: str, lineno: int) -> int:
    try:
        index = int(raw)
    except ValueError:
        raise FormatError(f"index {quote(raw)} is not an integer", path=path, line=lineno) from None
    if index < 0:
        raise FormatError(f"index {index} is negative", path=path, line=lineno)
    if index > MAX_INDEX:
        raise FormatError(f"index {index} does not fit in 64 bits", path=path, line=lineno)
    return index


def _parse_label(raw: str, path: str, lineno: int) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise FormatError(f"label {quote(raw)} is not a number", path=path, line=lineno) from None
    if not math.isfinite(value):
        raise FormatError(f"label {quote(raw)} is not a finite number", path=path, line=lineno)
    if abs(value) > MAX_LABEL:
        raise FormatError(f"label {quote(raw)} is beyond float32's range", path=path, line=lineno)
    return value


def parse_lines(lines: Iterable[str], *, path: str = "<lst>") -> Iterator[LstItem]:
    """Parse ``.lst`` text, enforcing a constant column count and unique indices."""
    seen: dict[int, int] = {}
    columns: int | None = None
    for lineno, line in enumerate(lines, 1):
        if lineno == 1 and line.startswith(_BOM):
            line = line[1:]  # a UTF-8 byte order mark, as Windows editors write
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
    with reading(name, "list file", expected=".lst file"), open(name, encoding="utf-8", newline="") as fh:
        return list(parse_lines(bounded_lines(fh, MAX_LINE, name), path=name))


def dumps(items: Iterable[LstItem]) -> str:
    """``.lst`` text; every line must have the same number of labels, as readers require."""
    lines = []
    width = None
    for item in items:
        if width is not None and len(item.labels) != width:
            raise FormatError(f"record {item.index}: {len(item.labels)} labels where earlier records have {width}")
        width = len(item.labels)
        lines.append(format_line(item))
    return "".join(lines)
