"""Each record against the CRC-32 the dataset record keeps for it: damage named to the record.

The expected checksums are matched to records by byte offset through the shard's ``.idx`` (the
i-th smallest offset is the i-th record packed), so a record the walk finds after damaged
framing is still compared with its own checksum; without a usable index, by position.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

import numpy as np

from imgprep.formats import checksums
from imgprep.formats.recordio import header_id
from imgprep.formats.rioindex import Index
from imgprep.verify.report import Report, record_at
from imgprep.verify.target import Shard


@dataclass
class RecordSums:
    crcs: array
    offsets: np.ndarray | None  # each record's offset, ascending (crcs[i] is the i-th's); None: by position
    damaged: int = 0

    def check(self, ordinal: int, offset: int, payload: bytes, shard: str, report: Report) -> None:
        expected = self._by_offset(offset) if self.offsets is not None else (
            self.crcs[ordinal] if ordinal < len(self.crcs) else None)
        if expected is None:
            return  # not a record the pack wrote here: the .idx and count checks report it
        found = checksums.payload_crc(payload)
        if found != expected:
            self.damaged += 1
            report.add(record_at(shard, ordinal, offset, header_id(payload)),
                       f"bytes differ from the packed record (CRC-32 {found:08x}, packed {expected:08x}): "
                       "damaged after packing")


    def _by_offset(self, offset: int) -> int | None:
        offsets = self.offsets
        if offsets is None:
            return None
        i = int(np.searchsorted(offsets, offset))
        return self.crcs[i] if i < len(offsets) and offsets[i] == offset else None


def record_sums(shard: Shard, index: Index | None) -> RecordSums | None:
    """The checks for ``shard``, or None when its dataset record keeps no per-record checksums."""
    entry = shard.expected
    if entry is None or entry.record_crc32 is None:
        return None
    crcs = checksums.decode(entry.record_crc32, entry.records)
    # the i-th smallest offset of an index a strict reader accepts is the i-th record packed
    # (checksums.by_offset, kept as a sorted array); otherwise the .idx check reports the index
    offsets = index.record_offsets() if index is not None else None
    if offsets is not None and len(offsets) != len(crcs):
        offsets = None
    return RecordSums(crcs, offsets)
