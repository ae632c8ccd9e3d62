"""Join RecordIO shards ``PREFIX-00000.rec``/``.idx``, ... into one ``OUT.rec`` + ``OUT.idx``.

A ``.rec`` is a plain concatenation of records, so shards join byte for byte; only the index
changes: each shard's offsets move by the size of the shards before it, keys are kept.  Locally
the files are concatenated; on S3 (shards and output both ``s3://``) the ``.rec`` is assembled
server-side with UploadPartCopy, and only pieces under the 5 MiB part minimum are downloaded
and re-uploaded (small shards coalesce into one part).  The ``.rec`` is committed before the
``.idx``, as the packer does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from imgprep.errors import FormatError, UsageError
from imgprep.formats.recordio import MAGIC, record_ids
from imgprep.layout.concat import concatenate
from imgprep.layout.files import OutputFiles, publish_single
from imgprep.layout.index import JoinedIndex, read_index
from imgprep.layout.names import output_prefix
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


def merge_shards(prefix: str, output: str, storage: Store) -> MergeSummary:
    """Merge the shards of ``prefix`` into ``output`` (a prefix: ``OUT`` → ``OUT.rec`` + ``OUT.idx``).

    Works for any mix of local and ``s3://`` locations; S3 to S3 copies server-side.  Raises
    :class:`FormatError` if an index points outside its shard or keys repeat across shards.
    """
    from imgprep.storage.probe import check_access

    out = output_prefix(output)
    check_access(storage, writes=[out], reads=[prefix])  # credentials, bucket: one line, before any copy
    OutputFiles(out, storage).check_names()
    shards = find_shards(prefix, storage).shards
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
    copied = 0

    def fill(rec: Output) -> list[str]:
        nonlocal copied
        concatenate(storage, [(shard.rec, size) for shard, size in zip(shards, sizes, strict=True)], rec)
        copied = rec.copied_bytes
        return joined.lines

    # The packer's publication rules: no reader pairs the new .rec with an old .idx.
    rec_uri, idx_uri = publish_single(storage, out, joined.size, fill, new_record=False)
    return MergeSummary(len(shards), len(joined.lines), joined.size, [rec_uri, idx_uri], copied)


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
