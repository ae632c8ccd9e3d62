"""Roll records into ``PREFIX.rec``/``.idx`` or ``PREFIX-00000.rec``/``.idx`` ... shards.

Each shard's ``.rec`` and ``.idx`` are written side by side under temporary names (index lines
go out as the records do, so nothing grows with the dataset) and hashed as they are written.
When a shard is full it is handed to ``publish`` (see :mod:`imgprep.packing.publish`, which
keeps the ordering invariants), so a run killed after N shards keeps N shards.
:meth:`ShardWriter.abort` discards the shard being written.

A shard streamed to S3 is checkpointed at the parts S3 already holds, not at the last record:
the writer keeps a few record boundaries (one per ``checkpoint_bytes / 8``, dropped once behind
the uploaded bytes) and records the last one at or below them.  ``--resume`` regenerates the
records from that boundary on, drops the bytes S3 holds (the output is deterministic, so they
are the same bytes) and continues the upload (:class:`_ResumedShard`).
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import queue
import tempfile
import threading
from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

from imgprep.errors import FormatError, StorageError
from imgprep.formats.checksums import record_crc
from imgprep.formats.dataset import ShardEntry
from imgprep.formats.recordio import format_index_line, record_ids
from imgprep.imaging.native import index_lines
from imgprep.layout.names import output_prefix, shard_names
from imgprep.layout.progress import OpenShard
from imgprep.storage.base import Output, Store

# publish(rec, idx, entry, consumed, crcs): commit a full shard; ``consumed`` list items are now
# done; ``crcs``: its records' CRC-32s (None: some were written by a killed run, not seen here).
Publish = Callable[[Output, Output, ShardEntry, int, array | None], None]
# checkpoint(rec, idx, state): the shard being written, at a record boundary (see publish.Progress.open).
Checkpoint = Callable[[Output, Output, OpenShard], None]


class Boundary(NamedTuple):
    """A record boundary of the shard being written: where a resumed run can start again."""

    offset: int  # of the record in the shard's .rec
    records: int  # before it in the shard
    position: int  # its item's place in the list
    skipped: int  # images skipped before it


class _Digests:
    """SHA-256 of a shard's ``.rec`` and ``.idx``, updated on a thread of their own.

    One SHA-256 stream runs at about a gigabyte a second on one core; on the writer's thread it
    would cap a many-core pack.  ``hashlib`` releases the GIL while it hashes, so the writer
    hands the bytes it wrote to this thread (at most ``_QUEUED`` batches wait, which bounds the
    memory) and goes on; :meth:`finish` waits for the last of them.
    """

    _QUEUED = 4
    _INLINE = 64 << 10  # smaller batches are hashed on the spot: a thread hop costs more

    def __init__(self) -> None:
        self.rec, self.idx = hashlib.sha256(), hashlib.sha256()
        self._queue: queue.Queue[tuple[Any, bytes] | None] | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def update(self, rec: bytes | memoryview, idx: bytes) -> None:
        if self._queue is None and len(rec) < self._INLINE:
            self.rec.update(rec)
            self.idx.update(idx)
            return
        if self._queue is None:
            # Kept only once started: a SIGTERM landing in start() must leave finish() nothing to join.
            work: queue.Queue[tuple[Any, bytes] | None] = queue.Queue(self._QUEUED)
            thread = threading.Thread(target=self._run, args=(work,), name="imgprep-sha256", daemon=True)
            thread.start()
            self._queue, self._thread = work, thread
        self._queue.put((rec, idx))

    def _run(self, work: queue.Queue[tuple[Any, bytes] | None]) -> None:
        try:
            while (batch := work.get()) is not None:
                self.rec.update(batch[0])
                self.idx.update(batch[1])
        except BaseException as exc:  # noqa: BLE001 - raised on the writer's thread by finish()
            self._error = exc
            while work.get() is not None:  # keep the writer from blocking on a full queue
                pass

    def finish(self) -> None:
        """Wait until every byte handed over is hashed (the thread then ends)."""
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = self._thread = None
        if self._error is not None:
            raise self._error


def _part(crcs: Sequence[int] | None, start: int, stop: int) -> Sequence[int] | None:
    return None if crcs is None else crcs[start:stop]


def _crcs_of(records: bytes | memoryview, sizes: Sequence[int]) -> array:
    """The records' checksums, for callers that did not make them (the packer's workers do)."""
    view, at, crcs = memoryview(records), 0, array("I")
    for size in sizes:
        crcs.append(record_crc(view[at : at + size]))
        at += size
    return crcs


class _Shard:
    """One ``.rec``/``.idx`` pair being written, with running sizes and checksums."""

    def __init__(self, rec_name: str, idx_name: str, rec: Output, idx: Output) -> None:
        self.rec_name, self.idx_name = rec_name, idx_name
        self.rec, self.idx = rec, idx
        self.digests = _Digests()
        self.records = self.rec_bytes = self.idx_bytes = 0
        # CRC-32 of each record (formats.checksums); None when some records were written by a
        # killed run and not read back here (the publisher reads the shard back at the end)
        self.crcs: array | None = array("I")
        self.next_checkpoint = 0
        self.boundaries: collections.deque[Boundary] = collections.deque()
        self.next_boundary = 0

    def mark(self, position: int, skipped: int, every: int) -> None:
        """Keep the boundary before the record at ``position`` if ``every`` bytes passed since the last."""
        if not self.boundaries or self.rec_bytes >= self.next_boundary:
            self.boundaries.append(Boundary(self.rec_bytes, self.records, position, skipped))
            self.next_boundary = self.rec_bytes + every

    def boundary_within(self, size: int) -> Boundary:
        """The last kept boundary at or below byte ``size``; earlier ones are dropped."""
        while len(self.boundaries) > 1 and self.boundaries[1].offset <= size:
            self.boundaries.popleft()
        return self.boundaries[0]

    def seal(self) -> None:
        """Finish what the shard needs before it is published (nothing, unless resumed)."""

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
    def reopen(cls, rec_name: str, idx_name: str, storage: Store, state: OpenShard) -> _Shard | None:
        """The shard a checkpoint left, cut back to its record boundary, hashes rebuilt by reading it."""
        rec = storage.reopen_output(rec_name, state.rec_tmp, state.rec_bytes)
        idx = storage.reopen_output(idx_name, state.idx_tmp, state.idx_bytes) if rec else None
        if rec is None or idx is None:
            if rec is not None:
                rec.abort()
            return None
        shard = cls(rec_name, idx_name, rec, idx)
        folder = rec_name[: len(rec_name) - len(os.path.basename(rec_name))]
        for digest, name, size in ((shard.digests.rec, state.rec_tmp, state.rec_bytes),
                                   (shard.digests.idx, state.idx_tmp, state.idx_bytes)):
            with storage.open_read(folder + name, 0, size) as fh:
                while chunk := fh.read(8 << 20):
                    digest.update(chunk)
        shard.crcs = None  # the records before the checkpoint: read back when the run commits
        shard.records, shard.rec_bytes, shard.idx_bytes = state.records, state.rec_bytes, state.idx_bytes
        return shard

    def state(self, number: int, consumed: int) -> OpenShard:
        return OpenShard(number=number, records=self.records, rec_bytes=self.rec_bytes, consumed=consumed,
                         idx_bytes=self.idx_bytes)

    def write(self, records: bytes | memoryview, sizes: Sequence[int], keys: Sequence[int],
              crcs: Sequence[int] | None) -> None:
        """Append records (``records`` back to back, ``sizes[i]`` bytes each) and their index lines;
        ``crcs`` are their CRC-32s, made here when None."""
        lines = index_lines(keys, sizes, self.rec_bytes)
        self.rec.write(records)
        self.idx.write(lines)
        self.digests.update(records, lines)
        if self.crcs is not None:
            self.crcs.extend(_crcs_of(records, sizes) if crcs is None else crcs)
        self.records += len(sizes)
        self.rec_bytes += len(records)
        self.idx_bytes += len(lines)

    def entry(self) -> ShardEntry:
        """What the dataset record says of the shard; its checksums (:attr:`crcs`) go beside it."""
        self.digests.finish()
        return ShardEntry(
            rec=os.path.basename(self.rec_name), idx=os.path.basename(self.idx_name), records=self.records,
            rec_bytes=self.rec_bytes, idx_bytes=self.idx_bytes,
            rec_sha256=self.digests.rec.hexdigest(), idx_sha256=self.digests.idx.hexdigest(),
        )

    def abort(self) -> None:
        self.digests.finish()
        self.idx.abort()
        self.rec.abort()


class _ResumedShard(_Shard):
    """A shard whose S3 upload a killed run began: continued after the parts S3 holds.

    Records are regenerated from the checkpointed boundary; the bytes S3 already holds are
    dropped instead of written.  The ``.idx`` lines of the records from the boundary on wait in
    a local temporary file.  Sealing completes the upload (the ``.rec`` is visible before its
    ``.idx``, as always), reads it back once to hash it and to rebuild the ``.idx`` lines of the
    records the killed run wrote, then writes the ``.idx``: S3 does not serve an upload's parts
    before it is complete, and a SHA-256 cannot be resumed from a checkpoint.
    """

    def __init__(self, rec_name: str, idx_name: str, rec: Output, storage: Store, start: Boundary) -> None:
        self._tail = tempfile.TemporaryFile(prefix="imgprep-idx-")  # noqa: SIM115 - closed on seal/abort
        super().__init__(rec_name, idx_name, rec, _NO_OUTPUT)
        self.storage = storage
        self.start = start
        self.head_records = start.records
        self.records, self.rec_bytes = start.records, start.offset
        self.held = rec.bytes_written - start.offset  # bytes S3 holds that the next records repeat
        self.boundaries.append(start)
        self.crcs = None  # the killed run's records are not here: read back when the run commits

    def write(self, records: bytes | memoryview, sizes: Sequence[int], keys: Sequence[int],
              crcs: Sequence[int] | None) -> None:
        lines = index_lines(keys, sizes, self.rec_bytes)
        drop = min(self.held, len(records))
        if drop < len(records):
            self.rec.write(memoryview(records)[drop:])
        self.held -= drop
        self._tail.write(lines)
        self.records += len(sizes)
        self.rec_bytes += len(records)

    def seal(self) -> None:
        if self.held:
            raise StorageError(f"the records now end {self.held} bytes before what the killed run uploaded; "
                               "rerun without --resume", path=self.rec_name)
        self.rec.commit()
        try:
            self._index_and_hash()
        except BaseException:
            self.storage.delete(self.rec_name)  # not whole: leave no .rec a reader could take
            raise

    def _index_and_hash(self) -> None:
        self.idx = self.storage.open_output(self.idx_name)
        count = 0
        try:
            for offset, key in record_ids(self._read_back()):
                if count < self.head_records:
                    self._index(format_index_line(key, offset).encode())
                elif count == self.head_records:
                    if offset != self.start.offset:
                        raise FormatError(f"record {count} starts at byte {offset}, not {self.start.offset}")
                    self._index_tail()
                count += 1
        except FormatError as exc:
            raise StorageError(f"the resumed upload does not continue the killed run's records ({exc}); "
                               "rerun without --resume", path=self.rec_name) from None
        if count == self.head_records:
            self._index_tail()
        if count != self.records:
            raise StorageError(f"holds {count} records after the resumed upload, {self.records} were packed; "
                               "rerun without --resume", path=self.rec_name)

    def _read_back(self) -> Iterator[bytes]:
        self.digests.rec = hashlib.sha256()
        with self.storage.open_read(self.rec_name) as fh:
            while chunk := fh.read(8 << 20):
                self.digests.rec.update(chunk)
                yield chunk

    def _index(self, line: bytes) -> None:
        self.idx.write(line)
        self.digests.idx.update(line)
        self.idx_bytes += len(line)

    def _index_tail(self) -> None:
        self._tail.seek(0)
        while chunk := self._tail.read(1 << 20):
            self._index(chunk)
        self._tail.close()

    def abort(self) -> None:
        self._tail.close()
        super().abort()


class _NoOutput(Output):
    """The ``.idx`` of a resumed shard before it is sealed: nothing is written to it."""

    uri = ""

    def write(self, data: bytes | bytearray | memoryview) -> int:
        raise RuntimeError("imgprep bug: a resumed shard writes its index when sealed")

    def commit(self) -> None:
        raise RuntimeError("imgprep bug: a resumed shard is sealed before it is published")

    def abort(self) -> None:
        pass


_NO_OUTPUT = _NoOutput()


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
        skipped: Callable[[], int] = lambda: 0,
        retire: Callable[[int, int], None] = lambda _written, _consumed: None,
    ) -> None:
        self.prefix = output_prefix(prefix)
        self.publish = publish
        self.shard_records = shard_records
        self.shard_size = shard_size
        self.sharded = bool(shard_records or shard_size)
        self.storage = storage
        self.checkpoint = checkpoint
        self.checkpoint_bytes = checkpoint_bytes
        self.boundary_every = max(checkpoint_bytes // 8, 1)
        self.skipped = skipped  # how many images were skipped so far (for S3 checkpoints)
        self.retire = retire  # removes the old generation; called before any shard is published
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

    def write(self, records: bytes | memoryview, sizes: Sequence[int], keys: Sequence[int], position: int,
              crcs: Sequence[int] | None = None) -> None:
        """Append consecutive records: ``records`` holds them back to back, ``sizes[i]`` bytes,
        key ``keys[i]`` and CRC-32 ``crcs[i]`` each (None: computed here); the first is item
        ``position`` of the list, the next ones follow it (for the progress file).  Runs of
        records between shard ends, checkpoints and resume boundaries are written with one call
        each: the per-record work here is a few comparisons."""
        view = memoryview(records)
        track = bool(self.checkpoint and self.checkpoint_bytes)
        shard = self._current
        if shard is not None and self._quiet(shard, len(sizes), len(view), track):
            shard.write(view, sizes, keys, crcs)  # most runs: nothing happens within them
            self.records += len(sizes)
            self.bytes += len(view)
            return
        first = begin = 0  # first record and byte of the run not yet written
        at = 0  # byte offset of record i
        for i, size in enumerate(sizes):
            if shard is None or self._event_before(shard, i - first, at - begin, size, track):
                if i > first and shard is not None:
                    shard.write(view[begin:at], sizes[first:i], keys[first:i], _part(crcs, first, i))
                    first, begin = i, at
                self._start_record(size, position + i, track)
                shard = self._current
            at += size
            if track and shard is not None and shard.rec_bytes + (at - begin) >= shard.next_checkpoint:
                shard.write(view[begin:at], sizes[first:i + 1], keys[first:i + 1], _part(crcs, first, i + 1))
                first, begin = i + 1, at
                shard.next_checkpoint = shard.rec_bytes + self.checkpoint_bytes
                self._checkpoint(shard, position + i + 1)
        if shard is not None and first < len(sizes):
            shard.write(view[begin:at], sizes[first:], keys[first:], _part(crcs, first, len(sizes)))
        self.records += len(sizes)
        self.bytes += len(view)

    def _quiet(self, shard: _Shard, count: int, size: int, track: bool) -> bool:
        """Whether nothing can happen within a run of ``count`` records of ``size`` bytes -- no
        shard end, resume boundary or checkpoint -- by the bounds of what the record-by-record
        loop tests (which decides whenever this is not sure)."""
        if self.sharded and ((self.shard_records and shard.records + count > self.shard_records)
                             or (self.shard_size and shard.rec_bytes + size > self.shard_size)):
            return False
        return not track or (bool(shard.boundaries) and shard.rec_bytes + size < shard.next_boundary
                             and shard.rec_bytes + size < shard.next_checkpoint)

    def _event_before(self, shard: _Shard, pending: int, pending_bytes: int, size: int, track: bool) -> bool:
        """Whether something happens before the next record (``pending`` records of ``pending_bytes``
        not yet written): the shard is full, or a resume boundary is due."""
        if self.sharded and ((self.shard_records and shard.records + pending >= self.shard_records)
                             or (self.shard_size and shard.rec_bytes + pending_bytes + size > self.shard_size)):
            return True
        return track and (not shard.boundaries or shard.rec_bytes + pending_bytes >= shard.next_boundary)

    def _start_record(self, size: int, position: int, track: bool) -> None:
        """Before a record of ``size`` bytes at list ``position``: roll a full shard, open one,
        keep a resume boundary."""
        if self._full(size):
            self._roll(position)
        if self._current is None:
            rec, idx = shard_names(self.prefix, self.number if self.sharded else None)
            self._current = _Shard.create(rec, idx, self.storage)
            self._current.next_checkpoint = self.checkpoint_bytes
            self.number += 1
        if track:
            self._current.mark(position, self.skipped(), self.boundary_every)

    def _checkpoint(self, shard: _Shard, consumed: int) -> None:
        if self.checkpoint is None:  # write() checks first
            return
        held = shard.rec.uploaded()
        if held is None:  # a local shard: checkpointed at this record boundary
            shard.boundary_within(shard.rec_bytes)  # only S3 shards go back to one: keep few
            self.checkpoint(shard.rec, shard.idx, shard.state(self.number - 1, consumed))
            return
        size, upload = held
        start = shard.boundary_within(size)
        if upload is None:  # S3 holds none of it yet
            return
        self.checkpoint(shard.rec, shard.idx, OpenShard(number=self.number - 1, records=start.records,
                                                        rec_bytes=start.offset, consumed=start.position,
                                                        skipped=start.skipped, upload=upload))

    def reopen(self, state: OpenShard) -> bool:
        """Continue the shard a checkpoint left (``state``); False when its temporaries are gone."""
        rec, idx = shard_names(self.prefix, state.number if self.sharded else None)
        shard: _Shard | None
        if state.upload is not None:
            out = self.storage.reopen_output(rec, json.dumps(state.upload), state.rec_bytes)
            start = Boundary(state.rec_bytes, state.records, state.consumed, state.skipped)
            shard = _ResumedShard(rec, idx, out, self.storage, start) if out is not None else None
        else:
            shard = _Shard.reopen(rec, idx, self.storage, state)
        if shard is None:
            return False
        shard.next_checkpoint = shard.rec_bytes + self.checkpoint_bytes
        self._current, self.number = shard, state.number + 1
        self.records += shard.records
        self.bytes += shard.rec_bytes
        return True

    def _roll(self, consumed: int) -> None:
        shard, self._current = self._current, None
        if shard is None:
            return
        try:
            self.retire(shard.rec_bytes, consumed)  # a resumed S3 shard's .rec becomes visible when sealed
            shard.seal()
            self.publish(shard.rec, shard.idx, shard.entry(), consumed, shard.crcs)
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
