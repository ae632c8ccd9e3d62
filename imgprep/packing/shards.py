"""Roll records into ``PREFIX.rec``/``.idx`` or ``PREFIX-00000.rec``/``.idx`` ... shards.

Each shard's ``.rec`` and ``.idx`` are written side by side under temporary names (index lines
go out as the records do, so nothing grows with the dataset) and hashed as they are written.
When a shard is full it is handed to ``publish`` (see :mod:`imgprep.packing.publish`, which
keeps the ordering invariants), so a run killed after N shards keeps N shards.
:meth:`ShardWriter.abort` discards the shard being written.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from imgprep.formats.dataset import ShardEntry
from imgprep.formats.recordio import format_index_line, output_prefix, shard_names
from imgprep.storage.base import Output, Store

# publish(rec, idx, entry, consumed): commit a full shard; ``consumed`` list items are now done.
Publish = Callable[[Output, Output, ShardEntry, int], None]


class _Shard:
    """One ``.rec``/``.idx`` pair being written, with running sizes and checksums."""

    def __init__(self, rec_name: str, idx_name: str, storage: Store) -> None:
        self.rec_name, self.idx_name = rec_name, idx_name
        self.rec = storage.open_output(rec_name)
        try:
            self.idx = storage.open_output(idx_name)
        except BaseException:
            self.rec.abort()
            raise
        self.rec_hash, self.idx_hash = hashlib.sha256(), hashlib.sha256()
        self.records = self.rec_bytes = self.idx_bytes = 0

    def write(self, framed: bytes, key: int) -> None:
        line = format_index_line(key, self.rec_bytes).encode()
        self.rec.write(framed)
        self.idx.write(line)
        self.rec_hash.update(framed)
        self.idx_hash.update(line)
        self.records += 1
        self.rec_bytes += len(framed)
        self.idx_bytes += len(line)

    def entry(self) -> ShardEntry:
        return ShardEntry(
            rec=os.path.basename(self.rec_name), idx=os.path.basename(self.idx_name), records=self.records,
            rec_bytes=self.rec_bytes, idx_bytes=self.idx_bytes,
            rec_sha256=self.rec_hash.hexdigest(), idx_sha256=self.idx_hash.hexdigest(),
        )

    def abort(self) -> None:
        self.idx.abort()
        self.rec.abort()


class ShardWriter:
    def __init__(
        self,
        prefix: str,
        publish: Publish,
        *,
        shard_records: int = 0,
        shard_size: int = 0,
        first_shard: int = 0,
        storage: Store,
    ) -> None:
        self.prefix = output_prefix(prefix)
        self.publish = publish
        self.shard_records = shard_records
        self.shard_size = shard_size
        self.sharded = bool(shard_records or shard_size)
        self.storage = storage
        self.number = first_shard  # of the next shard to open
        self._current: _Shard | None = None
        self.records = 0
        self.bytes = 0

    def _full(self, size: int) -> bool:
        shard = self._current
        if shard is None or not self.sharded:
            return False
        return bool((self.shard_records and shard.records >= self.shard_records)
                    or (self.shard_size and shard.rec_bytes + size > self.shard_size))

    def write(self, framed: bytes, key: int, position: int) -> None:
        """Append a record; ``position`` is its item's place in the list (for the progress file)."""
        if self._full(len(framed)):
            self._roll(position)
        if self._current is None:
            rec, idx = shard_names(self.prefix, self.number if self.sharded else None)
            self._current = _Shard(rec, idx, self.storage)
            self.number += 1
        self._current.write(framed, key)
        self.records += 1
        self.bytes += len(framed)

    def _roll(self, consumed: int) -> None:
        shard, self._current = self._current, None
        if shard is None:
            return
        try:
            self.publish(shard.rec, shard.idx, shard.entry(), consumed)
        except BaseException:
            shard.abort()
            raise

    def close(self, consumed: int) -> None:
        """Publish the last shard (all ``consumed`` list items are done)."""
        self._roll(consumed)

    def abort(self) -> None:
        if self._current is not None:
            self._current.abort()
            self._current = None
