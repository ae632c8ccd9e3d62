"""Making a channel's images: the packer's imaging path, many requests at once, nothing listed yet.

:class:`ChannelWriter` writes one split's images into its channel's generation folder: chunks
of the list are transformed on ``workers`` threads through :func:`imgprep.packing.worker.run_chunk`
(the native batch, without the GIL), each record's image taken back out of it, so an image here
is byte for byte the image ``pack`` puts in its record; the requests (one PutObject with
Content-MD5 per image, or a CopyObject for pass-through from S3 to S3) run on a pool of their
own, their bytes drawn from the store's upload budget.  An image already in the folder with the
same bytes is not written again (:class:`_Known`).  The summary it returns says what to list.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from imgprep import __version__
from imgprep.errors import BadRecordsError, ImageError, ImgprepError, UsageError
from imgprep.formats import imageset
from imgprep.formats.imagesize import SizeRange, dimensions, record_image
from imgprep.formats.lst import LstItem, dumps
from imgprep.imaging.spec import TransformSpec
from imgprep.layout import channels as names
from imgprep.layout.meter import meter
from imgprep.layout.skipped import Skipped
from imgprep.packing.packer import PackOptions, default_workers
from imgprep.packing.sources import ImageSource, check_source
from imgprep.packing.worker import Chunk, WorkerContext, run_chunk
from imgprep.storage.base import Store, is_remote

CHUNK = 32  # images per worker call: the native batch's per-call cost spread, memory small
IO_THREADS = 16  # concurrent requests where S3 is read or written: per small object the cost is latency


@dataclass
class ChannelSummary:
    """What one split's channel holds after :func:`write_images` (``describe`` reads
    ``skipped_items``, ``sizes`` and ``report`` as it does a pack's summary)."""

    split: str
    channel: str
    records: int = 0
    skipped: int = 0
    bytes: int = 0
    written: int = 0  # images this run wrote (uploaded)
    reused: int = 0  # found already there with the same bytes (a resumed run)
    copied: int = 0  # copied server-side
    seconds: float = 0.0
    report: str | None = None
    dataset: str | None = None  # the image-set record
    list_uri: str | None = None
    items: list[LstItem] = field(default_factory=list)  # the list written, paths under the channel
    entries: list[imageset.ImageEntry] = field(default_factory=list)  # the images written, in list order
    skipped_items: list[Skipped] = field(default_factory=list)
    sizes: SizeRange = field(default_factory=SizeRange)
    workers: int = 0
    image_path: str = ""
    record: imageset.ImageSet | None = None  # what is committed with the list
    list_text: str = ""

    @property
    def outputs(self) -> list[str]:
        """What this split publishes by itself: nothing (its list is written at the commit)."""
        return []

    @property
    def images_per_second(self) -> float:
        done = self.records + self.skipped
        return done / self.seconds if self.seconds > 0 else 0.0

    def format(self) -> str:
        how = f"{self.written} written, {self.reused} already there" + (
            f", {self.copied} copied server-side" if self.copied else "")
        lines = [f"{self.records} images in {self.channel}/ ({how}), {self.skipped} skipped, {self.bytes:,} bytes, "
                 f"{self.images_per_second:,.0f} images/s ({self.workers} workers, {self.image_path})"]
        if self.list_uri:
            lines.append(f"  {self.list_uri}")
        if self.report:
            lines.append(f"  skipped images and reasons: {self.report}")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Done:
    """One item's outcome: the image written (``entry``) or why it was skipped (``reason``)."""

    position: int
    entry: imageset.ImageEntry | None = None
    reason: str | None = None
    how: str = ""  # "written", "reused" or "copied"


