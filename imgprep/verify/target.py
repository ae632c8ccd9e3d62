"""What verify checks: the shards of a path, and what the dataset says they should hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imgprep.errors import FormatError, UsageError
from imgprep.formats import dataset as ds
from imgprep.layout.names import numbered_shard, shard_names
from imgprep.layout.prepared import METADATA, read_beside
from imgprep.layout.shards import find_shards
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
    """Find the shards of a ``.rec``, a shard prefix or a ``.dataset.json`` (local or ``s3://``)
    with the one shard finder.

    What is named is what is checked: a ``.rec`` is that file (its dataset record supplies the
    declared settings, and counts and checksums only when it names exactly that file); a prefix
    or a record is every shard the record names.  Without a record, what merge refuses is
    refused here too, in one line (exit 1): an unfinished pack (a progress file), a gap in the
    shard numbers, a shard's ``.rec`` without its ``.idx``.  A lone ``.rec`` needs no index
    (SageMaker's channels carry none): its records are walked from byte 0 either way.
    """
    location, name = Location.of(path, storage)
    try:
        found = find_shards(path, storage, need_index=False)
        if found.record is None:
            for shard in found.shards:
                if shard.idx is None and numbered_shard(shard.rec) is not None:
                    raise UsageError(f"shard {shard.rec[: -len('.rec')]}.idx is missing: without its index the "
                                     "pair reads as incomplete (a pack killed between them? pack --resume finishes "
                                     "it)")
    except UsageError as exc:  # for verify an incomplete dataset is a finding, not a usage error
        raise FormatError(exc.message, path=exc.path) from None
    shards = tuple(Shard(_name(location, s.rec), _name(location, s.idx) if s.idx else None, s.entry)
                   for s in found.shards)
    meta = _sibling_metadata(location)
    if name.endswith(".rec") and [s.rec for s in shards] != [name]:
        # The record describes other files (the shards a merged .rec was made from): check the file named.
        return Target(location, path, (_named_file(location, name),), None,
                      _expectations(found.record, meta, num_classes))
    expect = _expectations(found.record, meta, num_classes)
    return Target(location, path, shards, found.record, expect)


def _name(location: Location, uri: str) -> str:
    """``uri`` relative to the folder verify reports from (the dataset record names it so)."""
    folder = location.uri("")
    return uri[len(folder):] if uri.startswith(folder) else uri


def _named_file(location: Location, name: str) -> Shard:
    if not location.exists(name):
        raise FormatError("no such file", path=location.display(name))
    idx = shard_names(name[: -len(".rec")], None)[1]
    return Shard(name, idx if location.exists(idx) else None)


def _sibling_metadata(location: Location) -> dict[str, Any]:
    """``classes.json`` and ``hyperparameters.json`` beside the data, merged (classes first)."""
    meta: dict[str, Any] = {}
    for name in METADATA:
        doc = read_beside(location, name)
        for key in ("num_classes", "multi_label", "image_shape"):
            if doc is not None and key in doc:
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
    stated = record.num_classes if record is not None else None
    if num_classes is not None and stated is not None and num_classes != stated:
        # as prepare and imgprep.data refuse it: a head sized from another number than the data's
        raise UsageError(f"--num-classes {num_classes}: the dataset record says {stated} classes (leave "
                         "--num-classes out)")
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
