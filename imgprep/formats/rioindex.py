"""The one ``.idx`` parser: ``key<TAB>offset`` lines into flat arrays, for every reader.

An index has a line per record: held as Python tuples, dicts and strings it would make a reader's
memory grow with the dataset many times over, so lines are parsed a megabyte at a time into
arrays (key, offset; the line numbers only once a line was skipped), with numpy where a chunk is
plain digits, tabs and newlines (a pack's own index: a million lines in a few hundred
milliseconds), line by line where it is not.  One set of rules and messages, in three modes:

- ``"strict"`` (:func:`parse`, the RecordReader, merge, the Processing join): the first problem
  is a :class:`FormatError` naming the line — a line that is not two whole numbers, a key past
  64 bits, an offset past 18 digits or not 4-byte aligned, a key listed twice;
- ``"fast"`` (:func:`sorted_offsets`, the training reader): the same, plus every offset once
  (each record's size is the gap to the next), and only the sorted offsets kept;
- ``"report"`` (:func:`read`, verify): every problem noted with its line and parsing goes on;
  duplicate keys dropped and named; values no record can have (negative, past 64 bits) kept
  aside by entry, so the arrays stay fixed-width.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from imgprep.errors import FormatError

CHUNK = 1 << 20  # bytes parsed at a time
_U64 = 1 << 64
_I63 = 1 << 63
_DIGITS = 18  # what fits an int64 whatever the digits (the vectorised path's bound)


@dataclass
class Index:
    """The well-formed lines of one ``.idx``: ``keys[i]`` and ``offsets[i]`` of the i-th, on
    line ``line(i)``."""

    name: str
    keys: array = field(default_factory=lambda: array("Q"))
    offsets: array = field(default_factory=lambda: array("q"))
    lines: array | None = None  # None while line i + 1 holds entry i (no blank or bad line yet)
    odd_keys: dict[int, int] = field(default_factory=dict)  # entry -> key that does not fit
    odd_offsets: dict[int, int] = field(default_factory=dict)  # entry -> offset that does not fit
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, what) in line order
    size: int = 0
    sha256: str = ""
    strict: bool = True  # every line as strict mode accepts it (offsets aligned, keys unique)

    def line(self, entry: int) -> int:
        return entry + 1 if self.lines is None else self.lines[entry]

    def key(self, entry: int) -> int:
        return self.odd_keys.get(entry, self.keys[entry])

    def offset(self, entry: int) -> int:
        return self.odd_offsets.get(entry, self.offsets[entry])

    def __len__(self) -> int:
        return len(self.keys)

    def entries(self) -> list[tuple[int, int]]:
        """``[(key, offset), ...]`` in line order (what a strict reader keys records by)."""
        return list(zip(self.keys.tolist(), self.offsets.tolist(), strict=True))

    def ascending(self) -> np.ndarray | None:
        """The offsets, when they ascend line by line (as a pack writes them), without a copy."""
        offsets = np.frombuffer(self.offsets, dtype=np.int64)
        return offsets if len(offsets) < 2 or bool((offsets[1:] > offsets[:-1]).all()) else None

    def record_offsets(self) -> np.ndarray | None:
        """The sorted distinct offsets the index names, when every line is one strict mode
        accepts (the per-record checksums are matched to records through them), else None."""
        if not self.strict or self.problems:
            return None
        ascending = self.ascending()
        return ascending if ascending is not None else np.unique(np.frombuffer(self.offsets, dtype=np.int64))


# --------------------------------------------------------------------------- the three modes


def read(chunks: Iterable[bytes], name: str, *, strict: bool = False) -> Index:
    """Report mode: parse ``.idx`` bytes given in chunks, noting every problem; duplicate keys are
    dropped (and named) as a line-by-line reader keeping the first would; the file's size and
    SHA-256 noted as they pass.  ``strict``: numbers are digits only (what :func:`parse` takes)."""
    index = Index(name)
    digest = hashlib.sha256()
    carry = b""
    lineno = 0
    for chunk in chunks:
        digest.update(chunk)
        index.size += len(chunk)
        data = carry + chunk
        cut = data.rfind(b"\n") + 1  # a cut after "\n" is never inside a UTF-8 sequence or "\r\n"
        carry = data[cut:]
        lineno = _chunk(data[:cut], lineno, index, strict)
    _chunk(carry, lineno, index, strict)
    index.sha256 = digest.hexdigest()
    _drop_duplicates(index)
    return index


def parse(raw: bytes | str, name: str) -> Index:
    """Strict mode: the index of ``raw``, or a :class:`FormatError` naming the first bad line."""
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    index = read((data[at : at + CHUNK] for at in range(0, len(data), CHUNK)), name, strict=True)
    problems = list(index.problems)
    for entry, key in index.odd_keys.items():
        problems.append((index.line(entry), f"key {key} does not fit in 64 bits"))
    for entry, offset in index.odd_offsets.items():
        problems.append((index.line(entry), f"offset {offset} has more than 18 digits (past the end of any file)"))
    offsets = np.frombuffer(index.offsets, dtype=np.int64)
    misaligned = np.flatnonzero(offsets % 4 != 0)
    problems += [(index.line(int(e)), f"offset {index.offset(int(e))} is not a 4-byte-aligned position")
                 for e in misaligned[:1] if int(e) not in index.odd_offsets]
    if problems:
        line, what = min(problems)
        raise FormatError(what, path=name, line=line)
    return index


def sorted_offsets(raw: bytes, name: str) -> np.ndarray:
    """Fast mode: the sorted record offsets (``uint64``) of a strict index naming each offset once."""
    index = parse(raw, name)
    offsets = np.sort(np.frombuffer(index.offsets, dtype=np.int64))
    same = np.flatnonzero(offsets[1:] == offsets[:-1])
    if same.size:
        raise FormatError(f"two keys point at the same offset {int(offsets[same[0]])}", path=name)
    return offsets.astype(np.uint64)


# --------------------------------------------------------------------------- lines into arrays


def _chunk(data: bytes, lineno: int, index: Index, strict: bool) -> int:
    """Parse whole lines ``data`` (line ``lineno + 1`` on); the last line number."""
    if not data:
        return lineno
    text = np.frombuffer(data, np.uint8)
    if not data.endswith(b"\n") or b"\r" in data or not _plain(text, data, lineno, index):
        return _lines(data, lineno, index, strict)
    return lineno + data.count(b"\n")


def _plain(text: np.ndarray, data: bytes, lineno: int, index: Index) -> bool:
    """Append the lines of ``text`` when every one is ``digits<TAB>digits`` of at most 18 digits
    each (vectorised); False, appending nothing, when any is not."""
    tabs, ends = np.flatnonzero(text == 9), np.flatnonzero(text == 10)
    if tabs.size != ends.size:
        return False
    starts = np.concatenate([[0], ends[:-1] + 1])
    if not np.all((tabs > starts) & (tabs < ends - 1)) or np.any(tabs - starts > _DIGITS) or \
            np.any(ends - tabs - 1 > _DIGITS):
        return False
    if np.count_nonzero((text >= 48) & (text <= 57)) != text.size - tabs.size - ends.size:
        return False
    keys, offsets = _numbers(text, starts, tabs), _numbers(text, tabs + 1, ends)
    first = len(index.keys)
    if index.lines is None and lineno != first:
        index.lines = array("q", range(1, first + 1))
    if index.lines is not None:
        index.lines.extend(range(lineno + 1, lineno + 1 + keys.size))
    index.keys.frombytes(keys.astype(np.uint64).tobytes())
    index.offsets.frombytes(offsets.tobytes())
    if np.any(offsets % 4):
        index.strict = False
    return True


def _numbers(text: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The decimal numbers ``text[starts[i]:ends[i]]``, vectorised over the lines."""
    lengths = ends - starts
    value = np.zeros(starts.size, np.int64)
    for j in range(int(lengths.max(initial=0))):
        has = lengths > j
        value[has] += (text[ends[has] - 1 - j].astype(np.int64) - 48) * 10**j
    return value


