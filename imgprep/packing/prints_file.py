"""Fingerprint files the pack publishes beside its shards: joining the parts hosts packed.

The rows themselves are written by :class:`imgprep.splits.prints_spool.PrintsSpool`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from imgprep.formats.dataset import PrintsEntry
from imgprep.splits.prints_spool import PrintsSpool
from imgprep.storage.base import Store

__all__ = ["join_prints"]

JOIN_BLOCK = 1 << 16  # records picked at a time when parts interleave


def join_prints(storage: Store, records: Sequence[tuple[str, Any] | None], order: Sequence[tuple[int, int]],
                uri: str) -> PrintsEntry | None:
    """The fingerprint file of records joined from parts (``order``: ``(part, position)`` per joined
    record), from the parts' own files (``records[p]``: the part's record URI and
    :class:`~imgprep.formats.dataset.DatasetRecord`); None when a part has none (then nor has the join)."""
    from imgprep.formats.dataset import record_folder
    from imgprep.splits.prints_file import open_prints, pick

    present = [r for r in records if r is not None]
    if not present or any(rec.fingerprints is None for _, rec in present):
        return None
    index = {p: k for k, p in enumerate(p for p, r in enumerate(records) if r is not None)}
    parts = [open_prints(storage, record_folder(name[: -len(".dataset.json")]), rec.fingerprints, rec.records)
             for name, rec in present]
    spool = PrintsSpool()
    try:
        pairs = np.asarray(order, np.int64).reshape(-1, 2)
        for lo in range(0, len(pairs), JOIN_BLOCK):
            block = pairs[lo: lo + JOIN_BLOCK]
            source = np.array([index[int(p)] for p in block[:, 0]], np.int64)
            spool.add_columns(pick(parts, source, block[:, 1]), len(block))
        return spool.publish(storage, uri)
    finally:
        spool.close()
