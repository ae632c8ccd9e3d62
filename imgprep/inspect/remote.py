"""The splits of an ``s3://`` inspect path, read through the run's Store as every other command reads.

A prefix is a folder: its ``NAME.rec`` splits (with the ``NAME.lst`` beside each for the paths),
else its ``.lst`` lists, whose images are under the prefix (or ``--root``).  Records are read
with ranged GETs through one seekable stream per split, a block at a time; nothing is mirrored.
"""

from __future__ import annotations

import json

from imgprep.errors import FormatError, UsageError
from imgprep.formats.lst import LstItem, parse_lines
from imgprep.inspect.collect import Collection, Split, beside_list, group_shards, split_order
from imgprep.storage.base import Store, join


def collect_remote(path: str, root: str | None, storage: Store) -> Collection:
    """Splits of an ``s3://`` ``.rec`` or ``.lst``, or of a prefix holding them."""
    path = path.rstrip("/")
    if path.endswith((".rec", ".lst", ".manifest")) and storage.is_file(path):
        folder = path[: path.rfind("/") + 1]
        return Collection([_split(path, root, storage)], _class_names(folder, storage), folder.rstrip("/"))
    folder = path + "/"
    names = sorted({e.uri[len(folder):] for e in storage.list(folder) if "/" not in e.uri[len(folder):]})
    if not names:
        raise UsageError(f"{path}: no such file or prefix")
    names, sharded = group_shards(names)
    recs = {n[:-4] for n in names if n.endswith(".rec")}
    chosen = [n for n in names if n.endswith(".rec") or (n.endswith(".lst") and n[:-4] not in recs)]
    left_out = [f"{n}: not read (inspect reads a .manifest on s3:// only as a local copy)"
                for n in names if n.endswith(".manifest")]
    if not chosen:
        raise UsageError(f"{path}: holds no .rec or .lst files")
    splits = sorted((_split(folder + n, root, storage) for n in chosen), key=split_order)
    for split in splits:
        if split.name in sharded:
            split.set_shards([folder + n for n in sharded[split.name]])
    return Collection(splits, _class_names(folder, storage), path, left_out)


def _split(uri: str, root: str | None, storage: Store) -> Split:
    folder, name = uri[: uri.rfind("/") + 1], uri.rsplit("/", 1)[-1]
    stem, _, ext = name.rpartition(".")
    if ext == "rec":
        lst = folder + stem + ".lst"
        beside = beside_list(lst, storage) if storage.is_file(lst) else None
        return Split(stem, uri, rec=uri, beside=beside, store=storage)
    if ext == "lst":
        return Split(stem, uri, items=_read_lst(uri, storage), root=root or folder.rstrip("/"), store=storage)
    raise UsageError(f"{uri}: give a local copy of a manifest to inspect it (with --root for its images)")


def _read_lst(uri: str, storage: Store) -> list[LstItem]:
    return list(parse_lines(storage.read_text(uri).splitlines(), path=uri))


def _class_names(folder: str, storage: Store) -> list[str] | None:
    from imgprep.layout.prepared import CLASSES

    uri = join(folder, CLASSES)
    if not storage.is_file(uri):
        return None
    try:
        names = json.loads(storage.read_text(uri)).get("names")
        return [str(names[str(i)]) for i in range(len(names))]
    except (ValueError, AttributeError, KeyError, TypeError):
        raise FormatError("'names' must map 0..N-1 to class names", path=uri) from None
