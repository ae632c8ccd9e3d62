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
4. One writer per prefix: the lock (:meth:`Prefix.lock`) is held from before the first removal
   until after the dataset record is written.

After each shard, ``PREFIX.progress.json`` records what is published (each shard with its sizes
and checksums, how many list items it consumed, the images skipped so far), so ``--resume``
checks those shards and continues after the last good one.  Within a shard (one unsharded
``.rec``), a run also checkpoints every ``checkpoint_bytes``.  Locally it flushes the shard's
temporaries and records their names and sizes at that record boundary; ``--resume`` cuts them
back to it and goes on appending (output is deterministic, so the bytes match a whole run).
On S3 it records the multipart upload (its id and the parts S3 holds, with sizes and ETags) and
the last record boundary at or below those parts; ``--resume`` checks the parts with ListParts,
regenerates the records from that boundary, drops the bytes S3 holds and uploads the next parts
(see :mod:`imgprep.packing.shards`).  The upload is spared when a resumed run removes the old
generation's uploads; one that is gone or whose parts differ starts the shard over.

``IMGPREP_TEST_DELAY_PUBLISH`` (seconds, a test hook) sleeps between publishing a ``.rec`` and
its ``.idx`` and before the dataset record, so tests can kill a run inside those windows.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from imgprep.errors import FormatError, UsageError
from imgprep.formats import checksums
from imgprep.formats.dataset import (
    DatasetRecord,
    ShardEntry,
    from_json,
    progress_name,
    record_folder,
    record_name,
    to_json,
)
from imgprep.packing.report import Skipped
from imgprep.storage.base import Output, Store
from imgprep.storage.prefix import Prefix

PROGRESS_KIND = "imgprep.progress"


_OPEN_KEYS = ("number", "rec_tmp", "idx_tmp", "records", "rec_bytes", "idx_bytes", "consumed")
_UPLOAD_KEYS = ("number", "records", "rec_bytes", "consumed", "skipped")


