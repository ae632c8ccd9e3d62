"""The dataset record ``PREFIX.dataset.json``: the commit point of a pack.

A pack writes it last, after every shard it names is complete under its final name, so a
reader that finds it may trust the shards it lists (and nothing else under the prefix).  It
names each shard with its record count, byte sizes and SHA-256 checksums, the list the records
came from, the settings that shape the bytes and the imgprep version: enough for ``merge``, the
Processing join and ``verify`` to check a dataset, and for ``pack --resume`` to refuse a
different list or different settings.

What readers need about the labels (issue 28; ``imgprep.data.Dataset.num_classes`` reads these):

- ``label_width``: labels per record (1: a class id; N: a multi-hot vector of N).
- ``num_classes``: the number of classes, a positive integer, or ``null`` where the writer truly
  did not know it; then ``num_classes_unknown`` says why (one line a person can act on, e.g. "pack
  from a list without classes.json beside it; give --num-classes").  Records written before
  these fields existed have ``num_classes: null`` and no reason.
- ``class_names``: the class names by index (``len == num_classes``), when the writer had them
  (prepare; pack from a list with ``classes.json`` beside it); absent otherwise.

Every writer fills them: ``pack`` (``--num-classes``, or the ``classes.json`` beside its first
list), ``prepare`` (the dataset's classes), ``merge`` and the Processing join (carried over from
their inputs' records).

Pure functions: build, serialise, parse.  Nothing here reads or writes storage.  The document
holds no time stamp or host name, so the same inputs give the same bytes.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from imgprep.errors import FormatError
from imgprep.formats import checksums

KIND = "imgprep.dataset"
VERSION = 1
SUFFIX = ".dataset.json"
_HEX = frozenset("0123456789abcdef")


def record_name(prefix: str) -> str:
    """Where the dataset record of ``prefix`` lives (``out/train`` -> ``out/train.dataset.json``)."""
    return prefix + SUFFIX


def progress_name(prefix: str) -> str:
    """Where a pack of ``prefix`` that has not committed yet records its published shards."""
    return prefix + ".progress.json"


def record_folder(prefix: str) -> str:
    """What shard names are relative to: ``out/`` for ``out/train``, ``s3://b/d/`` for ``s3://b/d/x``."""
    return prefix[: len(prefix) - len(prefix.rsplit("/", 1)[-1])]


@dataclass(frozen=True)
class ShardEntry:
    """One ``.rec``/``.idx`` pair, by names relative to the record's folder."""

    rec: str
    idx: str
    records: int
    rec_bytes: int
    idx_bytes: int
    rec_sha256: str
    idx_sha256: str
    # One CRC-32 per record, over its framed bytes, in file order (see formats.checksums), so
    # damage is named to the record; None in records written before it existed.
    record_crc32: str | None = None


@dataclass(frozen=True)
class ListRef:
    """The list the records came from: its name as given, its SHA-256 and entry count."""

    name: str
    sha256: str
    entries: int


@dataclass(frozen=True)
class PrintsEntry:
    """The fingerprint file (:mod:`imgprep.formats.prints`) beside the shards: one row per record, in
    record order; a reader checks its size, checksum and row count before trusting it."""

    name: str
    rows: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class DatasetRecord:
    imgprep_version: str
    list: ListRef
    shards: tuple[ShardEntry, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)
    label_width: int = 1  # labels per record: 1, or the width of a multi-hot vector
    num_classes: int | None = None
    skipped: int = 0
    # --- classes for readers (issue 28.1): see the module's text ---
    num_classes_unknown: str | None = None  # why num_classes is None (written as a reason when it is)
    class_names: tuple[str, ...] | None = None  # by class index, when the writer had them
    # --- end of classes for readers ---
    fingerprints: PrintsEntry | None = None  # each record's duplicate fingerprint (prepare --dedup)

    @property
    def records(self) -> int:
        return sum(s.records for s in self.shards)

    @property
    def rec_bytes(self) -> int:
        return sum(s.rec_bytes for s in self.shards)

    def differences(self, other: DatasetRecord) -> list[str]:
        """What makes ``other`` a different dataset (list, settings, version): for ``--resume``."""
        out = []
        if self.imgprep_version != other.imgprep_version:
            out.append(f"imgprep version {self.imgprep_version} != {other.imgprep_version}")
        if (self.list.name, self.list.entries) == (other.list.name, other.list.entries) and (
                self.list.sha256 != other.list.sha256):
            out.append(f"list {self.list.name}: other entries or labels (SHA-256 {self.list.sha256[:12]}... != "
                       f"{other.list.sha256[:12]}...)")
        elif self.list.sha256 != other.list.sha256 or self.list.entries != other.list.entries:
            out.append(f"list {self.list.name} ({self.list.entries} entries) != {other.list.name} "
                       f"({other.list.entries} entries)")
        for key in sorted(set(self.settings) | set(other.settings)):
            if self.settings.get(key) != other.settings.get(key):
                out.append(f"{key}: {self.settings.get(key)!r} != {other.settings.get(key)!r}")
        return out


