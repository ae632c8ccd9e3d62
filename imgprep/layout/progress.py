"""``PREFIX.progress.json``: what an unfinished pack has published, and where ``--resume`` goes on.

After each shard the file records the shards published (the dataset record without its commit),
how many list items each consumed and the images skipped so far.  Within a shard, a checkpoint
(:class:`OpenShard`) records the shard being written: locally its flushed temporaries and their
sizes at a record boundary; on S3 the multipart upload (the store's own resume token) and the
last record boundary at or below the parts S3 holds.  Everything read back is checked, never
trusted: totals that disagree would pack items twice or never.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from imgprep.errors import FormatError
from imgprep.formats.dataset import DatasetRecord, from_json, to_json
from imgprep.layout.skipped import Skipped

PROGRESS_KIND = "imgprep.progress"


@dataclass(frozen=True)
class OpenShard:
    """The shard being written at the last checkpoint, cut at a record boundary.

    Local shards name their flushed temporaries (``rec_tmp``, ``idx_tmp``, with ``idx_bytes``);
    S3 shards carry their ``upload`` (id, run, parts: what the store needs to go on) and the
    images ``skipped`` before the boundary instead.
    """

    number: int
    records: int
    rec_bytes: int
    consumed: int  # list items done at the boundary
    rec_tmp: str = ""
    idx_tmp: str = ""
    idx_bytes: int = 0
    skipped: int = 0
    upload: dict[str, Any] | None = None

    @property
    def temporaries(self) -> set[str]:
        return {self.rec_tmp, self.idx_tmp} - {""}

    def to_doc(self) -> dict[str, Any]:
        common = {"number": self.number, "records": self.records, "rec_bytes": self.rec_bytes,
                  "consumed": self.consumed}
        if self.upload is not None:
            return {**common, "skipped": self.skipped, "upload": self.upload}
        return {**common, "rec_tmp": self.rec_tmp, "idx_tmp": self.idx_tmp, "idx_bytes": self.idx_bytes}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> OpenShard:
        """From a progress file's ``open`` entry, its types checked (KeyError/ValueError when bad)."""
        common = {k: _count(doc[k]) for k in ("number", "records", "rec_bytes", "consumed")}
        if "upload" not in doc:
            return cls(**common, rec_tmp=str(doc["rec_tmp"]), idx_tmp=str(doc["idx_tmp"]),
                       idx_bytes=_count(doc["idx_bytes"]))
        upload = doc["upload"]
        parts = [{**part, "ETag": str(part["ETag"]), "Size": _count(part["Size"])} for part in upload["parts"]]
        return cls(**common, skipped=_count(doc["skipped"]),
                   upload={"upload_id": str(upload["upload_id"]), "run": str(upload["run"]), "parts": parts})


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


@dataclass
class Progress:
    """What a run has published so far: the dataset record without its commit, plus where to go on."""

    record: DatasetRecord
    consumed: list[int] = field(default_factory=list)  # list items consumed through each shard
    skipped_through: list[int] = field(default_factory=list)  # images skipped through each shard
    skipped: list[Skipped] = field(default_factory=list)
    open: OpenShard | None = None  # the shard being written at the last checkpoint

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
            "open": self.open.to_doc() if self.open is not None else None,
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
                open_ = OpenShard.from_doc(open_)
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            why = str(exc)[:200]
            raise FormatError(f"unreadable progress file ({why}); rerun without --resume", path=path) from None
        if not len(consumed) == len(through) == len(record.shards):
            raise FormatError("progress file: shard and consumed counts differ; rerun without --resume", path=path)
        _check_totals(record, consumed, through, len(skipped), open_, path)
        return cls(record, consumed, through, skipped, open_)


def _check_totals(record: DatasetRecord, consumed: list[int], through: list[int], skipped: int,
                  open_: OpenShard | None, path: str) -> None:
    """A resumed run starts at list item ``consumed[-1]``: totals that disagree with the shards
    or the list would pack items twice or never, so they are refused, not trusted."""
    before = (0, 0)
    for number, (entry, items, skips) in enumerate(zip(record.shards, consumed, through, strict=True)):
        if entry.records + skips - before[1] > items - before[0]:
            raise FormatError(f"progress file: shard {number} holds more records and skips than the "
                              f"{items - before[0]} list items it consumed; rerun without --resume", path=path)
        before = (items, skips)
    done = open_.consumed if open_ is not None else before[0]
    if done < before[0] or done > record.list.entries or before[1] > skipped:
        raise FormatError(f"progress file: {done} list items consumed of {record.list.entries}, {before[1]} "
                          f"skipped of {skipped} listed; rerun without --resume", path=path)