def _lines(data: bytes, lineno: int, index: Index, strict: bool) -> int:
    """Line by line: what the vectorised path does not take (blank lines, CRLF, signs, long
    numbers, text that is no index).  ``strict``: a number is digits only (no sign, space or
    ``_`` as Python's ``int`` would take)."""
    for line in data.decode("utf-8", errors="replace").splitlines():
        lineno += 1
        if not line.strip():
            continue
        fields = line.split("\t")
        try:
            key, offset = (int(f) for f in fields) if len(fields) == 2 else (None, None)
        except ValueError:
            key = offset = None
        if key is None or offset is None or (strict and not all(f.isascii() and f.isdigit() for f in fields)):
            index.problems.append((lineno, f"expected 'key<TAB>offset', got {line[:60]!r}"))
            continue
        _add(index, lineno, key, offset)
    return lineno


def _add(index: Index, lineno: int, key: int, offset: int) -> None:
    entry = len(index.keys)
    if index.lines is not None:
        index.lines.append(lineno)
    elif lineno != entry + 1:
        index.lines = array("q", range(1, entry + 1))
        index.lines.append(lineno)
    if not 0 <= key < _U64:
        index.odd_keys[entry] = key
        key = 0
    if not 0 <= offset < _I63:
        index.odd_offsets[entry] = offset
        offset = -1
    if offset < 0 or offset % 4:
        index.strict = False
    index.keys.append(key)
    index.offsets.append(offset)