def to_json(record: DatasetRecord) -> str:
    """Canonical JSON text (sorted keys) ending in a newline."""
    doc = {
        "kind": KIND,
        "version": VERSION,
        "imgprep": record.imgprep_version,
        "list": vars(record.list),
        "settings": dict(record.settings),
        "label_width": record.label_width,
        "num_classes": record.num_classes,
        **_classes_doc(record),
        "records": record.records,
        "skipped": record.skipped,
        "shards": [_shard_doc(s) for s in record.shards],
        **({"fingerprints": vars(record.fingerprints)} if record.fingerprints is not None else {}),
    }
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, indent=1) + "\n"


UNKNOWN_CLASSES = "not given to the writer (pack --num-classes N, or a classes.json beside the list)"


def _classes_doc(record: DatasetRecord) -> dict[str, Any]:
    """``num_classes_unknown`` when ``num_classes`` is null (always with a reason), ``class_names`` when known."""
    doc: dict[str, Any] = {}
    if record.num_classes is None:
        doc["num_classes_unknown"] = record.num_classes_unknown or UNKNOWN_CLASSES
    if record.class_names is not None:
        doc["class_names"] = list(record.class_names)
    return doc


def json_pieces(record: DatasetRecord, crcs: Mapping[str, array]) -> tuple[int, Iterator[bytes]]:
    """``to_json`` of ``record`` with each shard's ``record_crc32`` encoded from ``crcs[shard.rec]``
    (:func:`checksums.encode`), as UTF-8 pieces, and their total size.

    The checksums' text (5.3 bytes a record: ~5 MB for a million images) goes out a piece at a
    time and is never held whole, nor is the record's text: at the packer's end both would
    otherwise sit in memory, more than once over."""
    marks = {rec: f"\x00crc{k}\x00" for k, rec in enumerate(crcs)}  # unlikely text (JSON escapes NUL): checked
    text = to_json(DatasetRecord(**{**vars(record), "shards": tuple(
        ShardEntry(**{**vars(entry), "record_crc32": marks[entry.rec]}) if entry.rec in marks else entry
        for entry in record.shards)}))
    quoted = [json.dumps(marks[entry.rec]) for entry in record.shards if entry.rec in marks]
    if any(text.count(mark) != 1 for mark in quoted):  # the mark is some other field's text too
        full = to_json(DatasetRecord(**{**vars(record), "shards": tuple(
            ShardEntry(**{**vars(e), "record_crc32": checksums.encode(crcs[e.rec])}) if e.rec in crcs else e
            for e in record.shards)})).encode()
        return len(full), iter((full,))
    pieces: list[bytes | array] = []
    for entry in record.shards:
        if entry.rec in marks:
            before, _, text = text.partition(json.dumps(marks[entry.rec]))
            pieces += [before.encode(), crcs[entry.rec]]
    pieces.append(text.encode())
    size = sum(len(p) if isinstance(p, bytes) else 2 + checksums.encoded_size(len(p)) for p in pieces)
    return size, _joined(pieces)


def _joined(pieces: list[bytes | array]) -> Iterator[bytes]:
    for piece in pieces:
        if isinstance(piece, bytes):
            yield piece
        else:
            yield b'"'
            yield from checksums.encoded_pieces(piece)
            yield b'"'


def _shard_doc(entry: ShardEntry) -> dict[str, Any]:
    doc = dict(vars(entry))
    if doc["record_crc32"] is None:
        del doc["record_crc32"]
    return doc


