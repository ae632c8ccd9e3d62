"""The splits of an inspect path, each able to stream its images and fetch one again later."""

from __future__ import annotations

import contextlib
import math
import os
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgprep.errors import FormatError, ImageError, UsageError
from imgprep.formats import recordio
from imgprep.formats.lst import LstItem, read_lst
from imgprep.formats.manifest import MAX_CLASS_ID
from imgprep.layout.names import numbered_shard
from imgprep.storage.roots import RootGuard, read_inside

SHARD_BITS = 44  # a record's locator: shard number << SHARD_BITS | byte offset in its .rec
SHARD_OFFSET = (1 << SHARD_BITS) - 1


@dataclass(frozen=True)
class Image:
    """One image as a split yields it; ``locator`` fetches its bytes again (record offset, list position)."""

    id: int
    labels: tuple[float, ...]
    path: str | None  # None for a record: looked up in the list beside it only when it is shown
    data: bytes
    locator: int


@dataclass
class Split:
    name: str
    source: str  # what was read, for the report
    rec: str | None = None
    items: list[LstItem] = field(default_factory=list)  # a list split's entries (its images)
    beside: Any = None  # a record split's .lst (a validated ListStream), read for paths only when asked
    root: str | None = None
    class_names: list[str] | None = None  # when the source names its classes (a manifest)
    store: Any = None  # the Store an s3:// split is read through (inspect.remote); None: local files
    prints: Any = None  # the fingerprints its dataset record keeps, when read instead of decoding (recorded)
    shards: list[str] = field(default_factory=list)  # a sharded split's .rec files in order (rec: the first)
    _paths: Paths | None = None
    _guard: RootGuard | None = None  # keeps image reads inside ``root``, as pack does

    def images(self) -> Iterator[Image]:
        if self.rec is not None:
            yield from self._records()
        else:
            for position, item in enumerate(self.items):
                _check_labels(item.labels, self.source, f"entry #{position} (id {item.index})")
                yield Image(item.index, item.labels, item.path, self.fetch(position), position)

    def path_of(self, id: int) -> str:
        """The image path of record ``id`` (from the .lst beside a .rec, when there is one)."""
        if self._paths is None:
            self._paths = Paths(self.beside if self.beside is not None else self.items)
        return self._paths.get(id) or f"{self.name}.rec id {id}"

    def path_at(self, locator: int, id: int) -> str:
        return self.path_of(id) if self.rec is not None else self.items[locator].path

    def set_shards(self, recs: list[str]) -> None:
        """Make this ``NAME.rec`` split the sharded one: ``NAME-00000.rec``... in order."""
        self.shards, self.rec = recs, recs[0]
        prefix = numbered_shard(recs[0])
        self.source = f"{prefix[0] if prefix else recs[0]}-*.rec ({len(recs)} shards)"

    @property
    def recs(self) -> list[str]:
        """The split's ``.rec`` files in record order (one unless it is sharded)."""
        return self.shards or ([self.rec] if self.rec is not None else [])

    def _records(self) -> Iterator[Image]:
        for number, rec in enumerate(self.recs):  # a list or manifest split has none
            with self._reader(rec) as reader:
                for offset, payload in reader.records():
                    try:
                        header, labels, image = recordio.unpack_image_record(payload)
                    except FormatError as exc:
                        raise FormatError(f"record at byte {offset}: {exc.message}", path=rec) from None
                    _check_labels(labels, rec, f"record at byte {offset} (id {header.id})")
                    yield Image(header.id, labels, None, image, number << SHARD_BITS | offset)

    @contextlib.contextmanager
    def _reader(self, rec: str) -> Iterator[recordio.RecordReader]:
        if self.store is None:
            with recordio.RecordReader(rec) as reader:
                yield reader
            return
        with self.store.open_seekable(rec) as stream:  # ranged reads, a block at a time
            yield recordio.RecordReader(stream)

    def fetch(self, locator: int) -> bytes:
        if self.rec is not None:  # a record's locator: its shard's number, then its offset
            with self._reader(self.recs[locator >> SHARD_BITS]) as reader:
                return recordio.unpack_image_record(reader.read_at(locator & SHARD_OFFSET))[2]
        if self.store is not None:
            from imgprep.storage.base import join

            return self.store.read_bytes(join(self.root or "", self.items[locator].path))
        if self._guard is None:
            self._guard = RootGuard(self.root or ".")
        path = os.path.join(self.root or ".", self.items[locator].path)
        problem = self._guard.folder_escape(path)
        if problem:
            raise ImageError(problem, path=path)
        return read_inside(path, self._guard.root)  # a final symlink out, a FIFO or a device: refused


