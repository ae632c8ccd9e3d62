"""A shard's ``.idx`` read into flat arrays and compared with what the walk found.

An index has a line per record: held as Python tuples, dicts and strings they would make
verify's memory grow with the dataset many times over, so the lines are parsed chunk by chunk into
arrays (key, offset; the line numbers only once a line was skipped) and checked with sorted
searches.  Every message names the same line, in the same order, as a line-by-line check would:
what is wrong with a line's text and duplicate keys first, then where lines point, then the
records no line points at.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from imgprep.verify.ledger import Walked
from imgprep.verify.report import Report

CHUNK = 1 << 20  # bytes of .idx parsed at a time
SLICE = 1 << 16  # index lines compared with the walk at a time
_U64 = 1 << 64
_I63 = 1 << 63


@dataclass
class Index:
    """The well-formed lines of one ``.idx``: ``keys[i]`` and ``offsets[i]`` of the i-th, on
    line ``line(i)``.  Keys outside ``[0, 2**64)`` and offsets outside ``[0, 2**63)`` (never a
    record's id or start) are kept aside by entry, so the arrays stay fixed-width."""

    name: str
    keys: array = field(default_factory=lambda: array("Q"))
    offsets: array = field(default_factory=lambda: array("q"))
    lines: array | None = None  # None while line i + 1 holds entry i (no blank or bad line yet)
    odd_keys: dict[int, int] = field(default_factory=dict)  # entry -> key that does not fit
    odd_offsets: dict[int, int] = field(default_factory=dict)  # entry -> offset that does not fit
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, what) of unreadable lines
    size: int = 0
    sha256: str = ""
    strict: bool = True  # every line as recordio.parse_index accepts it (the checksums' offsets)

    def line(self, entry: int) -> int:
        return entry + 1 if self.lines is None else self.lines[entry]

    def key(self, entry: int) -> int:
        return self.odd_keys.get(entry, self.keys[entry])

    def offset(self, entry: int) -> int:
        return self.odd_offsets.get(entry, self.offsets[entry])

    def _add(self, lineno: int, key: int, offset: int) -> None:
        entry = len(self.keys)
        if self.lines is not None:
            self.lines.append(lineno)
        elif lineno != entry + 1:
            self.lines = array("q", range(1, entry + 1))
            self.lines.append(lineno)
        if not 0 <= key < _U64:
            self.odd_keys[entry] = key
            key = 0
        if not 0 <= offset < _I63:
            self.odd_offsets[entry] = offset
            offset = -1
        if offset < 0 or offset % 4:
            self.strict = False
        self.keys.append(key)
        self.offsets.append(offset)

    def ascending(self) -> np.ndarray | None:
        """The offsets, when they ascend line by line (as a pack writes them), without a copy."""
        offsets = np.frombuffer(self.offsets, dtype=np.int64)
        return offsets if len(offsets) < 2 or bool((offsets[1:] > offsets[:-1]).all()) else None

    def record_offsets(self) -> np.ndarray | None:
        """The sorted distinct offsets the index names, when every line is one a strict reader
        accepts (the per-record checksums are matched to records through them), else None."""
        if not self.strict or self.problems:
            return None
        ascending = self.ascending()
        return ascending if ascending is not None else np.unique(np.frombuffer(self.offsets, dtype=np.int64))


def read_index(chunks: Iterable[bytes], name: str) -> Index:
    """Parse ``.idx`` bytes given in chunks; duplicate keys are dropped (and named) as a
    line-by-line reader keeping the first would, and the file's size and SHA-256 noted."""
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
        lineno = _parse(data[:cut], lineno, index)
    _parse(carry, lineno, index)
    index.sha256 = digest.hexdigest()
    _drop_duplicates(index)
    return index


def _parse(data: bytes, lineno: int, index: Index) -> int:
    for line in data.decode("utf-8", errors="replace").splitlines():
        lineno += 1
        if not line.strip():
            continue
        fields = line.split("\t")
        try:
            key, offset = (int(f) for f in fields) if len(fields) == 2 else (None, None)
        except ValueError:
            key = offset = None
        if key is None or offset is None:
            index.problems.append((lineno, f"expected 'key<TAB>offset', got {line[:60]!r}"))
            continue
        index._add(lineno, key, offset)
    return lineno


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


def check_index(index: Index, walked: Walked, report: Report) -> None:
    """The ``.idx`` against the walk, in line order: what is wrong with a line's text, lines that
    point at no record's start or at one with another id; then the records no line points at
    (in file order)."""
    name, shard = index.name, walked.shard
    for lineno, what in index.problems:
        report.add(f"{name} line {lineno}", what)
    starts = walked.offsets
    ids = np.frombuffer(walked.ids, dtype=np.uint64)
    offsets = np.frombuffer(index.offsets, dtype=np.int64)
    keys = np.frombuffer(index.keys, dtype=np.uint64)
    odd = None
    if index.odd_keys:  # a key that does not fit in 64 bits equals no record's id
        odd = np.zeros(len(offsets), dtype=bool)
        odd[list(index.odd_keys)] = True
    indexed = np.zeros(len(starts), dtype=bool)
    for begin in range(0, len(offsets) if len(starts) else 0, SLICE):  # slices bound the temporaries
        part = slice(begin, begin + SLICE)
        at = np.searchsorted(starts, offsets[part])
        inside = at < len(starts)
        np.minimum(at, len(starts) - 1, out=at)
        hit = inside & (starts[at] == offsets[part])
        other = ids[at] != keys[part]
        if odd is not None:
            other |= odd[part]
        other &= hit
        indexed[at[hit]] = True
        for i in np.flatnonzero(~hit | other):
            _point(index, walked, begin + int(i), int(at[i]) if hit[i] else None, shard, report)
    if not len(starts):
        for entry in range(len(offsets)):
            _point(index, walked, entry, None, shard, report)
    for i in np.flatnonzero(~indexed):
        report.add(walked.where(int(i)), f"is not in {name}")


def _point(index: Index, walked: Walked, entry: int, record: int | None, shard: str, report: Report) -> None:
    key, offset = index.key(entry), index.offset(entry)
    where = f"{index.name} line {index.line(entry)}"
    if record is None:
        report.add(where, f"key {key} points at byte {offset}, which is not the start of a record in {shard}")
    else:
        report.add(where, f"key {key} points at byte {offset}, the start of record #{walked.ordinal(record)} "
                          f"whose id is {walked.ids[record]}")
