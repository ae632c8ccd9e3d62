"""A packed dataset opened for training: ``ds[i]`` → ``(image, label)``, ``len(ds)``.

Nothing but the ``.idx`` files (and the dataset record) is read when the dataset opens; each
sample is one ranged read of its record through the :class:`~imgprep.storage.base.Store`
(``pread``-like for local files, a ranged GET on S3), so the first sample never waits for a
whole shard.  The object holds no open file or connection that a worker process could not
rebuild: it pickles (spawned workers; the index is mapped, not copied, see
:mod:`imgprep.data.index`) and keeps working in forked workers.
"""

from __future__ import annotations

import hashlib
import operator
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np

from imgprep.data import records
from imgprep.data.fetch import changed
from imgprep.data.index import RecordIndex
from imgprep.data.transforms import Transform, decode_batch, decode_full, mix
from imgprep.errors import ChangedError, FormatError, ImageError, ImgprepError, UsageError
from imgprep.formats import typecheck
from imgprep.formats.checksums import check_record
from imgprep.formats.checksums import decode as decode_crcs
from imgprep.formats.dataset import DatasetRecord
from imgprep.formats.imagesize import dimensions
from imgprep.imaging.geometry import check_limit
from imgprep.imaging.spec import DEFAULT_MAX_PIXELS
from imgprep.layout import Dataset as FoundDataset
from imgprep.layout import find_shards
from imgprep.storage.base import Store
from imgprep.storage.ranges import read_ranges


@dataclass(frozen=True)
class Sample:
    image: np.ndarray
    label: int | np.ndarray
    id: int
    index: int