def from_json(text: str | bytes, path: str) -> DatasetRecord:
    """Parse and validate a dataset record; every defect is a :class:`FormatError` naming ``path``."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"not a JSON dataset record ({exc})", path=path) from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise FormatError(f"not an imgprep dataset record (no \"kind\": \"{KIND}\")", path=path)
    if doc.get("version") != VERSION:
        raise FormatError(f"dataset record version {doc.get('version')!r} is not supported (this "
                          f"imgprep reads version {VERSION})", path=path)
    get = _Getter(doc, path)
    lst = _Getter(get.of("list", dict), path, "list.")
    try:
        shards = shard_entries([_shard(s, i, path) for i, s in enumerate(get.of("shards", list))])
    except FormatError as exc:
        raise FormatError(exc.message, path=path) from None
    record = DatasetRecord(
        imgprep_version=get.of("imgprep", str),
        list=ListRef(lst.of("name", str), lst.sha("sha256"), lst.count("entries")),
        shards=shards,
        settings=get.of("settings", dict),
        label_width=get.count("label_width", minimum=1),
        num_classes=get.optional_count("num_classes"),
        skipped=get.count("skipped"),
        **_classes_fields(get, doc),
        fingerprints=_prints_entry(doc.get("fingerprints"), path),
    )
    if get.count("records") != record.records:
        raise FormatError(f"records {doc['records']} != the sum over its shards ({record.records})", path=path)
    return record


def _classes_fields(get: _Getter, doc: dict[str, Any]) -> dict[str, Any]:
    """``num_classes_unknown`` and ``class_names``, checked against ``num_classes``."""
    reason = None if doc.get("num_classes_unknown") is None else get.of("num_classes_unknown", str)
    names = doc.get("class_names")
    if names is not None:
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise get.fail("class_names", "must be a list of strings")
        if len(names) != doc.get("num_classes"):
            raise get.fail("class_names", f"holds {len(names)} names for num_classes {doc.get('num_classes')!r}")
        names = tuple(names)
    return {"num_classes_unknown": reason if doc.get("num_classes") is None else None, "class_names": names}


def _prints_entry(entry: Any, path: str) -> PrintsEntry | None:
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise FormatError("fingerprints is not an object", path=path)
    get = _Getter(entry, path, "fingerprints.")
    return PrintsEntry(get.name("name"), get.count("rows"), get.count("bytes"), get.sha("sha256"))


def _shard(entry: Any, number: int, path: str) -> ShardEntry:
    if not isinstance(entry, dict):
        raise FormatError(f"shards[{number}] is not an object", path=path)
    get = _Getter(entry, path, f"shards[{number}].")
    shard = ShardEntry(
        rec=get.name("rec"), idx=get.name("idx"), records=get.count("records"),
        rec_bytes=get.count("rec_bytes"), idx_bytes=get.count("idx_bytes"),
        rec_sha256=get.sha("rec_sha256"), idx_sha256=get.sha("idx_sha256"),
        record_crc32=None if entry.get("record_crc32") is None else get.of("record_crc32", str),
    )
    if shard.record_crc32 is not None:
        try:
            checksums.decode(shard.record_crc32, shard.records)
        except FormatError as exc:
            raise FormatError(f"shards[{number}].{exc.message}", path=path) from None
    return shard


class _Getter:
    """Typed field access that names the field and the file in every error."""

    def __init__(self, doc: dict[str, Any], path: str, where: str = "") -> None:
        self.doc, self.path, self.where = doc, path, where

    def fail(self, key: str, why: str) -> FormatError:
        return FormatError(f"{self.where}{key} {why}", path=self.path)

    def of(self, key: str, kind: type) -> Any:
        value = self.doc.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise self.fail(key, f"must be a {kind.__name__}, got {type(value).__name__}")
        return value

    def count(self, key: str, minimum: int = 0) -> int:
        value = self.of(key, int)
        if value < minimum:
            raise self.fail(key, f"must be at least {minimum}, got {value}")
        return value

    def optional_count(self, key: str) -> int | None:
        return None if self.doc.get(key) is None else self.count(key, minimum=1)

    def sha(self, key: str) -> str:
        value = self.of(key, str)
        if len(value) != 64 or not set(value) <= _HEX:
            raise self.fail(key, "must be 64 lower-case hex digits")
        return value

    def name(self, key: str) -> str:
        value = self.of(key, str)
        if not value or "/" in value or "\\" in value or value in (".", "..") or any(ord(c) < 32 for c in value):
            raise self.fail(key, f"must be a plain file name beside the record, got {value[:80]!r}")
        return value


def shard_entries(entries: Sequence[ShardEntry]) -> tuple[ShardEntry, ...]:
    """The shards in order, refusing a name listed twice."""
    seen: set[str] = set()
    for entry in entries:
        for name in (entry.rec, entry.idx):
            if name in seen:
                raise FormatError(f"shard file {name} is listed twice")
            seen.add(name)
    return tuple(entries)
