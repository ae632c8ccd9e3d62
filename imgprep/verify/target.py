"""What verify checks: the shards of a path, and what the dataset says they should hold."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from imgprep.errors import FormatError, UsageError
from imgprep.formats import dataset as ds
from imgprep.formats.recordio import output_prefix, shard_names
from imgprep.storage.base import Store
from imgprep.verify.location import Location


@dataclass(frozen=True)
class Shard:
    rec: str
    idx: str | None  # None: no index beside the .rec (records are still walked)
    expected: ds.ShardEntry | None = None


@dataclass(frozen=True)
class Expectations:
    """What every record must satisfy; None where nothing declares it."""

    num_classes: int | None
    label_width: int | None  # labels stored per record: None = whatever the first record has
    multi_hot: bool  # multi-label vectors are 0/1 over the classes
    channels: int | None  # 1 grey, 3 colour
    size: tuple[int, int] | None  # exact WxH
    shorter_side: int | None
    source: str  # where num_classes came from, for the report


@dataclass(frozen=True)
class Target:
    location: Location
    name: str  # what the user gave, for the report
    shards: tuple[Shard, ...]
    record: ds.DatasetRecord | None
    expect: Expectations


def resolve(path: str, storage: Store, *, num_classes: int | None = None) -> Target:
    """Find the shards of a ``.rec``, a shard prefix or a ``.dataset.json`` (local or ``s3://``).

    What is named is what is checked: a ``.rec`` is that file (its dataset record supplies the
    declared settings, and counts and checksums only when it names exactly that file); a prefix
    or a record is every shard the record names.  Without a record, what merge refuses is
    refused here too, in one line: an unfinished pack (a progress file), a gap in the shard
    numbers, a ``.rec`` without its ``.idx``.
    """
    location, name = Location.of(path, storage)
    record = None
    given_file = name.endswith(".rec")
    if name.endswith(ds.SUFFIX):
        record = ds.from_json(location.read(name), location.display(name))
        prefix = name[: -len(ds.SUFFIX)]
    else:
        prefix = output_prefix(name)
        if location.exists(ds.record_name(prefix)):
            found = ds.record_name(prefix)
            record = ds.from_json(location.read(found), location.display(found))
    if record is not None and given_file and [s.rec for s in record.shards] != [name]:
        # The record describes other files (the shards a merged .rec was made from).
        if not location.exists(name):
            raise FormatError("no such file", path=location.display(name))
        idx = shard_names(prefix, None)[1]
        meta = _sibling_metadata(location)
        shard = Shard(name, idx if location.exists(idx) else None)
        return Target(location, path, (shard,), None, _expectations(record, meta, num_classes))
    if record is not None:
        shards = tuple(Shard(s.rec, s.idx, s) for s in record.shards)
    else:
        shards = _find_shards(location, prefix, path)
    meta = _sibling_metadata(location)
    expect = _expectations(record, meta, num_classes)
    return Target(location, path, shards, record, expect)


_NUMBERED = re.compile(r"-(\d{5,})\.(rec|idx)")


def _find_shards(location: Location, prefix: str, path: str) -> tuple[Shard, ...]:
    """A prefix's shards without a dataset record, refused where merge refuses them."""
    progress = ds.progress_name(prefix)
    if location.exists(progress):
        raise FormatError("a pack of this output is running or was interrupted (a progress file and no dataset "
                          "record): finish it with pack --resume", path=location.display(progress))
    rec, idx = shard_names(prefix, None)
    if location.exists(rec):
        return (_whole(location, rec, idx),)
    numbers = location.numbered(prefix, _NUMBERED)
    if not numbers:
        raise UsageError(f"{path}: no {prefix}.rec, {prefix}-00000.rec or {prefix}{ds.SUFFIX} there")
    for number in range(max(numbers) + 1):
        if number not in numbers:
            missing = shard_names(prefix, number)[0]
            raise FormatError(f"shard {missing} is missing (found {len(numbers)} shards with gaps)",
                              path=location.display(missing))
    return tuple(_whole(location, *shard_names(prefix, number)) for number in sorted(numbers))


def _whole(location: Location, rec: str, idx: str) -> Shard:
    if not location.exists(idx):
        raise FormatError(f"is missing beside {rec}: without its index the pair reads as incomplete (a pack "
                          "killed between them? pack --resume finishes it)", path=location.display(idx))
    return Shard(rec, idx)


def _sibling_metadata(location: Location) -> dict[str, Any]:
    """``classes.json`` and ``hyperparameters.json`` beside the data, merged (classes first)."""
    meta: dict[str, Any] = {}
    for name in ("hyperparameters.json", "classes.json"):
        if not location.exists(name):
            continue
        try:
            doc = json.loads(location.read(name))
        except ValueError as exc:
            raise FormatError(f"not JSON ({exc})", path=location.display(name)) from None
        if not isinstance(doc, dict):
            raise FormatError("not a JSON object", path=location.display(name))
        for key in ("num_classes", "multi_label", "image_shape"):
            if key in doc:
                meta[key] = doc[key]
                meta[f"{key}_from"] = location.display(name)
    return meta


def _int(value: Any, what: str, where: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise FormatError(f"{what} {value!r} is not an integer", path=where) from None
    if number < 1:
        raise FormatError(f"{what} {number} must be positive", path=where)
    return number


def _expectations(record: ds.DatasetRecord | None, meta: dict[str, Any], num_classes: int | None) -> Expectations:
    source = "--num-classes"
    if num_classes is None and record is not None and record.num_classes is not None:
        num_classes, source = record.num_classes, "dataset record"
    if num_classes is None and "num_classes" in meta:
        source = meta["num_classes_from"]
        num_classes = _int(meta["num_classes"], "num_classes", source)
    multi = str(meta.get("multi_label", "0")).lower() in ("1", "true")
    width = record.label_width if record is not None else None
    if multi and num_classes is not None:
        width = num_classes
    multi_hot = width is not None and width > 1 and width == num_classes
    settings = dict(record.settings) if record is not None else {}
    if settings.get("pass_through"):
        settings = {}  # stored bytes are the source files: nothing declares their size
    channels = {1: 3, 0: 1}.get(settings.get("color", -1))
    size = tuple(settings["size"]) if isinstance(settings.get("size"), list | tuple) else None
    shorter = settings.get("resize") or None
    if channels is None and isinstance(meta.get("image_shape"), str):
        channels = _int(meta["image_shape"].split(",")[0], "image_shape channels", meta["image_shape_from"])
    return Expectations(num_classes, width, multi_hot, channels, size, shorter, source if num_classes else "")