def _open_state(open_: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint of the shard being written, its types checked (KeyError/ValueError when bad)."""
    if "upload" not in open_:
        return {k: str(open_[k]) if k.endswith("_tmp") else _count(open_[k]) for k in _OPEN_KEYS}
    upload = open_["upload"]
    parts = [{**part, "ETag": str(part["ETag"]), "Size": _count(part["Size"])} for part in upload["parts"]]
    return {**{k: _count(open_[k]) for k in _UPLOAD_KEYS},
            "upload": {"upload_id": str(upload["upload_id"]), "run": str(upload["run"]), "parts": parts}}


def _count(value: Any) -> int:
    """A count or size from a progress file: a non-negative JSON integer (ValueError otherwise)."""
    if type(value) is not int or value < 0:
        raise ValueError(f"{value!r} is not a count")
    return value


def _counts(values: Any) -> list[int]:
    """A list of running totals: counts that never decrease."""
    out = [_count(v) for v in values]
    if any(b < a for a, b in itertools.pairwise(out)):
        raise ValueError(f"running totals {out[:8]} decrease")
    return out


def test_delay() -> None:
    """The documented test hook: widen the publication windows so a test can land a kill in them."""
    delay = os.environ.get("IMGPREP_TEST_DELAY_PUBLISH")
    if delay:
        time.sleep(float(delay))


@dataclass
class Progress:
    """What a run has published so far: the dataset record without its commit, plus where to go on."""

    record: DatasetRecord
    consumed: list[int] = field(default_factory=list)  # list items consumed through each shard
    skipped_through: list[int] = field(default_factory=list)  # images skipped through each shard
    skipped: list[Skipped] = field(default_factory=list)
    # The shard being written at the last checkpoint: its number, its flushed temporaries
    # ("rec_tmp", "idx_tmp"), "records", "rec_bytes", "idx_bytes", and list items "consumed";
    # on S3 "upload" (id, run, parts) instead of the temporaries, and "skipped" images so far.
    open: dict[str, Any] | None = None

    @property
    def items_done(self) -> int:
        """List items done in published shards."""
        return self.consumed[-1] if self.consumed else 0

    def without_open(self) -> Progress:
        """The progress as of the last published shard (the checkpoint could not be reopened)."""
        through = self.skipped_through[-1] if self.skipped_through else 0
        return Progress(self.record, self.consumed, self.skipped_through, self.skipped[:through])

    def to_json(self) -> str:
        doc = {
            "kind": PROGRESS_KIND,
            "record": json.loads(to_json(self.record)),
            "consumed": self.consumed,
            "skipped_through": self.skipped_through,
            "skipped": [[s.index, s.path, s.reason] for s in self.skipped],
            "open": self.open,
        }
        return json.dumps(doc, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: bytes, path: str) -> Progress:
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict) or doc.get("kind") != PROGRESS_KIND:
                raise ValueError("not a progress file")
            record = from_json(json.dumps(doc["record"]), path)
            consumed = _counts(doc["consumed"])
            through = _counts(doc["skipped_through"])
            skipped = [Skipped(_count(i), str(p), str(r)) for i, p, r in doc["skipped"]]
            open_ = doc.get("open")
            if open_ is not None:
                open_ = _open_state(open_)
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            why = str(exc)[:200]
            raise FormatError(f"unreadable progress file ({why}); rerun without --resume", path=path) from None
        if not len(consumed) == len(through) == len(record.shards):
            raise FormatError("progress file: shard and consumed counts differ; rerun without --resume", path=path)
        _check_totals(record, consumed, through, len(skipped), open_, path)
        return cls(record, consumed, through, skipped, open_)


def _check_totals(record: DatasetRecord, consumed: list[int], through: list[int], skipped: int,
                  open_: dict[str, Any] | None, path: str) -> None:
    """A resumed run starts at list item ``consumed[-1]``: totals that disagree with the shards
    or the list would pack items twice or never, so they are refused, not trusted."""
    before = (0, 0)
    for number, (entry, items, skips) in enumerate(zip(record.shards, consumed, through, strict=True)):
        if entry.records + skips - before[1] > items - before[0]:
            raise FormatError(f"progress file: shard {number} holds more records and skips than the "
                              f"{items - before[0]} list items it consumed; rerun without --resume", path=path)
        before = (items, skips)
    done = open_["consumed"] if open_ is not None else before[0]
    if done < before[0] or done > record.list.entries or before[1] > skipped:
        raise FormatError(f"progress file: {done} list items consumed of {record.list.entries}, {before[1]} "
                          f"skipped of {skipped} listed; rerun without --resume", path=path)


class Publisher:
    """Keeps the invariants above for one output prefix."""

    def __init__(self, prefix: str, skeleton: DatasetRecord, storage: Store) -> None:
        self.prefix = prefix
        self.store = Prefix(prefix, storage)
        self.skeleton = skeleton  # list, settings and version of this run; no shards yet
        self.progress = Progress(skeleton)
        self.folder = record_folder(prefix)
        # per-record checksums of the shards this run wrote whole, by .rec name; kept here and
        # not in the progress file, whose every rewrite would otherwise grow with the dataset
        self.crcs: dict[str, str] = {}

    @property
    def progress_name(self) -> str:
        return progress_name(self.prefix)

    def begin(self, resume: bool) -> Progress:
        """Take the lock; start clean, or (``resume``) keep the good published shards.  Returns
        the progress to continue from (empty when starting clean)."""
        self.store.lock()
        try:
            if resume:
                self.progress = self._resumable()
            self._remove_after(len(self.progress.record.shards), resume)
        except BaseException:
            self.store.unlock()
            raise
        return self.progress

    def _resumable(self) -> Progress:
        raw = self.store.read(self.progress_name)
        if raw is None:
            done = self.store.read(record_name(self.prefix))
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
        if good == len(found.record.shards) and found.open is not None and found.open["number"] == good:
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
            self.store.size(rec) == entry.rec_bytes
            and self.store.size(idx) == entry.idx_bytes
            and self.store.sha256(rec) == entry.rec_sha256
            and self.store.sha256(idx) == entry.idx_sha256
        )

    def _remove_after(self, keep: int, resume: bool) -> None:
        """Remove the old generation: record, progress, then ``.idx`` before ``.rec`` (invariant 2)."""
        kept = {self.folder + name for entry in self.progress.record.shards[:keep] for name in (entry.rec, entry.idx)}
        names = [n for n in self.store.names() if n not in kept]
        first = [record_name(self.prefix)] + ([] if resume else [self.progress_name])
        ordered = first + [n for n in names if n.endswith(".idx")] + [n for n in names if n.endswith(".rec")]
        ordered += [n for n in names if n not in ordered and n != self.progress_name]
        for uri in ordered:
            self.store.remove(uri)
        self.remove_temporaries()
        open_ = self.progress.open or {}
        self.store.abort_uploads(keep=[open_["upload"]["upload_id"]] if "upload" in open_ else [])

    def remove_temporaries(self) -> None:
        """Remove this prefix's temporary files but those the last checkpoint keeps for ``--resume``.

        Safe only under the lock.  Also run when a run is aborted: a signal that lands between a
        temporary's creation and its writer taking note of it would otherwise leave it behind.
        """
        open_ = self.progress.open or {}
        spare = {open_.get("rec_tmp"), open_.get("idx_tmp")}
        for uri in self.store.temporaries():
            if uri.rsplit("/", 1)[-1] not in spare:
                self.store.remove(uri)

    def publish(self, rec: Output, idx: Output, entry: ShardEntry, consumed: int, skipped: Sequence[Skipped]) -> None:
        """Publish one finished shard: ``.rec``, then ``.idx`` (invariant 1), then the progress."""
        rec.commit()
        test_delay()
        idx.commit()
        progress = self.progress
        if entry.record_crc32 is not None:
            self.crcs[entry.rec] = entry.record_crc32
            entry = dataclasses.replace(entry, record_crc32=None)
        record = DatasetRecord(**{**vars(progress.record), "shards": (*progress.record.shards, entry)})
        self.progress = Progress(record, [*progress.consumed, consumed], [*progress.skipped_through, len(skipped)],
                                 list(skipped))
        self.store.write(self.progress_name, self.progress.to_json().encode())

    def checkpoint(self, rec: Output, idx: Output, state: dict[str, Any], skipped: Sequence[Skipped]) -> None:
        """Record the shard being written at a record boundary (its temporaries flushed), so that
        ``--resume`` continues from here instead of from the shard's start.  Outputs that cannot
        be reopened are not checkpointed.  An S3 shard's ``state`` names its upload and the
        record boundary below the parts S3 holds (``skipped`` images before it)."""
        if "upload" in state:
            self.progress = dataclasses.replace(self.progress, skipped=list(skipped[: state["skipped"]]), open=state)
            self.store.write(self.progress_name, self.progress.to_json().encode())
            return
        rec_tmp, idx_tmp = rec.checkpoint(), idx.checkpoint()
        if rec_tmp is None or idx_tmp is None:
            return
        self.progress = dataclasses.replace(self.progress, skipped=list(skipped),
                                            open={**state, "rec_tmp": rec_tmp, "idx_tmp": idx_tmp})
        self.store.write(self.progress_name, self.progress.to_json().encode())

    def finish(self, skipped: int) -> DatasetRecord:
        """Write the dataset record (the commit point, invariant 3), then drop the progress file."""
        shards = tuple(dataclasses.replace(s, record_crc32=self._checksums(s)) for s in self.progress.record.shards)
        record = DatasetRecord(**{**vars(self.progress.record), "skipped": skipped, "shards": shards})
        test_delay()
        self.store.write(record_name(self.prefix), to_json(record).encode())
        self.store.remove(self.progress_name)
        return record

    def _checksums(self, entry: ShardEntry) -> str:
        """The shard's per-record checksums: kept from writing it, or (a shard an earlier, killed
        run wrote, or continued from its checkpoint) read back from the published ``.rec``."""
        known = self.crcs.get(entry.rec)
        if known is not None:
            return known
        uri = self.folder + entry.rec
        with self.store.storage.open_read(uri) as fh:
            crcs = [crc for _, crc in checksums.spans(iter(lambda: fh.read(8 << 20), b""))]
        if len(crcs) != entry.records:
            raise FormatError(f"holds {len(crcs)} records, {entry.records} were packed; rerun without --resume",
                              path=uri)
        return checksums.encode(crcs)

    def end(self) -> None:
        self.store.unlock()


class AlreadyComplete(Exception):
    """``--resume`` found the dataset already committed with the same list and settings."""

    def __init__(self, record: DatasetRecord) -> None:
        super().__init__("complete")
        self.record = record
