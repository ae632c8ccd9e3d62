"""Join RecordIO shards ``PREFIX-00000.rec``/``.idx``, ... into one ``OUT.rec`` + ``OUT.idx``.

A ``.rec`` is a plain concatenation of records, so shards join byte for byte; only the index
changes: each shard's offsets move by the size of the shards before it, keys are kept.  Locally
the files are concatenated; on S3 (shards and output both ``s3://``) the ``.rec`` is assembled
server-side with UploadPartCopy, and only pieces under the 5 MiB part minimum are downloaded
and re-uploaded (small shards coalesce into one part).  The ``.rec`` is committed before the
``.idx``, as the packer does.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from imgprep.errors import FormatError, UsageError
from imgprep.formats.recordio import MAGIC, output_prefix, parse_index, record_ids, shard_names
from imgprep.storage.base import Store, is_remote
from imgprep.storage.concat import concatenate


@dataclass
class MergeSummary:
    """What :func:`merge_shards` wrote."""

    shards: int
    records: int
    bytes: int
    outputs: list[str] = field(default_factory=list)
    copied_bytes: int = 0  # joined server-side (S3 to S3) without passing through this process


@dataclass(frozen=True)
class Shard:
    rec: str
    idx: str
    size: int


def find_shards(prefix: str, storage: Store | None = None) -> list[Shard]:
    """The shards of ``prefix`` in order: exactly those its dataset record names, when a pack wrote
    one; otherwise (shards from another tool) ``-00000``, ``-00001``, ... found by listing."""
    storage = storage or _default_storage()
    prefix = output_prefix(prefix)
    from imgprep.formats.dataset import from_json, progress_name, record_folder, record_name
    from imgprep.storage.prefix import Prefix

    store = Prefix(prefix, storage)
    raw = store.read(record_name(prefix))
    if raw is not None:
        record = from_json(raw, record_name(prefix))
        folder = record_folder(prefix)
        return [Shard(folder + s.rec, folder + s.idx, s.rec_bytes) for s in record.shards]
    if store.exists(progress_name(prefix)):
        raise UsageError(f"{prefix}: the dataset is incomplete (a pack of it is running or was interrupted: "
                         "finish it with pack --resume)")
    return _listed_shards(prefix, storage)


def _listed_shards(prefix: str, storage: Store) -> list[Shard]:
    pattern = re.compile(r"-(\d{5,})\.(rec|idx)$")
    found: dict[int, dict[str, tuple[str, int]]] = {}
    for entry in storage.list(prefix + "-"):
        match = pattern.search(entry.uri)
        if match and entry.uri[: match.start()] == prefix:
            found.setdefault(int(match[1]), {})[match[2]] = (entry.uri, entry.size)
    if not found:
        raise UsageError(f"no shards {prefix}-00000.rec, {prefix}-00001.rec, ... found")
    shards = []
    for number in range(len(found)):
        entry = found.get(number)
        rec, idx = shard_names(prefix, number)
        if entry is None:
            raise UsageError(f"shard {rec} is missing (found {len(found)} shards with gaps)")
        if "rec" not in entry or "idx" not in entry:
            raise UsageError(f"shard {rec if 'rec' not in entry else idx} is missing")
        shards.append(Shard(entry["rec"][0], entry["idx"][0], entry["rec"][1]))
    return shards


def merge_shards(prefix: str, output: str, storage: Store | None = None) -> MergeSummary:
    """Merge the shards of ``prefix`` into ``output`` (a prefix: ``OUT`` → ``OUT.rec`` + ``OUT.idx``).

    Works for any mix of local and ``s3://`` locations; S3 to S3 copies server-side.  Raises
    :class:`FormatError` if an index points outside its shard or keys repeat across shards.
    """
    storage = storage or _default_storage()
    shards = find_shards(prefix, storage)
    out = output_prefix(output)
    from imgprep.storage.prefix import Prefix

    Prefix(out, storage).check_names()
    _refuse_overwriting_inputs(shards, out)
    lines: list[str] = []
    seen: set[int] = set()
    base = 0
    for shard in shards:
        if shard.size % 4:
            raise FormatError(f"size {shard.size} is not a multiple of 4: not a RecordIO file", path=shard.rec)
        last = 0
        for key, offset in parse_index(storage.read_text(shard.idx), shard.idx):
            if offset >= shard.size:
                raise FormatError(f"offset {offset} is past the end of {shard.rec}", path=shard.idx)
            if key in seen:
                raise FormatError(f"key {key} also appears in an earlier shard", path=shard.idx)
            seen.add(key)
            lines.append(f"{key}\t{offset + base}\n")
            last = max(last, offset)
        _check_ends(storage, shard, last)
        base += shard.size
    rec_uri, idx_uri = out + ".rec", out + ".idx"
    _retire_output(storage, out, rec_uri, idx_uri)
    with storage.open_output(rec_uri, expected_size=base) as rec:
        concatenate(storage, [(shard.rec, shard.size) for shard in shards], rec)
        copied = rec.copied_bytes
    storage.write_text(idx_uri, "".join(lines))
    return MergeSummary(len(shards), len(lines), base, [rec_uri, idx_uri], copied)


def _retire_output(storage: Store, out: str, rec_uri: str, idx_uri: str) -> None:
    """An earlier output loses its index (and a dataset record naming it) before the new ``.rec``
    can replace its ``.rec``: no reader ever pairs a new ``.rec`` with an old ``.idx``."""
    from imgprep.formats.dataset import from_json, record_name

    record = record_name(out)
    if storage.exists(record):
        names = {s.rec for s in from_json(storage.read_bytes(record), record).shards}
        if {rec_uri.rsplit("/", 1)[-1], os.path.basename(rec_uri)} & names:
            storage.delete(record)
    storage.delete(idx_uri)


def _check_ends(storage: Store, shard: Shard, last: int) -> None:
    """A shard must start with a record and its last indexed record must end exactly at the end
    of the file: a truncated or foreign shard would otherwise be joined into a broken ``.rec``.
    Only the first part head and the last record are read (the shards are joined server-side)."""
    if not shard.size:
        return
    with storage.open_read(shard.rec, 0, 8) as fh:
        head = fh.read(8)
    if len(head) < 8 or int.from_bytes(head[:4], "little") != MAGIC or int.from_bytes(head[4:], "little") >> 29 > 1:
        raise FormatError("no RecordIO record at byte 0: not a RecordIO file", path=shard.rec)
    with storage.open_read(shard.rec, last, shard.size) as fh:
        try:
            for _ in record_ids(iter(lambda: fh.read(1 << 20), b""), last):
                pass
        except FormatError as exc:
            raise FormatError(f"{exc.message} (reading from its last indexed record, at byte {last})",
                              path=shard.rec) from None


def _refuse_overwriting_inputs(shards: list[Shard], out: str) -> None:
    """The output may not be one of the shards being read (it would be truncated first)."""

    def same(a: str) -> str:
        return a if is_remote(a) else os.path.realpath(a)

    inputs = {same(u) for s in shards for u in (s.rec, s.idx)}
    for target in (out + ".rec", out + ".idx"):
        if same(target) in inputs:
            raise UsageError(f"output {target} is one of the shards being merged; choose another output")


def _default_storage() -> Store:
    from imgprep.storage.stores import Storage

    return Storage()
