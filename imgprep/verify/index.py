"""A shard's ``.idx`` (read by :mod:`imgprep.formats.rioindex` in report mode) compared with
what the walk found.

Checked with sorted searches over the parsed arrays.  Every message names the same line, in the
same order, as a line-by-line check would: what is wrong with a line's text and duplicate keys
first, then where lines point, then the records no line points at.
"""

from __future__ import annotations

import numpy as np

from imgprep.formats.rioindex import Index
from imgprep.formats.rioindex import read as read_index
from imgprep.verify.ledger import Walked
from imgprep.verify.report import Report

__all__ = ["Index", "check_index", "read_index"]

SLICE = 1 << 16  # index lines compared with the walk at a time


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