class Paths:
    """Record id -> image path of a list, held as one UTF-8 blob with offsets: a million-entry list
    as a dict of str would cost hundreds of megabytes, most of them for paths never shown."""

    def __init__(self, items: Iterable[LstItem]) -> None:
        ids, ends, blob = array("q"), array("q"), bytearray()
        for item in items:
            ids.append(item.index)
            blob += item.path.encode("utf-8", "surrogateescape")
            ends.append(len(blob))
        self.ids = np.frombuffer(ids, np.int64) if len(ids) else np.zeros(0, np.int64)
        self.order = np.argsort(self.ids, kind="stable")
        self.sorted = self.ids[self.order]
        self.ends = np.frombuffer(ends, np.int64) if len(ends) else np.zeros(0, np.int64)
        self.blob = bytes(blob)

    def get(self, id: int) -> str | None:
        at = int(np.searchsorted(self.sorted, id))
        if at == len(self.sorted) or self.sorted[at] != id:
            return None
        i = int(self.order[at])
        return self.blob[int(self.ends[i - 1]) if i else 0: int(self.ends[i])].decode("utf-8", "surrogateescape")


def _check_labels(labels: tuple[float, ...], path: str, where: str) -> None:
    """A single label counts images under its class, so it must be a class index in range (a
    histogram row is kept per class); multi-hot vectors count their non-zero entries."""
    if len(labels) > 1:
        bad = next((x for x in labels if not math.isfinite(x)), None)
        if bad is not None:
            raise FormatError(f"{where}: multi-label vector holds {bad}", path=path)
        return
    value = labels[0]
    if not (math.isfinite(value) and value == int(value) and 0 <= value <= MAX_CLASS_ID):
        raise FormatError(f"{where}: label {value:g} is not a class index in [0, {MAX_CLASS_ID}]", path=path)


@dataclass
class Collection:
    splits: list[Split]
    class_names: list[str] | None
    folder: str
    left_out: list[str] = field(default_factory=list)  # one line per file of the folder not read, and why
    notes: list[str] = field(default_factory=list)  # how the images were read (fingerprints: recorded or decoded)


def collect(path: str, *, root: str | None = None) -> Collection:
    """Splits of a ``.rec``, ``.lst``, ``.manifest`` or a folder holding ``.rec`` or ``.lst`` files."""
    path = path.rstrip("/") or "/"
    left_out: list[str] = []
    if os.path.isdir(path):
        splits, left_out = _folder_splits(path, root)
        folder = path
    elif os.path.isfile(path):
        splits = [_file_split(path, root)]
        folder = os.path.dirname(path) or "."
    else:
        raise UsageError(f"{path}: no such file or folder")
    names = _class_names(folder) or next((s.class_names for s in splits if s.class_names), None)
    return Collection(splits, names, folder, left_out)


def _file_split(path: str, root: str | None) -> Split:
    folder, name = os.path.split(path)
    stem, ext = os.path.splitext(name)
    if ext == ".rec":
        lst = os.path.join(folder, stem + ".lst")
        return Split(stem, path, rec=path, beside=beside_list(lst, None) if os.path.isfile(lst) else None)
    if ext == ".lst":
        return Split(stem, path, items=read_lst(path), root=root or _channel_root(folder, stem) or folder or ".")
    if ext == ".manifest":
        from imgprep.sources.gtmanifest import load_manifest

        dataset = load_manifest(path, root=root)
        if dataset.root is None or dataset.root.startswith("s3://"):
            raise UsageError(f"{path}: give --root s3://bucket/prefix/=DIR with a local copy of its images")
        return Split(stem, path, items=dataset.items(range(len(dataset))), root=dataset.root,
                     class_names=[c.name for c in dataset.classes])
    raise UsageError(f"{path}: expected a .rec, .lst or .manifest file, or a folder of them")