# --------------------------------------------------------------------------- duplicate keys


def _drop_duplicates(index: Index) -> None:
    """Name every line whose key an earlier line holds, and drop it from the arrays."""
    n = len(index.keys)
    if n == 0:
        return
    keys = np.frombuffer(index.keys, dtype=np.uint64)
    if not index.odd_keys:
        ordered = np.sort(keys)
        if not (ordered[1:] == ordered[:-1]).any():
            return  # the common case, found with the fewest temporaries
        del ordered
    entries = np.arange(n)
    if index.odd_keys:  # a key that does not fit is no array value: those are compared below
        entries = entries[~np.isin(entries, np.fromiter(index.odd_keys, dtype=np.int64))]
    order = entries[np.argsort(keys[entries], kind="stable")]  # equal keys in line order
    ordered = keys[order]
    repeat = np.zeros(len(order), dtype=bool)
    repeat[1:] = ordered[1:] == ordered[:-1]
    dupes: list[tuple[int, int]] = []  # (entry, the first entry with its key)
    if repeat.any():
        first_of_run = np.maximum.accumulate(np.where(repeat, 0, np.arange(len(order))))
        dupes += [(int(order[i]), int(order[first_of_run[i]])) for i in np.flatnonzero(repeat)]
    first: dict[int, int] = {}
    for entry in sorted(index.odd_keys):
        key = index.odd_keys[entry]
        if key in first:
            dupes.append((entry, first[key]))
        else:
            first[key] = entry
    if not dupes:
        return
    index.strict = False
    index.problems += [(index.line(e), f"duplicate key {index.key(e)} (first on line {index.line(f)})")
                       for e, f in dupes]
    index.problems.sort(key=lambda p: p[0])
    _keep(index, sorted(e for e, _ in dupes))


def _keep(index: Index, dropped: list[int]) -> None:
    """Remove entries ``dropped`` from the arrays, renumbering the odd values."""
    n = len(index.keys)
    keep = np.ones(n, dtype=bool)
    keep[dropped] = False
    renumber = np.cumsum(keep) - 1
    lines = np.arange(1, n + 1) if index.lines is None else np.frombuffer(index.lines, dtype=np.int64)
    index.lines = array("q", lines[keep].tobytes())
    index.keys = array("Q", np.frombuffer(index.keys, dtype=np.uint64)[keep].tobytes())
    index.offsets = array("q", np.frombuffer(index.offsets, dtype=np.int64)[keep].tobytes())
    index.odd_keys = {int(renumber[e]): v for e, v in index.odd_keys.items() if keep[e]}
    index.odd_offsets = {int(renumber[e]): v for e, v in index.odd_offsets.items() if keep[e]}
