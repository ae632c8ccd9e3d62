"""The one index rebasing: the ``.idx`` of shards joined end to end.

A ``.rec`` is a plain concatenation of records, so shards join byte for byte; only the index
changes: each shard's offsets move by the size of the shards before it, keys are kept.  Merge and
the Processing join both build their index here.
"""

from __future__ import annotations

from collections.abc import Sequence

from imgprep.errors import FormatError
from imgprep.formats.recordio import format_index_line, parse_index
from imgprep.storage.base import Store


def read_index(storage: Store, idx: str, rec: str, size: int) -> list[tuple[int, int]]:
    """The ``(key, offset)`` entries of ``idx``, each pointing inside ``rec`` (``size`` bytes)."""
    entries = parse_index(storage.read_text(idx), idx)
    for _, offset in entries:
        if offset >= size:
            raise FormatError(f"offset {offset} is past the end of {rec}", path=idx)
    return entries


class JoinedIndex:
    """The index of shards joined in order: :meth:`add` each shard's entries, then write :attr:`lines`.

    A key may appear once in the whole (the FormatError names the ``.idx`` that repeats it).
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.size = 0  # bytes of the shards added so far: where the next one starts
        self._seen: set[int] = set()

    def add(self, idx: str, entries: Sequence[tuple[int, int]], size: int) -> None:
        for key, offset in entries:
            if key in self._seen:
                raise FormatError(f"key {key} also appears in an earlier shard", path=idx)
            self._seen.add(key)
            self.lines.append(format_index_line(key, self.size + offset))
        self.size += size