def beside_list(uri: str, store: Any) -> Any:
    """The ``.lst`` beside a ``.rec``, validated now (a bad line fails here, naming it), its paths
    read only when a report shows them."""
    from imgprep.splits.stream import ListStream
    from imgprep.storage.stores import Storage

    return ListStream([uri], store if store is not None else Storage())


def _channel_root(folder: str, stem: str) -> str | None:
    """The image channel a ``<channel>_lst/<channel>.lst`` of the image format lists (its paths
    are relative to ``<channel>/`` beside it), or None for any other list."""
    parent, name = os.path.split(folder)
    if name != f"{stem}_lst":
        return None
    channel = os.path.join(parent, stem)
    return channel if os.path.isdir(channel) else None


def _folder_splits(folder: str, root: str | None) -> tuple[list[Split], list[str]]:
    """Every split of the folder: its records where it has them (``NAME.rec``), else its list or
    manifest; and a line for each file left out because the records stand for it."""
    names, sharded = group_shards(sorted(os.listdir(folder)))
    recs = {n[:-4] for n in names if n.endswith(".rec")}
    # the image format (prepare --format images): one <channel>_lst/<channel>.lst per image channel
    lists = [os.path.join(n, n[: -len("_lst")] + ".lst") for n in names if n.endswith("_lst")]
    lists = [n for n in lists if os.path.isfile(os.path.join(folder, n))]
    if not recs and lists:
        return sorted((_file_split(os.path.join(folder, n), root) for n in lists), key=split_order), []
    chosen, left_out = [], []
    for n in names:
        stem, ext = os.path.splitext(n)
        if ext == ".rec" or (ext in (".lst", ".manifest") and stem not in recs):
            chosen.append(n)
        elif ext == ".manifest":  # a .lst beside its .rec names the records' paths; a manifest is not read
            left_out.append(f"{n}: not read (split {stem!r} is read from {stem}.rec)")
    if not chosen:
        raise UsageError(f"{folder}: holds no .rec, .lst or .manifest files")
    splits = [_file_split(os.path.join(folder, n), root) for n in chosen]
    for split in splits:
        if split.name in sharded:
            split.set_shards([os.path.join(folder, n) for n in sharded[split.name]])
    stems = [s.name for s in splits]
    for name in sorted({x for x in stems if stems.count(x) > 1}):  # train.lst and train.manifest
        raise UsageError(f"{folder}: split {name!r} has both a .lst and a .manifest: inspect one of them")
    return sorted(splits, key=split_order), left_out


def group_shards(names: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """The names with a sharded split's ``NAME-00000.rec``, ``NAME-00001.rec``... standing as one
    ``NAME.rec`` (the split is NAME, as the reader opens it), and each such split's shard files in order."""
    numbered: dict[str, list[tuple[int, str]]] = {}
    rest = []
    for n in names:
        found = numbered_shard(n)
        if found is not None and found[2] == "rec" and found[0] + ".rec" not in names:
            numbered.setdefault(found[0], []).append((found[1], n))
        elif found is None or found[0] + ".rec" in names:
            rest.append(n)
    sharded = {prefix: [n for _, n in sorted(files)] for prefix, files in numbered.items()}
    return sorted(rest + [prefix + ".rec" for prefix in sharded]), sharded


def split_order(split: Split) -> tuple[int, str]:
    order = {"train": 0, "val": 1, "validation": 1, "test": 2}
    return order.get(split.name, 3), split.name


def _class_names(folder: str) -> list[str] | None:
    from imgprep.layout.prepared import CLASSES

    path = os.path.join(folder, CLASSES)
    if not os.path.isfile(path):
        return None
    from imgprep.formats.classmap import read_names

    return read_names(path)
