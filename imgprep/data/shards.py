"""Which files a dataset path names: a dataset record, a shard prefix, or one ``.rec`` + ``.idx``.

A dataset record (``PREFIX.dataset.json``) is trusted for its shard list, label width and class
count; a prefix with a record beside it reads that record; otherwise ``PREFIX.rec`` or the
numbered shards ``PREFIX-00000.rec``, ... are found by :func:`imgprep.storage.merge.find_shards`.
"""

from __future__ import annotations

from dataclasses import dataclass

from imgprep.errors import UsageError
from imgprep.formats import dataset as ds
from imgprep.formats.recordio import output_prefix, shard_names
from imgprep.storage.base import Store
from imgprep.storage.merge import find_shards


@dataclass(frozen=True)
class ShardFile:
    rec: str
    idx: str
    size: int


@dataclass(frozen=True)
class Layout:
    """A dataset's shards in order, and what its record declares (None when nothing does)."""

    shards: tuple[ShardFile, ...]
    label_width: int | None
    num_classes: int | None


def resolve(path: str, storage: Store) -> Layout:
    """The shards of ``path`` (local or ``s3://``); a missing file is a :class:`UsageError`."""
    prefix = path[: -len(ds.SUFFIX)] if path.endswith(ds.SUFFIX) else output_prefix(path)
    record_uri = ds.record_name(prefix)
    if storage.exists(record_uri):
        record = ds.from_json(storage.read_bytes(record_uri), record_uri)
        folder = ds.record_folder(prefix)
        shards = tuple(ShardFile(folder + s.rec, folder + s.idx, s.rec_bytes) for s in record.shards)
        return Layout(shards, record.label_width, record.num_classes)
    if path.endswith(ds.SUFFIX):
        raise UsageError(f"{path}: no such dataset record")
    rec, idx = shard_names(prefix, None)
    if storage.exists(rec):
        if not storage.exists(idx):
            raise UsageError(f"{rec} has no index {idx} beside it (a reader needs one for random access)")
        return Layout((ShardFile(rec, idx, storage.size(rec)),), None, None)
    return Layout(tuple(ShardFile(s.rec, s.idx, s.size) for s in find_shards(prefix, storage)), None, None)