class Dataset:
    """The records of a dataset record, a shard prefix or a ``.rec`` (with its ``.idx``), local or ``s3://``.

    ``transform``: a :class:`Transform` (``Transform.train(224)``, ``Transform.eval(224)``), or
    None for whole images.  ``seed``: augmentation draws of sample ``i`` in epoch ``e`` come from
    ``(seed, e, i)`` alone.  ``errors``: ``"raise"`` (a damaged record is an error naming shard,
    record and byte) or ``"skip"`` (``ds[i]`` returns None for it, and :attr:`skipped` counts it).
    ``storage``: the Store to read through (default: local paths and ``s3://`` with the usual
    AWS configuration).

    What is refused (see ``docs/reader-checks.md``): a class id outside ``num_classes``, a
    multi-hot value other than 0 or 1, a record whose CRC-32 differs from the one the dataset
    record keeps for it (``checksums=False`` skips that check), an image whose header declares
    more than ``max_pixels`` pixels (pack's limit, checked before decoding), and any file of the
    dataset replaced or rewritten after it was opened (:class:`~imgprep.errors.ChangedError`:
    open the dataset again).  ``num_classes``: the dataset record's when it has one; for
    datasets without (another tool's ``.rec``, an older pack) give it here, or it stays None
    (unknown: class ids are then only checked to be whole and non-negative, and
    :attr:`num_classes_unknown` says why).  :attr:`class_names`: the names by class id, when the
    dataset record has them.
    """

    def __init__(self, path: str, *, transform: Transform | None = None, seed: int = 0, errors: str = "raise",
                 storage: Store | None = None, num_classes: int | None = None, checksums: bool = True,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        if errors not in ("raise", "skip"):
            raise UsageError(f"errors={errors!r} must be 'raise' or 'skip'")
        num_classes = None if num_classes is None else _positive("num_classes", num_classes)
        max_pixels = _positive("max_pixels", max_pixels)
        typecheck.flag("checksums", checksums)  # checksums="no" would have left the check on
        self.path = str(path)
        self.transform = transform
        self.seed = int(seed)
        self.errors = errors
        self.max_pixels = max_pixels
        self.skipped = 0
        self._lock = threading.Lock()
        if storage is None:
            from imgprep.storage.stores import Storage

            storage = Storage()
        self.storage = storage
        found = find_shards(self.path, storage)
        # Each .rec's generation is pinned before its .idx is read: a republish at any later moment
        # (the two are replaced together) makes every read of the pinned .rec fail, never mix.
        self.versions = {s.rec: storage.version(s.rec) for s in found.shards}
        sizes = [s.rec_bytes if s.rec_bytes is not None else storage.size(s.rec) for s in found.shards]
        self.index = RecordIndex.read(storage, [(s.rec, s.idx, size) for s, size in zip(found.shards, sizes)])
        record = found.record  # the dataset record, when a pack wrote one: its label width and classes
        self.crcs = _checksums(found, self.index) if checksums else None
        width = record.label_width if record else None
        if width is None:
            width = records.peek_width(self._read(0), 0) if len(self) else 1
        self.labels = records.LabelShape(width, _num_classes(record, num_classes, self.path))
        self.class_names: tuple[str, ...] | None = getattr(record, "class_names", None)
        self.num_classes_unknown = None if self.num_classes is not None else _unknown(record)
        self.identity = _identity(record, self.index)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def label_width(self) -> int:
        return self.labels.width

    @property
    def num_classes(self) -> int | None:
        return self.labels.num_classes

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[np.ndarray, int | np.ndarray] | None:
        """Sample ``key`` (or ``(index, epoch)``, what :class:`~imgprep.data.Sampler` yields) as
        ``(image, label)``; None for a damaged record when ``errors="skip"``."""
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        sample = self.sample(int(index), int(epoch))
        return None if sample is None else (sample.image, sample.label)

    def __getitems__(self, keys: Sequence[Any]) -> list[tuple[np.ndarray, int | np.ndarray] | None]:
        """A DataLoader batch at once, its records read together (:func:`imgprep.data.fetch.get_items`)."""
        from imgprep.data.fetch import get_items

        return get_items(self, keys)

    def sample(self, index: int, epoch: int = 0) -> Sample | None:
        got = self.samples([index], epoch)
        return got[0] if got else None

    def samples(self, indices: list[int] | np.ndarray, epoch: int = 0, out: np.ndarray | None = None,
                fetched: Sequence[Future] | None = None) -> list[Sample]:
        """Samples ``indices`` of ``epoch`` (images written into ``out`` when given); damaged ones
        raise, or are left out and counted when ``errors="skip"``.  ``fetched``: futures of
        :meth:`fetch` for ``indices`` already under way (the loader's read-ahead)."""
        indices = [int(i) for i in indices]
        failures: dict[int, ImgprepError] = {}
        parsed: dict[int, tuple[int, Any, memoryview]] = {}
        for j, i in enumerate(indices):
            got = fetched[j].result() if fetched is not None else self.fetch(i)
            if isinstance(got, FormatError | ImageError):
                failures[j] = got
            else:
                parsed[j] = got
        images: dict[int, np.ndarray] = {}
        ok = sorted(parsed)
        if self.transform is None:
            for j in ok:
                try:
                    images[j] = decode_full(parsed[j][2])
                except ImageError as exc:
                    failures[j] = self._name(exc, indices[j])
        else:
            target = out if out is not None and len(ok) == len(indices) else \
                np.empty((len(ok), *self.transform.shape), np.uint8)
            seeds = [mix(self.seed, epoch, indices[j]) for j in ok]
            for k, exc in decode_batch([parsed[j][2] for j in ok], seeds, self.transform, target).items():
                failures[ok[k]] = self._name(exc, indices[ok[k]])
            images = {j: target[k] for k, j in enumerate(ok)}
        if failures and self.errors == "raise":
            raise failures[min(failures)]
        if failures:
            with self._lock:
                self.skipped += len(failures)
        return [Sample(images[j], parsed[j][1], parsed[j][0], indices[j]) for j in range(len(indices))
                if j not in failures]

    def fetch(self, index: int) -> tuple[int, int | np.ndarray, memoryview] | FormatError | ImageError:
        """:meth:`record`, with a damaged record's error returned rather than raised (a
        :class:`StorageError`, no record's fault, still raises)."""
        try:
            return self.record(index)
        except (FormatError, ImageError) as exc:
            return exc

    def record(self, index: int) -> tuple[int, int | np.ndarray, memoryview]:
        """``(id, label, encoded image)`` of record ``index``; a damaged record (framing, header,
        label, checksum, an image over the pixel limit) is a FormatError or ImageError naming its
        shard, number and byte."""
        if not 0 <= index < len(self):
            raise IndexError(f"record {index} of a dataset of {len(self)}")
        return self.parse_record(index, self._read(index))

    def parse_record(self, index: int, data: bytes | memoryview) -> tuple[int, int | np.ndarray, memoryview]:
        """:meth:`record` of bytes already read (the loader's coalesced reads come in here too)."""
        where = self.index.locate(index)
        try:
            if self.crcs is not None:
                check_record(data, int(self.crcs[index]), where=f"record at byte {where.start}")
            rid, label, image = records.parse(data, where.start, self.labels)
        except FormatError as exc:
            raise type(exc)(f"record {index}: {exc.message}", path=where.uri) from None
        size = dimensions(image)
        if size is not None:
            try:
                check_limit(*size, self.max_pixels, raise_with="Dataset(max_pixels=...)")
            except ImageError as exc:
                raise self._name(exc, index) from None
        return rid, label, image

    def _read(self, index: int) -> bytes:
        where = self.index.locate(index)
        try:
            data = read_ranges(self.storage, where.uri, [(where.start, where.end)], self.versions.get(where.uri))[0]
        except ChangedError as exc:
            raise changed(exc, index) from None
        if len(data) != where.end - where.start:
            raise FormatError(f"record {index} at byte {where.start}: the shard ends after {len(data)} of its "
                              f"{where.end - where.start} bytes", path=where.uri)
        return data

    def _name(self, exc: ImgprepError, index: int) -> ImgprepError:
        where = self.index.locate(index)
        return type(exc)(f"record {index} at byte {where.start}: {exc.message}", path=where.uri)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        classes = "unknown" if self.num_classes is None else self.num_classes
        return f"Dataset({self.path!r}, {len(self)} records, label_width={self.label_width}, num_classes={classes})"


def _identity(record: DatasetRecord | None, index: RecordIndex) -> str:
    """What the records are, for a saved reading state: the list the pack wrote them from (a
    republish of the same list is the same records, in the same order), else the ``.idx`` offsets."""
    if record is not None and record.list.sha256:
        return f"list:{record.list.sha256}"
    digest = hashlib.sha256(np.ascontiguousarray(index.offsets).tobytes())
    digest.update(np.ascontiguousarray(index.starts).tobytes())
    return f"idx:{digest.hexdigest()}"


def _positive(name: str, value: Any) -> int:
    """A whole number above zero (as the CLI's options take them), else one UsageError line."""
    try:
        number = operator.index(value) if not isinstance(value, bool) else 0
    except TypeError:
        number = 0
    if number < 1:
        raise UsageError(f"{name}={value!r} must be a positive integer")
    return number


def _num_classes(record: DatasetRecord | None, given: int | None, path: str) -> int | None:
    """The dataset record's ``num_classes``; ``given`` where it has none; never a guess."""
    stored = record.num_classes if record is not None else None
    if given is not None and stored is not None and given != stored:
        raise UsageError(f"num_classes={given} but the dataset record says {stored}", path=path)
    return stored if stored is not None else given


def _unknown(record: DatasetRecord | None) -> str:
    """Why ``num_classes`` is None, in a line a person can act on."""
    if record is None:
        why = "no dataset record (shards another tool wrote)"
    else:
        why = getattr(record, "num_classes_unknown", None) or "the dataset record does not say (an older pack)"
    return f"{why}: pass Dataset(..., num_classes=N)"


def _checksums(found: FoundDataset, index: RecordIndex) -> np.ndarray | None:
    """Each record's CRC-32 in index order, from the dataset record; None when it keeps none (shards
    another tool wrote, or a pack from before the checksums).  The i-th smallest offset of a shard's
    ``.idx`` is its i-th record, as :func:`imgprep.formats.checksums.by_offset` reads them."""
    entries = [s.entry for s in found.shards]
    if not entries or any(e is None or e.record_crc32 is None for e in entries):
        return None
    parts = []
    for number, (shard, entry) in enumerate(zip(found.shards, entries)):
        count = int(index.starts[number + 1] - index.starts[number])
        if count != entry.records:
            raise FormatError(f"its .idx lists {count} records, the dataset record {entry.records}", path=shard.idx)
        parts.append(np.frombuffer(decode_crcs(entry.record_crc32, entry.records).tobytes(), np.uint32))
    return np.concatenate(parts)
