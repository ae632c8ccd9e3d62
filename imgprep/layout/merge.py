"""Join RecordIO shards ``PREFIX-00000.rec``/``.idx``, ... into one ``OUT.rec`` + ``OUT.idx``.

A ``.rec`` is a plain concatenation of records, so shards join byte for byte; only the index
changes: each shard's offsets move by the size of the shards before it, keys are kept.  Locally
the files are concatenated; on S3 (shards and output both ``s3://``) the ``.rec`` is assembled
server-side with UploadPartCopy, and only pieces under the 5 MiB part minimum are downloaded
and re-uploaded (small shards coalesce into one part).  The ``.rec`` is committed before the
``.idx``, as the packer does.

When the shards come with a dataset record, merge checks before it publishes: each shard is read
once and held to the record — record count, each record's CRC-32 (a damaged record is named by
shard, ordinal and byte), the shard's SHA-256, its index's — so a shard ``verify`` would flag is
never laundered into a clean-looking ``.rec``.  The merged pair then gets its own dataset record
(``OUT.dataset.json``, written last: list, settings, ``num_classes`` and label width carried
over, one shard with its checksums), which readers and ``verify`` use as for any pack.
"""

from __future__ import annotations

import hashlib
import os
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field

from imgprep.errors import FormatError, UsageError
from imgprep.formats import checksums
from imgprep.formats.dataset import DatasetRecord, ShardEntry, to_json
from imgprep.formats.recordio import MAGIC, record_ids
from imgprep.layout.concat import concatenate
from imgprep.layout.files import OutputFiles, publish_single, sha256
from imgprep.layout.index import JoinedIndex, read_index
from imgprep.layout.meter import Off, meter
from imgprep.layout.names import output_prefix, record_name
from imgprep.layout.shards import ShardFiles, find_shards
from imgprep.storage.base import Output, Store


@dataclass
class MergeSummary:
    """What :func:`merge_shards` wrote."""

    shards: int
    records: int
    bytes: int
    outputs: list[str] = field(default_factory=list)
    copied_bytes: int = 0  # joined server-side (S3 to S3) without passing through this process


def merge_shards(prefix: str, output: str, storage: Store, *, quiet: bool = True,
                 progress: bool | None = None) -> MergeSummary:
    """Merge the shards of ``prefix`` into ``output`` (a prefix: ``OUT`` → ``OUT.rec`` + ``OUT.idx``).

    Works for any mix of local and ``s3://`` locations; S3 to S3 copies server-side.  Raises
    :class:`FormatError` if an index points outside its shard, keys repeat across shards, or a
    shard differs from its dataset record (before anything is written).  ``quiet``/``progress``
    choose the progress meter (:mod:`imgprep.layout.meter`).
    """
    from imgprep.storage.probe import check_access

    out = output_prefix(output)
    check_access(storage, writes=[out], reads=[prefix])  # credentials, bucket: one line, before any copy
    OutputFiles(out, storage).check_names()
    found = find_shards(prefix, storage)
    shards = found.shards
    _refuse_overwriting_inputs(storage, shards, out)
    joined = JoinedIndex()
    sizes = []
    for shard in shards:
        size = shard.rec_bytes if shard.rec_bytes is not None else storage.size(shard.rec)
        if size % 4:
            raise FormatError(f"size {size} is not a multiple of 4: not a RecordIO file", path=shard.rec)
        if shard.idx is None:  # find_shards(need_index=True) refuses these; a caller's list may not
            raise UsageError(f"shard {shard.rec} has no index")
        entries = read_index(storage, shard.idx, shard.rec, size)
        joined.add(shard.idx, entries, size)
        _check_ends(storage, shard.rec, size, max((offset for _, offset in entries), default=0))
        sizes.append(size)
    name = os.path.basename(found.prefix)
    checked = None
    if found.record is not None:
        with meter(f"check {name}", found.record.records, "rec", quiet=quiet, progress=progress) as bar:
            checked = _Checked.of(storage, shards, bar)
    copied = 0

    def fill(rec: Output) -> list[str]:
        nonlocal copied
        with meter(f"merge {name}", len(shards), "shard", quiet=quiet, progress=progress) as bar:
            pieces = [(shard.rec, size) for shard, size in zip(shards, sizes, strict=True)]
            concatenate(storage, _ticking(pieces, bar), rec)
        copied = rec.copied_bytes
        return joined.lines

    # Merged beside its own shards (OUT = PREFIX), the record there stays theirs: no record is written.
    own = checked is not None and storage.canonical(record_name(out)) != storage.canonical(record_name(found.prefix))
    # The packer's publication rules: no reader pairs the new .rec with an old .idx.
    rec_uri, idx_uri = publish_single(storage, out, joined.size, fill, new_record=own)
    outputs = [rec_uri, idx_uri]
    if own and found.record is not None and checked is not None:
        text = "".join(joined.lines)
        entry = ShardEntry(rec_uri.rsplit("/", 1)[-1], idx_uri.rsplit("/", 1)[-1], len(checked.crcs), joined.size,
                           len(text.encode()), checked.digest.hexdigest(), hashlib.sha256(text.encode()).hexdigest(),
                           checksums.encode(checked.crcs))
        storage.write_text(record_name(out), to_json(DatasetRecord(**{**vars(found.record), "shards": (entry,),
                                                                      "fingerprints": None})))
        outputs.append(record_name(out))
    return MergeSummary(len(shards), len(joined.lines), joined.size, outputs, copied)


