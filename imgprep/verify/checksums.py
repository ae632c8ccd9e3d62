"""Each record against the CRC-32 the dataset record keeps for it: damage named to the record.

The expected checksums are matched to records by byte offset through the shard's ``.idx`` (the
i-th smallest offset is the i-th record packed), so a record the walk finds after damaged
framing is still compared with its own checksum; without a usable index, by position.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from imgprep.errors import FormatError
from imgprep.formats import checksums
from imgprep.formats.recordio import parse_index
from imgprep.verify.report import Report, record_at
from imgprep.verify.target import Shard


@dataclass
class RecordSums:
    crcs: array
    by_offset: dict[int, int] | None  # None: match by position in the file
    damaged: int = 0
    _seen: set[int] = field(default_factory=set)

    def check(self, ordinal: int, offset: int, payload: bytes, shard: str, report: Report) -> None:
        expected = self.by_offset.get(offset) if self.by_offset is not None else (
            self.crcs[ordinal] if ordinal < len(self.crcs) else None)
        if expected is None:
            return  # not a record the pack wrote here: the .idx and count checks report it
        found = checksums.payload_crc(payload)
        if found != expected:
            self.damaged += 1
            report.add(record_at(shard, ordinal, offset, _id(payload)),
                       f"bytes differ from the packed record (CRC-32 {found:08x}, packed {expected:08x}): "
                       "damaged after packing")


def record_sums(shard: Shard, index: bytes | None) -> RecordSums | None:
    """The checks for ``shard``, or None when its dataset record keeps no per-record checksums."""
    entry = shard.expected
    if entry is None or entry.record_crc32 is None:
        return None
    crcs = checksums.decode(entry.record_crc32, entry.records)
    offsets = None
    if index is not None:
        try:
            found = [offset for _, offset in parse_index(index.decode("utf-8", errors="replace"), shard.idx or "")]
            offsets = checksums.by_offset(crcs, found)
        except FormatError:
            offsets = None  # the .idx check reports what is wrong with it
    return RecordSums(crcs, offsets)


def _id(payload: bytes) -> int | None:
    """The header id, when the damage left it readable (the message names the record by it)."""
    if len(payload) < 24:
        return None
    return int.from_bytes(payload[8:16], "little")
