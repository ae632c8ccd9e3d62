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
from typing import Any

from imgprep.formats.dataset import ShardEntry
from imgprep.formats.recordio import format_index_line, output_prefix, shard_names
from imgprep.storage.base import Output, Store

# publish(rec, idx, entry, consumed): commit a full shard; ``consumed`` list items are now done.
Publish = Callable[[Output, Output, ShardEntry, int], None]
# checkpoint(rec, idx, state): the shard being written, at a record boundary (see publish.Progress.open).
Checkpoint = Callable[[Output, Output, dict[str, int]], None]


class _Shard:
    """One ``.rec``/``.idx`` pair being written, with running sizes and checksums."""

    def __init__(self, rec_name: str, idx_name: str, rec: Output, idx: Output) -> None:
        self.rec_name, self.idx_name = rec_name, idx_name
        self.rec, self.idx = rec, idx
        self.rec_hash, self.idx_hash = hashlib.sha256(), hashlib.sha256()
        self.records = self.rec_bytes = self.idx_bytes = 0
        self.next_checkpoint = 0

    @classmethod
    def create(cls, rec_name: str, idx_name: str, storage: Store) -> _Shard:
        rec = storage.open_output(rec_name)
        try:
            idx = storage.open_output(idx_name)
        except BaseException:
            rec.abort()
            raise
        return cls(rec_name, idx_name, rec, idx)

    @classmethod
    def reopen(cls, rec_name: str, idx_name: str, storage: Store, state: dict[str, Any]) -> _Shard | None:
        """The shard a checkpoint left, cut back to its record boundary, hashes rebuilt by reading it."""
        rec = storage.reopen_output(rec_name, state["rec_tmp"], state["rec_bytes"])
        idx = storage.reopen_output(idx_name, state["idx_tmp"], state["idx_bytes"]) if rec else None
        if rec is None or idx is None:
            if rec is not None:
                rec.abort()
            return None
        shard = cls(rec_name, idx_name, rec, idx)
        folder = rec_name[: len(rec_name) - len(os.path.basename(rec_name))]
        for digest, name, size in ((shard.rec_hash, state["rec_tmp"], state["rec_bytes"]),
                                   (shard.idx_hash, state["idx_tmp"], state["idx_bytes"])):
            with storage.open_read(folder + name, 0, size) as fh:
                while chunk := fh.read(8 << 20):
                    digest.update(chunk)
        shard.records, shard.rec_bytes, shard.idx_bytes = state["records"], state["rec_bytes"], state["idx_bytes"]
        return shard

    def state(self, number: int, consumed: int) -> dict[str, int]:
        return {"number": number, "records": self.records, "rec_bytes": self.rec_bytes,
                "idx_bytes": self.idx_bytes, "consumed": consumed}

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
        checkpoint: Checkpoint | None = None,
        checkpoint_bytes: int = 0,
    ) -> None:
        self.prefix = output_prefix(prefix)
        self.publish = publish
        self.shard_records = shard_records
        self.shard_size = shard_size
        self.sharded = bool(shard_records or shard_size)
        self.storage = storage
        self.checkpoint = checkpoint
        self.checkpoint_bytes = checkpoint_bytes
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
            self._current = _Shard.create(rec, idx, self.storage)
            self._current.next_checkpoint = self.checkpoint_bytes
            self.number += 1
        shard = self._current
        shard.write(framed, key)
        self.records += 1
        self.bytes += len(framed)
        if self.checkpoint and self.checkpoint_bytes and shard.rec_bytes >= shard.next_checkpoint:
            shard.next_checkpoint = shard.rec_bytes + self.checkpoint_bytes
            self.checkpoint(shard.rec, shard.idx, shard.state(self.number - 1, position + 1))

    def reopen(self, state: dict[str, Any]) -> bool:
        """Continue the shard a checkpoint left (``state``); False when its temporaries are gone."""
        rec, idx = shard_names(self.prefix, state["number"] if self.sharded else None)
        shard = _Shard.reopen(rec, idx, self.storage, state)
        if shard is None:
            return False
        shard.next_checkpoint = shard.rec_bytes + self.checkpoint_bytes
        self._current, self.number = shard, state["number"] + 1
        self.records += shard.records
        self.bytes += shard.rec_bytes
        return True

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