def _ticking(pieces: list[tuple[str, int]], bar: Off) -> Iterator[tuple[str, int]]:
    for piece in pieces:
        yield piece
        bar.update(1)


@dataclass
class _Checked:
    """The shards held to their dataset record, read once: the merged file's SHA-256 and its
    records' CRC-32s come out of the same read."""

    digest: hashlib._Hash
    crcs: array

    @classmethod
    def of(cls, storage: Store, shards: tuple[ShardFiles, ...], bar: Off) -> _Checked:
        digest, crcs = hashlib.sha256(), array("I")
        for shard in shards:
            crcs.extend(_check_shard(storage, shard, digest, bar))
        return cls(digest, crcs)


def _check_shard(storage: Store, shard: ShardFiles, whole: hashlib._Hash, bar: Off) -> array:
    """``shard`` against its dataset record entry (records, per-record CRC-32s, SHA-256 of the
    ``.rec`` and ``.idx``); its bytes also go into ``whole``.  Returns its records' CRC-32s."""
    entry = shard.entry
    if entry is None:  # only shards found through a dataset record are checked
        raise FormatError("no dataset record entry to check this shard against", path=shard.rec)
    expected = checksums.decode(entry.record_crc32, entry.records) if entry.record_crc32 is not None else None
    own = hashlib.sha256()

    def chunks() -> Iterator[bytes]:
        with storage.open_read(shard.rec) as fh:
            while chunk := fh.read(8 << 20):
                own.update(chunk)
                whole.update(chunk)
                yield chunk

    found = array("I")
    refused = "merge refused, nothing written"
    try:
        for ordinal, (offset, crc) in enumerate(checksums.spans(chunks())):
            if expected is not None and ordinal < len(expected) and crc != expected[ordinal]:
                raise FormatError(f"record {ordinal} (at byte {offset}): bytes differ from the packed record (CRC-32 "
                                  f"{crc:08x}, packed {expected[ordinal]:08x}): damaged after packing; {refused}",
                                  path=shard.rec)
            found.append(crc)
            bar.update(1)
    except FormatError as exc:
        if exc.path:
            raise
        raise FormatError(f"{exc.message}; {refused}", path=shard.rec) from None
    if len(found) != entry.records:
        raise FormatError(f"holds {len(found)} records, its dataset record says {entry.records}; {refused}",
                          path=shard.rec)
    if own.hexdigest() != entry.rec_sha256:
        raise FormatError(f"SHA-256 differs from its dataset record: damaged after packing; {refused}", path=shard.rec)
    if shard.idx is not None and sha256(storage, shard.idx) != entry.idx_sha256:
        raise FormatError(f"SHA-256 differs from its dataset record: changed after packing; {refused}",
                          path=shard.idx)
    return found


def _check_ends(storage: Store, rec: str, size: int, last: int) -> None:
    """A shard must start with a record and its last indexed record must end exactly at the end
    of the file: a truncated or foreign shard would otherwise be joined into a broken ``.rec``.
    Only the first part head and the last record are read (the shards are joined server-side)."""
    if not size:
        return
    with storage.open_read(rec, 0, 8) as fh:
        head = fh.read(8)
    if len(head) < 8 or int.from_bytes(head[:4], "little") != MAGIC or int.from_bytes(head[4:], "little") >> 29 > 1:
        raise FormatError("no RecordIO record at byte 0: not a RecordIO file", path=rec)
    with storage.open_read(rec, last, size) as fh:
        try:
            for _ in record_ids(iter(lambda: fh.read(1 << 20), b""), last):
                pass
        except FormatError as exc:
            raise FormatError(f"{exc.message} (reading from its last indexed record, at byte {last})",
                              path=rec) from None


def _refuse_overwriting_inputs(storage: Store, shards: tuple[ShardFiles, ...], out: str) -> None:
    """The output may not be one of the shards being read (it would be truncated first)."""
    inputs = {storage.canonical(u) for s in shards for u in (s.rec, s.idx) if u is not None}
    for target in (out + ".rec", out + ".idx"):
        if storage.canonical(target) in inputs:
            raise UsageError(f"output {target} is one of the shards being merged; choose another output")