class ChannelWriter:
    """The images of one run, channel after channel, on one pool of threads."""

    def __init__(self, source: ImageSource, outdir: str, spec: TransformSpec, options: PackOptions,
                 storage: Store) -> None:
        self.source, self.outdir, self.spec, self.options, self.storage = source, outdir, spec, options, storage
        self.workers = options.num_workers or default_workers()
        self.copying = spec.pass_through and _copies(source, outdir)
        if spec.pass_through:
            self.image_path = "copied server-side" if self.copying else "pass-through"
            chosen_name = "pillow"
        else:
            from imgprep.imaging.transform import select

            chosen_name = select(options.native).name
            self.image_path = chosen_name
        guard = getattr(source, "guard", None)
        self.ctx = WorkerContext(spec, chosen_name, False, guard.read_root if guard is not None else None)
        # requests to S3 wait on latency, not on a core: many at once, on their own pool; a local
        # file is written by the worker that made it
        self.remote = is_remote(outdir)
        self.io_threads = IO_THREADS if self.remote or self.copying else 1
        self.threads = self.workers
        out_store = _store_of(storage, outdir)
        self.budget = getattr(out_store, "budget", None)
        self._holders = threading.local()
        self.settings = settings_of(spec, options)

    # ------------------------------------------------------------------ one channel

    def channel(self, split: str, channel: str, items: Sequence[LstItem],
                whole: Sequence[LstItem] | None = None) -> ChannelSummary:
        """Write ``items``' images to ``channel``; with ``whole`` (the split's list, of which
        ``items`` is one host's share) the names and generation are the whole list's and the
        summary holds only what was written (:func:`summarise` of every host's makes the list)."""
        started = time.perf_counter()
        items = list(items)
        if not items:
            raise UsageError(f"the list of {split} is empty: nothing to write")
        if not self.copying:
            check_source(items, self.source)
        listed = list(whole) if whole is not None else items
        gen = self.generation(listed)
        folder = names.channel_uri(self.outdir, channel) + gen + "/"
        by_index = dict(zip((i.index for i in listed),
                            names.written_names(listed, None if self.spec.pass_through else self.spec.encoding),
                            strict=True))
        written = [by_index[item.index] for item in items]
        known = _Known(self.storage, folder)
        source_etags = self._source_listing() if self.copying else {}
        entries: dict[int, imageset.ImageEntry] = {}
        skipped: dict[int, Skipped] = {}
        counts = {"written": 0, "reused": 0, "copied": 0}
        # the same progress as a RecordIO pack's (issue 32.1): a bar on a terminal, lines in a log
        with meter(f"pack {split}", len(items), "img", quiet=self.options.quiet,
                   progress=self.options.progress) as bar:
            for outcome in self._run(items, written, folder, known, source_etags):
                bar.update(1)
                item = items[outcome.position]
                if outcome.entry is None:
                    reason = outcome.reason or "unknown error"
                    skipped[outcome.position] = Skipped(item.index, self.source.describe(item), reason)
                else:
                    entries[item.index] = outcome.entry
                    counts[outcome.how] += 1
        found = [skipped[k] for k in sorted(skipped)]
        if whole is None:
            summary = summarise(self.outdir, split, channel, items, entries, found, (gen, self.settings),
                                strict=self.options.strict)
        else:
            summary = ChannelSummary(split, channel, entries=[entries[i.index] for i in items if i.index in entries],
                                     skipped_items=found)
        for how, n in counts.items():
            setattr(summary, how, n)
        summary.workers, summary.image_path = self.threads, self.image_path
        summary.seconds = time.perf_counter() - started
        return summary

    def generation(self, items: Sequence[LstItem]) -> str:
        """The generation folder of a split's list written with this run's settings."""
        return names.generation(hashlib.sha256(dumps(items).encode()).hexdigest(), self.settings)

    def _run(self, items: list[LstItem], written: list[str], folder: str, known: _Known,
             source_etags: dict[str, tuple[str, int]]) -> Iterator[_Done]:
        """Every item's outcome: chunks transformed on ``workers`` threads (at most four chunks
        per thread in flight), their requests on the I/O pool."""
        size = max(1, min(CHUNK, -(-len(items) // (4 * self.workers))))
        task = self._copy_chunk if self.copying else self._make_chunk
        with ThreadPoolExecutor(self.workers, thread_name_prefix="imgprep-images") as pool, \
                ThreadPoolExecutor(self.io_threads, thread_name_prefix="imgprep-put") as io:
            window: deque[Future[list[_Done]]] = deque()
            try:
                for start in range(0, len(items), size):
                    cut = range(start, min(start + size, len(items)))
                    window.append(pool.submit(task, items, written, folder, known, cut, source_etags, io))
                    if len(window) >= 4 * self.workers:
                        yield from window.popleft().result()
                while window:
                    yield from window.popleft().result()
            finally:
                for future in window:
                    future.cancel()

    def _make_chunk(self, items: list[LstItem], written: list[str], folder: str, known: _Known, cut: range,
                    _etags: dict[str, tuple[str, int]], io: ThreadPoolExecutor) -> list[_Done]:
        """Fetch, transform through the packer's path, and write one chunk of images."""
        chunk_items = [items[p] for p in cut]
        paths = self.source.local_paths(chunk_items)
        data: list[Any] | None = None
        failed: dict[int, str] = {}
        if None in paths:
            data = self._fetch(chunk_items, paths, failed)
        keep = [k for k in range(len(chunk_items)) if k not in failed]
        chunk = Chunk([chunk_items[k].index for k in keep], [(0.0,)] * len(keep), [paths[k] for k in keep],
                      None if data is None else [data[k] for k in keep])
        packed = run_chunk(self.ctx, chunk) if keep else None
        out: list[_Done] = [_Done(cut.start + k, reason=why) for k, why in failed.items()]
        puts: list[Future[_Done]] = []
        at = 0
        view = memoryview(packed.records) if packed is not None else memoryview(b"")
        for j, k in enumerate(keep):
            size = packed.sizes[j] if packed is not None else 0
            position = cut.start + k
            if not size:
                out.append(_Done(position, reason=packed.reasons.get(j, "unknown error") if packed else None))
                continue
            image = record_image(bytes(view[at:at + size]))
            at += size
            args = (position, items[position], image, folder + written[position], known)
            if self.remote:
                puts.append(io.submit(self._store, *args))
            else:
                out.append(self._store(*args))
        return out + [put.result() for put in puts]

    def _fetch(self, chunk_items: list[LstItem], paths: list[str | None], failed: dict[int, str]) -> list[Any]:
        """The data of the items without a local file (S3 objects, in-memory pixels)."""
        source = self.source
        if getattr(source, "batched", False):
            wanted = [k for k, p in enumerate(paths) if p is None]
            fetched = source.fetch_many([chunk_items[k] for k in wanted])
            data: list[Any] = [None] * len(paths)
            for k, value in zip(wanted, fetched, strict=True):
                data[k] = value
            return data
        wanted = [k for k, p in enumerate(paths) if p is None]
        data = [None] * len(paths)
        for k, value in zip(wanted, source.iter_fetch(chunk_items[k] for k in wanted), strict=True):
            if isinstance(value, ImageError):
                failed[k] = value.message
            elif isinstance(value, ImgprepError):
                raise value  # storage failing is not a bad image
            else:
                data[k] = value
        return data

    def _store(self, position: int, item: LstItem, image: bytes, uri: str, known: _Known) -> _Done:
        md5 = hashlib.md5(image, usedforsecurity=False).hexdigest()
        size = dimensions(image)
        entry = imageset.ImageEntry(uri[len(known.channel_root):], item.index, len(image), md5,
                                    *(size or (None, None)))
        if known.holds(uri, len(image), md5):
            return _Done(position, entry, how="reused")
        self._put(uri, image, md5)
        return _Done(position, entry, how="written")

    def _put(self, uri: str, image: bytes, md5: str) -> None:
        """One image, whole; on S3 its bytes are drawn from the store's upload budget while in flight."""
        if self.budget is None:
            self.storage.put_whole(uri, image, md5=md5, content_type=_content_type(uri))
            return
        holder = self._holders.__dict__.setdefault("holder", object())
        self.budget.acquire(holder, len(image))
        try:
            self.storage.put_whole(uri, image, md5=md5, content_type=_content_type(uri))
        finally:
            self.budget.release(holder, len(image))

    def _copy_chunk(self, items: list[LstItem], written: list[str], folder: str, known: _Known, cut: range,
                    source_etags: dict[str, tuple[str, int]], io: ThreadPoolExecutor) -> list[_Done]:
        """Pass-through from S3 to S3: each image copied by S3 (on the I/O pool), unless there already."""
        copies = [io.submit(self._copy_one, items, written, folder, known, position, source_etags) for position in cut]
        return [copy.result() for copy in copies]

    def _copy_one(self, items: list[LstItem], written: list[str], folder: str, known: _Known, position: int,
                  source_etags: dict[str, tuple[str, int]]) -> _Done:
        item = items[position]
        src, uri = self.source.describe(item), folder + written[position]
        etag, size = source_etags.get(src, (None, None))
        try:
            if etag is None or size is None or known.sizes.get(uri) != size or known.etags.get(uri) != etag:
                etag, how = self.storage.copy_object(src, uri), "copied"
            else:
                how = "reused"
            if size is None:  # an object outside the root's listing (a manifest's own URI)
                size = self.storage.size(uri)
        except ImageError as exc:
            return _Done(position, reason=exc.message)
        plain = etag is not None and len(etag) == 32 and "-" not in etag
        entry = imageset.ImageEntry(uri[len(known.channel_root):], item.index, size, etag if plain else None,
                                    etag=None if plain else etag)
        return _Done(position, entry, how=how)

    def _source_listing(self) -> dict[str, tuple[str, int]]:
        """ETag and size of every object under the source root (a listing per thousand objects):
        what a copy already in place must match."""
        root = _root_of(self.source).rstrip("/") + "/"
        etags = self.storage.etags(root)
        return {e.uri: (etags[e.uri], e.size) for e in self.storage.list(root) if e.uri in etags}


def settings_of(spec: TransformSpec, options: PackOptions) -> dict[str, Any]:
    """What shapes a channel's bytes (its generation and its record say it): the transform, the
    image path and the imgprep version."""
    if spec.pass_through:
        path = "pass-through"
    else:
        from imgprep.imaging.transform import select

        path = select(options.native).name
    return {**dataclasses.asdict(spec), "image_path": path, "imgprep": __version__}


def summarise(outdir: str, split: str, channel: str, items: Sequence[LstItem],
              entries: Mapping[int, imageset.ImageEntry], skipped: Sequence[Skipped],
              made: tuple[str, Mapping[str, Any]], *, strict: bool) -> ChannelSummary:
    """A channel's list and image-set record from the images written (``entries``, by list id),
    in the list's order: the one summary whatever wrote them (one run, or several hosts).
    ``made``: the generation folder and the settings that made its images."""
    generation, settings = made
    summary = ChannelSummary(split, channel)
    order = {item.index: k for k, item in enumerate(items)}
    summary.skipped_items = sorted(skipped, key=lambda s: order.get(s.index, len(order)))
    for item in items:
        entry = entries.get(item.index)
        if entry is None:
            continue
        summary.entries.append(entry)
        summary.items.append(LstItem(item.index, item.labels, entry.path))
        summary.sizes.note(None if entry.width is None or entry.height is None else (entry.width, entry.height))
        summary.bytes += entry.bytes
    summary.records, summary.skipped = len(summary.entries), len(summary.skipped_items)
    if summary.skipped_items and strict:
        first = summary.skipped_items[0]
        raise BadRecordsError(f"{first.reason} (record {first.index}; --strict stops at the first bad image, "
                              "no list was committed)", path=first.path)
    if not summary.entries:
        first = summary.skipped_items[0]
        raise ImgprepError(f"no images written to {channel}/: all {len(items)} were skipped "
                           f"(first: {first.path}: {first.reason})")
    summary.list_uri = names.list_uri(outdir, channel)
    summary.dataset = names.record_uri(outdir, channel)
    summary.list_text = dumps(summary.items)
    summary.record = imageset.ImageSet(
        __version__, channel, f"{channel}_lst/{channel}.lst", hashlib.sha256(summary.list_text.encode()).hexdigest(),
        generation, tuple(summary.entries), settings, label_width=len(items[0].labels), skipped=summary.skipped)
    return summary


class _Known:
    """What a channel's generation folder already holds (one listing), to skip identical images."""

    def __init__(self, storage: Store, folder: str) -> None:
        self.storage = storage
        self.channel_root = folder[: folder.rstrip("/").rfind("/") + 1]
        self.sizes = {e.uri: e.size for e in storage.list(folder)}
        self.etags = storage.etags(folder) if self.sizes else {}

    def holds(self, uri: str, size: int, md5: str) -> bool:
        if self.sizes.get(uri) != size:
            return False
        etag = self.etags.get(uri)
        if etag is not None:
            return etag == md5
        with contextlib.suppress(ImgprepError):
            return hashlib.md5(self.storage.read_bytes(uri), usedforsecurity=False).hexdigest() == md5
        return False


def _copies(source: ImageSource, outdir: str) -> bool:
    """Pass-through from an ``s3://`` root to an ``s3://`` output: copied by S3 itself."""
    root = _root_of(source)
    return bool(root) and root.startswith("s3://") and outdir.startswith("s3://")


def _root_of(source: ImageSource) -> str:
    root = getattr(source, "root", "")
    return root if isinstance(root, str) else ""



def _store_of(storage: Store, uri: str) -> Store:
    route = getattr(storage, "for_uri", None)
    return route(uri) if route is not None else storage


def _content_type(uri: str) -> str:
    return "image/png" if uri.lower().endswith(".png") else "image/jpeg"
