"""Publishing a pack's output so that a reader never sees a wrong dataset, whatever stops the run.

The invariants, true at every instant (SIGKILL, SIGTERM, a full disk, a failing write):

1. Every ``.rec``/``.idx`` pair under final names was written whole by one run, or its ``.idx``
   is absent.  A shard's ``.rec`` is published (renamed into place, or its upload completed)
   before its ``.idx``; an ``.idx`` is published only after its ``.rec`` is complete.  A reader
   that needs the index therefore never pairs a new ``.rec`` with an old ``.idx``, and a pair
   without its ``.idx`` reads as incomplete (``pack --resume`` repairs it).
2. No file of an older generation is left for a reader to mistake for part of the dataset: a
   run first removes the old dataset record, then every old ``.idx``, then every old ``.rec``
   (so an old pair loses its index before its ``.rec`` can be replaced), then stale temporary
   files and uploads; a resumed run removes everything after its last good shard the same way.
3. ``PREFIX.dataset.json`` is written last, after every shard it names is published: it is the
   commit point.  Its presence means the dataset is complete and names exactly its shards.
4. One writer per prefix: the lock (:meth:`OutputFiles.lock`) is held from before the first removal
   until after the dataset record is written.
5. A run changes nothing under the prefix until it is ready to publish its first shard (or
   checkpoint): :meth:`Publisher.begin` only takes the lock and reads the progress, and
   :meth:`Publisher.retire` removes the old generation (in the order of 2) just before that.
   Whatever the packer can check (the image root and its first images, option types, name
   lengths, the worker pool) is checked before; a run that fails earlier leaves the previous
   dataset byte-identical.

After each shard, ``PREFIX.progress.json`` (:mod:`imgprep.layout.progress`) records what is
published (each shard with its sizes and checksums, how many list items it consumed, the images
skipped so far), so ``--resume`` checks those shards and continues after the last good one.
Within a shard (one unsharded
``.rec``), a run also checkpoints every ``checkpoint_bytes``.  Locally it flushes the shard's
temporaries and records their names and sizes at that record boundary; ``--resume`` cuts them
back to it and goes on appending (output is deterministic, so the bytes match a whole run).
On S3 it records the multipart upload (its id and the parts S3 holds, with sizes and ETags) and
the last record boundary at or below those parts; ``--resume`` checks the parts with ListParts,
regenerates the records from that boundary, drops the bytes S3 holds and uploads the next parts
(see :mod:`imgprep.packing.shards`).  The upload is spared when a resumed run removes the old
generation's uploads; one that is gone or whose parts differ starts the shard over.

A test that must land a kill inside those windows injects a pause (``Publisher(..., pause=...)``,
or :attr:`Publisher.pause` in a process it starts): it is called between publishing a ``.rec``
and its ``.idx`` and before the dataset record.
"""

from __future__ import annotations

import dataclasses
import shutil
from array import array
from collections.abc import Callable, Sequence

from imgprep.errors import FormatError, StorageError, UsageError
from imgprep.formats import checksums
from imgprep.formats.dataset import DatasetRecord, PrintsEntry, ShardEntry, from_json, json_pieces
from imgprep.layout.files import OutputFiles
from imgprep.layout.names import progress_name, record_folder, record_name
from imgprep.layout.progress import OpenShard, Progress
from imgprep.layout.skipped import Skipped
from imgprep.storage.base import Output, Store


