"""What verify checks: the shards of a path, and what the dataset says they should hold."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from imgprep.errors import FormatError
from imgprep.formats import dataset as ds
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
    with the one shard finder; an unfinished pack's shards are checked too."""
    location, _ = Location.of(path, storage)
    found = find_shards(path, storage, complete=False, need_index=False)
    shards = tuple(Shard(_name(location, s.rec), _name(location, s.idx) if s.idx else None, s.entry)
                   for s in found.shards)
    meta = _sibling_metadata(location)
    expect = _expectations(found.record, meta, num_classes)
    return Target(location, path, shards, found.record, expect)


def _name(location: Location, uri: str) -> str:
    """``uri`` relative to the folder verify reports from (the dataset record names it so)."""
    folder = location.uri("")
    return uri[len(folder):] if uri.startswith(folder) else uri


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
