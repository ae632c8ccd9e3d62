"""The one shard finder: a dataset record, a shard prefix or a ``.rec`` → the shards, in order.

Merge, verify, the Processing join and readers find a dataset's files here, so there is one
answer to "which files are this dataset": exactly those its dataset record names, when a pack
wrote one; otherwise (shards from another tool) ``PREFIX.rec``, or ``PREFIX-00000.rec``,
``PREFIX-00001.rec``, ... found by listing, without gaps.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from imgprep.errors import FormatError, UsageError
from imgprep.formats.dataset import DatasetRecord, ShardEntry, from_json
from imgprep.layout.channels import record_uri
from imgprep.layout.names import (
    SUFFIX,
    numbered_shard,
    output_prefix,
    progress_name,
    record_folder,
    record_name,
    shard_names,
)
from imgprep.storage.base import Store


@dataclass(frozen=True)
class ShardFiles:
    """One ``.rec`` and its ``.idx`` (whole URIs)."""

    rec: str
    idx: str | None  # None: no index beside the .rec (only when the caller accepts that)
    rec_bytes: int | None  # None: not known without asking the store
    entry: ShardEntry | None = None  # what the dataset record says the shard holds

    @property
    def records(self) -> int | None:
        """Records in the shard, when a dataset record says (else count its ``.idx`` lines)."""
        return self.entry.records if self.entry is not None else None


@dataclass(frozen=True)
class Dataset:
    """A dataset's shards and its record (None for shards another tool wrote)."""

    prefix: str
    record: DatasetRecord | None
    shards: tuple[ShardFiles, ...]


def read_record(storage: Store, uri: str) -> DatasetRecord | None:
    """The dataset record at ``uri``, or None when there is none."""
    if not storage.is_file(uri):
        return None
    return from_json(storage.read_bytes(uri), uri)


def find_shards(path: str, storage: Store, *, complete: bool = True, need_index: bool = True) -> Dataset:
    """The shards of ``path``: a ``PREFIX.dataset.json``, a ``PREFIX`` or a ``PREFIX.rec``.

    ``complete``: refuse a prefix whose pack is unfinished (a progress file and no record).
    ``need_index``: a listed ``.rec`` without its ``.idx`` is an error (else its ``idx`` is None).
    """
    if path.endswith(SUFFIX):
        prefix = path[: -len(SUFFIX)]
        record = read_record(storage, path)
        if record is None:
            raise FormatError("no such file", path=path)
    else:
        prefix = output_prefix(path)
        record = read_record(storage, record_name(prefix))
    if record is not None:
        folder = record_folder(prefix)
        shards = tuple(ShardFiles(folder + s.rec, folder + s.idx, s.rec_bytes, s) for s in record.shards)
        return Dataset(prefix, record, shards)
    one = _one_recorded_shard(prefix, storage)
    if one is not None:
        return one
    if complete and storage.exists(progress_name(prefix)):
        raise UsageError("the dataset is incomplete (a pack of it is running or was interrupted, and no dataset "
                         "record: finish it with pack --resume)", path=progress_name(prefix))
    return Dataset(prefix, None, _listed(prefix, storage, need_index))


def _one_recorded_shard(prefix: str, storage: Store) -> Dataset | None:
    """``PREFIX-00001`` opened on its own: the shard as its dataset's record describes it (its
    records' checksums, the classes), so reading one shard checks what reading all of them does."""
    numbered = numbered_shard(prefix + ".rec")
    if numbered is None:
        return None
    record = read_record(storage, record_name(numbered[0]))
    name = prefix[len(record_folder(prefix)):] + ".rec"
    entry = next((s for s in record.shards if s.rec == name), None) if record is not None else None
    if record is None or entry is None:
        return None
    folder = record_folder(prefix)
    shard = ShardFiles(folder + entry.rec, folder + entry.idx, entry.rec_bytes, entry)
    return Dataset(prefix, dataclasses.replace(record, shards=(entry,)), (shard,))


def _listed(prefix: str, storage: Store, need_index: bool) -> tuple[ShardFiles, ...]:
    rec, idx = shard_names(prefix, None)
    if storage.is_file(rec):
        return (_shard(storage, rec, storage.size(rec), idx if storage.is_file(idx) else None, need_index),)
    found: dict[int, dict[str, tuple[str, int]]] = {}
    for entry in storage.list(prefix + "-"):
        shard = numbered_shard(entry.uri)
        if shard is not None and shard[0] == prefix:
            found.setdefault(shard[1], {})[shard[2]] = (entry.uri, entry.size)
    if not found:
        raise UsageError(f"no shards found: no {prefix}.rec, {prefix}-00000.rec, {prefix}-00001.rec, ... "
                         f"or {prefix}{SUFFIX}{_image_channel_hint(prefix, storage)}")
    shards = []
    for number in range(len(found)):
        files = found.get(number)
        rec, idx = shard_names(prefix, number)
        if files is None:
            raise UsageError(f"shard {rec} is missing (found {len(found)} shards with gaps)")
        if "rec" not in files:
            raise UsageError(f"shard {rec} is missing")
        shards.append(_shard(storage, files["rec"][0], files["rec"][1], files["idx"][0] if "idx" in files else None,
                             need_index, idx))
    return tuple(shards)


def _shard(storage: Store, rec: str, size: int, idx: str | None, need_index: bool, idx_name: str = "") -> ShardFiles:
    if idx is None and need_index:
        raise UsageError(f"shard {idx_name or shard_names(output_prefix(rec), None)[1]} is missing")
    return ShardFiles(rec, idx, size)


def _image_channel_hint(prefix: str, storage: Store) -> str:
    """Why an image-format channel has no shards: RecordIO readers do not read that format."""
    channel = prefix.rstrip("/").rsplit("/", 1)[-1]
    if not storage.is_file(record_uri(record_folder(prefix.rstrip("/")), channel)):
        return ""
    return (f" ({prefix} is an image-format channel, written by prepare --format images: imgprep.data reads "
            "RecordIO only; MXNet's mx.image.ImageIter reads this format)")