class Publisher:
    """Keeps the invariants above for one output prefix."""

    @staticmethod
    def pause() -> None:
        """Called inside the publication windows; publication goes straight on (tests inject a
        pause to land kills there)."""

    def __init__(self, prefix: str, skeleton: DatasetRecord, storage: Store,
                 pause: Callable[[], None] | None = None,
                 before_retiring: Callable[[], None] | None = None) -> None:
        self.prefix = prefix
        self.files = OutputFiles(prefix, storage)
        if pause is not None:
            self.pause = pause  # type: ignore[method-assign]
        self.before_retiring = before_retiring  # what a caller retires with this generation (prepare)
        self.skeleton = skeleton  # list, settings and version of this run; no shards yet
        self.progress = Progress(skeleton)
        self.folder = record_folder(prefix)
        # per-record checksums of the shards this run wrote whole, by .rec name; kept here and
        # not in the progress file, whose every rewrite would otherwise grow with the dataset
        self.crcs: dict[str, array] = {}  # per shard published here: its records' CRC-32s
        self._resume = False
        self._keep = 0  # published shards a resumed run keeps
        self._stale: list[str] = []
        self._retired = False
        self._checkpointed = False  # the progress file under the prefix is this run's

    @property
    def progress_name(self) -> str:
        return progress_name(self.prefix)

    def begin(self, resume: bool) -> Progress:
        """Take the lock and find where to start: clean, or (``resume``) after the good published
        shards.  Nothing under the prefix changes here: the old generation is retired by
        :meth:`retire`, once the run is ready to publish its first shard (invariant 5).  Returns
        the progress to continue from (empty when starting clean)."""
        self.files.lock()
        try:
            if resume:
                self.progress = self._resumable()
            self._resume = resume
            self._keep = len(self.progress.record.shards)
            # Temporaries of killed runs, found now: those this run makes later are its own.
            self._stale = self._stale_temporaries()
        except BaseException:
            self.files.unlock()
            raise
        return self.progress

    def forget_open(self) -> Progress:
        """The checkpointed shard could not be reopened: its temporaries are stale like the rest."""
        self.progress = self.progress.without_open()
        self._stale = self._stale_temporaries()
        return self.progress

    def retire(self, written: int = 0, consumed: int = 0) -> None:
        """Remove the old generation, once, just before this run publishes its first shard.

        ``written`` bytes of the shard about to be published hold the list items up to
        ``consumed``: from them the rest of the run's size is estimated, and a rerun whose new
        dataset would not fit in the free space plus the old dataset's is refused here, before
        anything old is removed (:meth:`_check_space`)."""
        if self._retired:
            return
        self._check_space(written, consumed)
        if self.before_retiring is not None:
            self.before_retiring()
        self._remove_after(self._keep, self._resume)
        self._retired = True

    # --- rerun on a full disk (issue 28.7): refuse before retiring, never leave neither dataset ---

    SPACE_MARGIN = 1.25  # images differ in size: the estimate from the first shard is padded

    def _check_space(self, written: int, consumed: int) -> None:
        """Refuse, naming the space needed, a local rerun whose new dataset would not fit where the
        old one is: retired first, the old dataset would be gone and the new one never finished."""
        folder = self.files.storage.local_path(self.folder or ".")
        done = consumed - self.progress.items_done
        if folder is None or written <= 0 or done <= 0:
            return
        kept = {self.folder + n for e in self.progress.record.shards[: self._keep] for n in (e.rec, e.idx)}
        old = [uri for uri in self.files.names() if uri not in kept]
        later = self.before_retiring  # prepare: the splits packed after this one (plan.Retirement)
        old += getattr(later, "old", list)()
        if not old:
            return  # nothing to lose: a full disk fails the run as any write does
        left = self.skeleton.list.entries - consumed + getattr(later, "items", 0)
        # the records as the first shard's go, then per record its .idx line and checksum, and the record's text
        need = int(written / done * left * self.SPACE_MARGIN) + 16 * left + 4096
        freed = sum(self.files.size(uri) or 0 for uri in old)
        free = shutil.disk_usage(folder).free
        if need > free + freed:
            raise StorageError(
                f"not enough space for the new dataset: about {need:,} more bytes needed, {free:,} free and "
                f"{freed:,} in the old dataset it replaces; the old dataset is kept (free some space, or write "
                "the new one elsewhere)", path=self.prefix)

    # --- end of rerun on a full disk ---

    def _resumable(self) -> Progress:
        raw = self.files.read(self.progress_name)
        if raw is None:
            done = self.files.read(record_name(self.prefix))
            if done is not None:
                record = from_json(done, record_name(self.prefix))
                self._refuse_different(record)
                raise AlreadyComplete(record)
            return Progress(self.skeleton)
        found = Progress.from_json(raw, self.progress_name)
        self._refuse_different(found.record)
        good = 0
        for entry in found.record.shards:
            if not self._intact(entry):
                break
            good += 1
        if good == len(found.record.shards) and found.open is not None and found.open.number == good:
            return dataclasses.replace(found, record=DatasetRecord(**{**vars(self.skeleton),
                                                                       "shards": found.record.shards}))
        through = found.skipped_through[:good]
        record = DatasetRecord(**{**vars(self.skeleton), "shards": found.record.shards[:good]})
        return Progress(record, found.consumed[:good], through, found.skipped[: through[-1] if good else 0])

    def _refuse_different(self, record: DatasetRecord) -> None:
        differences = record.differences(self.skeleton)
        if differences:
            raise UsageError(
                f"{self.prefix}: cannot resume, the earlier run differs (earlier != now): {'; '.join(differences)} "
                "(rerun without --resume to start over)"
            )

    def _intact(self, entry: ShardEntry) -> bool:
        rec, idx = self.folder + entry.rec, self.folder + entry.idx
        return (
            self.files.size(rec) == entry.rec_bytes
            and self.files.size(idx) == entry.idx_bytes
            and self.files.sha256(rec) == entry.rec_sha256
            and self.files.sha256(idx) == entry.idx_sha256
        )

    def _remove_after(self, keep: int, resume: bool) -> None:
        """Remove the old generation: record, progress, then ``.idx`` before ``.rec`` (invariant 2)."""
        kept = {self.folder + name for entry in self.progress.record.shards[:keep] for name in (entry.rec, entry.idx)}
        names = [n for n in self.files.names() if n not in kept]
        own_progress = resume or self._checkpointed
        first = [record_name(self.prefix)] + ([] if own_progress else [self.progress_name])
        ordered = first + [n for n in names if n.endswith(".idx")] + [n for n in names if n.endswith(".rec")]
        ordered += [n for n in names if n not in ordered and n != self.progress_name]
        for uri in ordered:
            self.files.remove(uri)
        for uri in self._stale:
            self.files.remove(uri)
        open_ = self.progress.open
        upload = open_.upload if open_ is not None else None
        # Uploads whose writer is alive (this run's own among them) are never aborted here.
        self.files.abort_uploads(keep=[upload["upload_id"]] if upload is not None else [])

    def _stale_temporaries(self) -> list[str]:
        spare = self.progress.open.temporaries if self.progress.open is not None else set()
        return [uri for uri in self.files.temporaries() if uri.rsplit("/", 1)[-1] not in spare]

    def remove_temporaries(self) -> None:
        """Remove this prefix's temporary files but those the last checkpoint keeps for ``--resume``.

        Safe only under the lock.  Also run when a run is aborted: a signal that lands between a
        temporary's creation and its writer taking note of it would otherwise leave it behind.
        """
        spare = set(self.progress.open.temporaries) if self.progress.open is not None else set()
        if not self._retired:  # the old generation's temporaries are not this run's to remove yet
            spare.update(uri.rsplit("/", 1)[-1] for uri in self._stale)
        for uri in self.files.temporaries():
            if uri.rsplit("/", 1)[-1] not in spare:
                self.files.remove(uri)

    def publish(self, rec: Output, idx: Output, entry: ShardEntry, consumed: int, skipped: Sequence[Skipped],
                crcs: array | None = None) -> None:
        """Publish one finished shard: ``.rec``, then ``.idx`` (invariant 1), then the progress.
        ``crcs``, its records' checksums, are kept for the dataset record (None: read back then)."""
        self.retire(entry.rec_bytes + entry.idx_bytes, consumed)
        rec.commit()
        self.pause()
        idx.commit()
        progress = self.progress
        if crcs is not None:
            self.crcs[entry.rec] = crcs
        record = DatasetRecord(**{**vars(progress.record), "shards": (*progress.record.shards, entry)})
        self.progress = Progress(record, [*progress.consumed, consumed], [*progress.skipped_through, len(skipped)],
                                 list(skipped))
        self._write_progress()

    def checkpoint(self, rec: Output, idx: Output, state: OpenShard, skipped: Sequence[Skipped]) -> None:
        """Record the shard being written at a record boundary (its temporaries flushed), so that
        ``--resume`` continues from here instead of from the shard's start.  Outputs that cannot
        be reopened are not checkpointed.  An S3 shard's ``state`` names its upload and the
        record boundary below the parts S3 holds (``skipped`` images before it)."""
        self.retire(state.rec_bytes, state.consumed)
        if state.upload is not None:
            self.progress = dataclasses.replace(self.progress, skipped=list(skipped[: state.skipped]), open=state)
            self._write_progress()
            return
        rec_tmp, idx_tmp = rec.checkpoint(), idx.checkpoint()
        if rec_tmp is None or idx_tmp is None:
            return
        self.progress = dataclasses.replace(self.progress, skipped=list(skipped),
                                            open=dataclasses.replace(state, rec_tmp=rec_tmp, idx_tmp=idx_tmp))
        self._write_progress()

    def _write_progress(self) -> None:
        self.files.write(self.progress_name, self.progress.to_json().encode())
        self._checkpointed = True

    def finish(self, skipped: int, fingerprints: PrintsEntry | None = None) -> DatasetRecord:
        """Write the dataset record (the commit point, invariant 3), then drop the progress file.
        Returns it without the per-record checksums, which go to the file only.  ``fingerprints``:
        the fingerprint file, already published beside the shards, that the record lists."""
        record = DatasetRecord(**{**vars(self.progress.record), "skipped": skipped, "fingerprints": fingerprints})
        crcs = {entry.rec: self._checksums(entry) for entry in record.shards}
        size, pieces = json_pieces(record, crcs)
        self.pause()
        self.files.write_pieces(record_name(self.prefix), pieces, size)
        self.files.remove(self.progress_name)
        return record

    def _checksums(self, entry: ShardEntry) -> array:
        """The shard's per-record checksums: kept from writing it, or (a shard an earlier, killed
        run wrote, or continued from its checkpoint) read back from the published ``.rec``."""
        known = self.crcs.get(entry.rec)
        if known is not None:
            return known
        uri = self.folder + entry.rec
        with self.files.storage.open_read(uri) as fh:
            crcs = array("I", (crc for _, crc in checksums.spans(iter(lambda: fh.read(8 << 20), b""))))
        if len(crcs) != entry.records:
            raise FormatError(f"holds {len(crcs)} records, {entry.records} were packed; rerun without --resume",
                              path=uri)
        return crcs

    def end(self) -> None:
        self.files.unlock()


class AlreadyComplete(Exception):
    """``--resume`` found the dataset already committed with the same list and settings."""

    def __init__(self, record: DatasetRecord) -> None:
        super().__init__("complete")
        self.record = record
