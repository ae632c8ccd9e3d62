"""The packer: a deterministic, bounded, multiprocess successor of ``im2rec.py``'s rec mode.

Workers (processes, or threads when the native core releases the GIL) decode, resize,
encode and frame records; this process submits chunks of the list in order, keeps at most
``window`` chunks in flight (so memory does not grow with the dataset) and writes results in
list order — byte-identical output for any worker count.  A worker that dies fails the run;
a bad image is skipped and reported (or fails the run with ``strict``).  Shards are published
as they fill and the dataset record last (:mod:`imgprep.packing.publish` keeps the invariants).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import BrokenExecutor, Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from imgprep import __version__
from imgprep.errors import BadRecordsError, ImageError, ImgprepError, SourceError, UsageError, WorkerError
from imgprep.formats import typecheck
from imgprep.formats.dataset import DatasetRecord, ListRef, record_folder, record_name
from imgprep.formats.lst import LstItem, format_line
from imgprep.formats.recordio import output_prefix
from imgprep.imaging.spec import TransformSpec
from imgprep.layout.progress import OpenShard, Progress
from imgprep.layout.skipped import Skipped, report_name, write_report
from imgprep.packing.publish import AlreadyComplete, Publisher
from imgprep.packing.shards import ShardWriter
from imgprep.packing.sources import ImageSource, resolve
from imgprep.packing.worker import Chunk, WorkerContext, run_chunk, run_chunk_in_process
from imgprep.requirements import require_for
from imgprep.signals import sigterm_as_interrupt
from imgprep.storage.base import Store

EXECUTORS = ("auto", "process", "thread")


@dataclass
class PackOptions:
    """How to pack (the CLI's options that are not per-image transforms)."""

    num_workers: int | None = None  # None: all cores
    shard_records: int = 0
    shard_size: int = 0
    strict: bool = False
    pack_label: bool = False
    quiet: bool = False
    progress: bool | None = None  # None: a bar when stderr is a terminal and not quiet
    executor: str = "auto"
    native: bool | None = None  # None: use the native core when built (IMGPREP_NATIVE overrides)
    report: bool = True
    chunk_size: int = 0  # 0: chosen from the list length and worker count
    resume: bool = False  # continue after the last good published shard (see packing.publish)
    checkpoint_bytes: int = 32 << 20  # a shard being written is checkpointed this often
    storage: Store | None = None  # where to read and write: built by the caller (imgprep.pack: Storage())

    def __post_init__(self) -> None:
        self.num_workers = typecheck.integer("num_workers", self.num_workers, optional=True)
        for name in ("shard_records", "shard_size", "chunk_size", "checkpoint_bytes"):
            setattr(self, name, typecheck.integer(name, getattr(self, name)))
        for name in ("strict", "pack_label", "quiet", "report", "resume"):
            typecheck.flag(name, getattr(self, name))
        for name in ("progress", "native"):
            typecheck.flag(name, getattr(self, name), optional=True)
        typecheck.text("executor", self.executor)
        if self.num_workers is not None and self.num_workers < 1:
            raise UsageError(f"--num-workers must be at least 1, got {self.num_workers}")
        if self.shard_records < 0 or self.shard_size < 0:
            raise UsageError("--shard-records and --shard-size must not be negative")
        if self.shard_records and self.shard_size:
            raise UsageError("use --shard-records or --shard-size, not both")
        if self.executor not in EXECUTORS:
            raise UsageError(f"executor must be one of {', '.join(EXECUTORS)}, got {self.executor!r}")


@dataclass
class PackSummary:
    records: int
    skipped: int
    bytes: int
    seconds: float
    outputs: list[str]
    report: str | None
    image_path: str
    workers: int
    executor: str
    skipped_items: list[Skipped] = field(default_factory=list)
    dataset: str | None = None  # the dataset record written last (PREFIX.dataset.json)

    @property
    def images_per_second(self) -> float:
        done = self.records + self.skipped
        return done / self.seconds if self.seconds > 0 else 0.0

    def format(self) -> str:
        lines = [
            f"{self.records} records written, {self.skipped} skipped, {self.bytes:,} bytes, "
            f"{self.images_per_second:,.0f} images/s ({self.workers} {self.executor} worker"
            f"{'s' if self.workers != 1 else ''}, {self.image_path} path)"
        ]
        lines += [f"  {uri}" for uri in self.outputs]
        if self.report:
            lines.append(f"  skipped images and reasons: {self.report}")
        return "\n".join(lines)


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _daemonic() -> bool:
    """A daemonic process (a ``multiprocessing.Pool`` worker) may not start processes: it gets threads."""
    import multiprocessing

    return bool(multiprocessing.current_process().daemon)


def _make_executor(kind: str, workers: int, ctx: WorkerContext) -> Executor | None:
    if workers == 1:
        return None
    if kind == "thread":
        return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="imgprep")
    # Imported here: multiprocessing and the process pool cost ~13 ms of start-up that a
    # threaded or single-worker run does not need.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from imgprep.packing.worker import init_process

    # fork is the cheapest start, but forking a process that runs other threads (tqdm's
    # monitor, S3 upload pools, a host application) can deadlock: use forkserver then.
    method = "fork" if threading.active_count() == 1 and sys.platform == "linux" else "forkserver"
    context = multiprocessing.get_context(method)
    # A worker dies with the process that started it: this one, or the forkserver, which itself
    # exits when this process is gone.
    parent = os.getpid() if method == "fork" else None
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=init_process,
                               initargs=(ctx, parent))


def _progress(total: int, options: PackOptions) -> Any:
    show = options.progress
    if show is None:
        show = not options.quiet and sys.stderr.isatty()
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)


CHUNK_FILES = 16  # files read by the workers: small chunks keep latency and memory low
CHUNK_IN_MEMORY = 256  # tiny in-memory images (28x28 arrays, batched sources): big chunks amortise the IPC
CHUNK_BYTES = 4 << 20  # cap on in-memory bytes per chunk, so the window bounds memory


def _chunk_limit(n: int, workers: int, requested: int, in_memory: bool) -> int:
    if requested:
        return requested
    limit = CHUNK_IN_MEMORY if in_memory else CHUNK_FILES
    # ... but at least ~8 chunks per worker, so short lists still spread over every worker.
    return max(1, min(limit, n // (workers * 8) or 1))


def _nbytes(data: Any) -> int:
    return len(data) if isinstance(data, bytes | bytearray | memoryview) else int(getattr(data, "nbytes", 0))


def pack(
    items: Collection[LstItem],
    source: str | os.PathLike[str] | ImageSource,
    output: str,
    spec: TransformSpec | None = None,
    options: PackOptions | None = None,
    *,
    before_publish: Callable[[], None] | None = None,
) -> PackSummary:
    """Pack ``items`` (in order) from ``source`` into RecordIO at ``output`` (a prefix).

    ``before_publish`` runs once, when the run is ready to publish its first shard, just before
    the old generation is retired (``prepare`` retires its other outputs with it).

    ``items`` is any sized collection iterated in order (a :class:`ListStream` reads the list
    files lazily).  Shards are published as they fill and ``PREFIX.dataset.json`` last (see
    :mod:`imgprep.packing.publish`); ``options.resume`` continues after the last good shard.
    Raises :class:`BadRecordsError` with ``strict`` when an image is bad, :class:`WorkerError`
    when a worker dies, and re-raises KeyboardInterrupt after aborting the shard in progress.
    """
    spec = spec or TransformSpec()
    options = options or PackOptions()
    if not len(items):
        raise UsageError("the list is empty: nothing to pack")
    output = os.fspath(output)
    storage = options.storage
    if storage is None:
        raise UsageError("PackOptions.storage is not set: give the Store to write through (imgprep.Storage())")
    clients = storage.clients(output) + (storage.clients(source, images=True) if isinstance(source, str) else ())
    require_for(clients, decode=not spec.pass_through)
    from imgprep.imaging.transform import select

    chosen = select(options.native)
    image_path = chosen.name if not spec.pass_through else "pass-through"
    prefix = output_prefix(output)
    publisher = Publisher(prefix, _skeleton(items, spec, options, image_path), storage,
                          before_retiring=before_publish)
    # Whatever can be checked is checked before the output is touched (invariant 5 of
    # packing.publish): names, the image root, under the lock the first images; the old
    # generation is retired only when the first shard is ready.
    publisher.files.check_names()
    image_source = resolve(source, storage)
    try:
        # SIGTERM unwinds like Ctrl-C from here on, taking the lock included (it may hang on S3).
        with sigterm_as_interrupt():
            try:
                progress = publisher.begin(options.resume)  # the lock, and where to start: nothing removed
            except AlreadyComplete as done:
                return _summary_of(done.record, prefix, image_path)
            try:
                _check_source(items, image_source)
                return _pack(items, image_source, prefix, spec, options, chosen, image_path, storage, publisher,
                             progress)
            finally:
                publisher.end()
    finally:
        image_source.close()


PROBE_ITEMS = 16  # of the list's first items, at least one must be readable before the output is touched


def _check_source(items: Collection[LstItem], source: ImageSource) -> None:
    """The root holds the list's first images: one of the first :data:`PROBE_ITEMS` is read.

    A mistyped or empty root would otherwise skip every image of a long list before failing.
    Storage failing (S3 denied or silent) raises at once; bad images only count as unreadable.
    """
    first: ImageError | None = None
    for item in itertools.islice(items, PROBE_ITEMS):
        try:
            source.fetch(item)
            return
        except ImageError as exc:
            first = first or exc
    if first is not None:
        shown = min(len(items), PROBE_ITEMS)
        raise SourceError(f"none of the first {shown} listed images can be read from the image root "
                          f"(is the root right?); first: {first}")


def _skeleton(items: Collection[LstItem], spec: TransformSpec, options: PackOptions, image_path: str) -> DatasetRecord:
    """The dataset record of this run before any shard: what ``--resume`` compares."""
    ref = list_ref(items)
    settings = {**dataclasses.asdict(spec), "pack_label": options.pack_label, "image_path": image_path,
                "shard_records": options.shard_records, "shard_size": options.shard_size}
    first = next(iter(items))
    width = len(first.labels) if options.pack_label and len(first.labels) > 1 else 1
    return DatasetRecord(__version__, ref, (), json.loads(json.dumps(settings)), label_width=width)


def list_ref(items: Collection[LstItem]) -> ListRef:
    """The list's reference in the dataset record: a :class:`ListStream`'s files, or the items'
    ``.lst`` lines hashed (lists built in Python)."""
    ref = getattr(items, "ref", None)
    if ref is None:
        digest = hashlib.sha256()
        for item in items:
            digest.update(format_line(item).encode())
        ref = ListRef("(items given in Python)", digest.hexdigest(), len(items))
    return ref


def _summary_of(record: DatasetRecord, prefix: str, image_path: str) -> PackSummary:
    folder = record_folder(prefix)
    outputs = [folder + name for s in record.shards for name in (s.rec, s.idx)]
    return PackSummary(record.records, record.skipped, record.rec_bytes, 0.0, outputs, None, image_path, 0, "none",
                       dataset=record_name(prefix))


def _pack(
    items: Collection[LstItem], source: Any, prefix: str, spec: TransformSpec, options: PackOptions, chosen: Any,
    image_path: str, storage: Store, publisher: Publisher, progress: Progress,
) -> PackSummary:
    image_source = source
    workers = options.num_workers or default_workers()
    kind = options.executor if options.executor != "auto" else chosen.preferred_executor
    if spec.pass_through:
        # Pass-through is file I/O and framing: shipping whole files to workers only costs.
        workers, kind = 1, "inline"
    elif workers == 1:
        kind = "inline"
    elif kind == "process" and _daemonic():
        kind = "thread"
    guard = getattr(image_source, "guard", None)
    ctx = WorkerContext(spec, chosen.name, options.pack_label, guard.root if guard is not None else None)
    skipped: list[Skipped] = []  # bad images are few; the progress file repeats them per shard

    def publish(rec: Any, idx: Any, entry: Any, consumed: int) -> None:
        publisher.publish(rec, idx, entry, consumed, skipped)

    def checkpoint(rec: Any, idx: Any, state: OpenShard) -> None:
        publisher.checkpoint(rec, idx, state, skipped)

    done = progress.record
    writer = ShardWriter(prefix, publish, shard_records=options.shard_records, shard_size=options.shard_size,
                         first_shard=len(done.shards), storage=storage, checkpoint=checkpoint,
                         checkpoint_bytes=options.checkpoint_bytes, skipped=lambda: len(skipped),
                         retire=publisher.retire)
    writer.records, writer.bytes = done.records, done.rec_bytes
    start = progress.items_done
    if progress.open is not None and writer.reopen(progress.open):
        start = progress.open.consumed
    else:
        progress = publisher.forget_open()
    skipped.extend(progress.skipped)
    bar = _progress(len(items), options)
    if bar is not None and start:
        bar.update(start)
    started = time.perf_counter()
    executor: Executor | None = None
    try:
        executor = _make_executor(kind, workers, ctx)
        _run(items, start, image_source, ctx, executor, workers, options, writer, skipped, bar)
        if skipped and options.strict:
            first = skipped[0]
            raise BadRecordsError(
                f"{first.reason} (record {first.index}; --strict stops at the first bad image, "
                "the dataset was not committed)",
                path=first.path,
            )
        if writer.records == 0:
            first = skipped[0]
            raise ImgprepError(
                f"no records written: all {len(items)} images were skipped (first: {first.path}: {first.reason})"
            )
        writer.close(len(items))
        report = write_report(storage, prefix, skipped) if options.report else None
        record = publisher.finish(len(skipped))
    except BaseException:
        writer.abort()
        with contextlib.suppress(ImgprepError, OSError):
            publisher.remove_temporaries()
        raise
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()
    summary = _summary_of(record, prefix, image_path)
    summary.seconds = time.perf_counter() - started
    summary.report, summary.workers, summary.executor = report, workers, kind
    summary.skipped_items = skipped
    return summary


_DEFERRED = object()  # data a batched source fetches a whole chunk at a time (``fetch_many``)
Entry = tuple[int, LstItem, "str | None", Any]  # (list position, item, local path, data)


def _fetched_stream(items: Collection[LstItem], start: int, source: ImageSource) -> Iterator[Entry]:
    """``(position, item, local path, data)`` in list order from position ``start``; data without
    a local file is fetched here, ahead of the workers (an S3 source downloads concurrently in
    ``iter_fetch``; an in-memory source hands over whole chunks in ``fetch_many``).  The list is
    read lazily, twice in step when some items are fetched: nothing is held per item."""

    def remote() -> Iterator[LstItem]:
        return (item for item in itertools.islice(items, start, None) if source.local_path(item) is None)

    fetched: Iterator[Any] | None = None
    for position, item in enumerate(itertools.islice(items, start, None), start):
        path = source.local_path(item)
        data = None
        if path is None and source.batched:
            data = _DEFERRED
        elif path is None:
            if fetched is None:
                fetched = source.iter_fetch(remote())
            data = next(fetched)
        yield position, item, path, data


def _make_chunk(entries: list[Entry], source: ImageSource) -> Chunk:
    ready = [e for e in entries if not isinstance(e[3], ImgprepError)]
    data: Any = None
    if any(e[3] is _DEFERRED for e in ready):
        data = source.fetch_many([e[1] for e in ready])
    elif any(e[2] is None for e in ready):
        data = [e[3] for e in ready]
        first = data[0]
        shape = getattr(first, "shape", None)
        if shape is not None and all(getattr(d, "shape", None) == shape and d.dtype == first.dtype for d in data):
            import numpy as np

            data = np.stack(data)  # one buffer instead of many small pickles
    return Chunk([e[1].index for e in ready], [e[1].labels for e in ready], [e[2] for e in ready], data)


def _run(
    items: Collection[LstItem],
    start: int,
    source: ImageSource,
    ctx: WorkerContext,
    executor: Executor | None,
    workers: int,
    options: PackOptions,
    writer: ShardWriter,
    skipped: list[Skipped],
    bar: Any,
) -> None:
    file_limit = _chunk_limit(len(items), workers, options.chunk_size, in_memory=False)
    memory_limit = _chunk_limit(len(items), workers, options.chunk_size, in_memory=True)
    window = workers * 4
    stream = _fetched_stream(items, start, source)
    pending: deque[tuple[Future[Any] | None, list[Entry], Chunk]] = deque()

    def submit() -> bool:
        entries: list[Entry] = []
        in_memory = 0
        for entry in stream:
            entries.append(entry)
            in_memory += _nbytes(entry[3])
            # Fetched files (S3) chunk like local files: small chunks keep bytes in flight few.
            limit = memory_limit if entry[2] is None and source.batched else file_limit
            if len(entries) >= limit or in_memory >= CHUNK_BYTES:
                break
        if not entries:
            return False
        chunk = _make_chunk(entries, source)
        future = None
        if executor is not None and len(chunk):
            if not isinstance(executor, ThreadPoolExecutor):
                future = executor.submit(run_chunk_in_process, chunk)
            else:
                future = executor.submit(run_chunk, ctx, chunk)
        pending.append((future, entries, chunk))
        return True

    try:
        _drain(submit, pending, window, ctx, source, options, writer, skipped, bar)
    except BrokenExecutor:
        # BrokenProcessPool, raised by result() or by the next submit(), whichever sees the dead
        # worker first.  (A thread pool breaks only when an initializer fails; it has none.)
        in_flight = [entry[1] for _, entries, _ in pending for entry in entries]
        where = (f"while records {in_flight[0].index}..{in_flight[-1].index} were in flight "
                 f"({source.describe(in_flight[0])} ...)") if in_flight else "between chunks"
        raise WorkerError(
            f"a worker process died (killed, or out of memory?) {where}; the dataset was not committed"
        ) from None


def _drain(
    submit: Callable[[], bool],
    pending: deque[tuple[Future[Any] | None, list[Entry], Chunk]],
    window: int,
    ctx: WorkerContext,
    source: ImageSource,
    options: PackOptions,
    writer: ShardWriter,
    skipped: list[Skipped],
    bar: Any,
) -> None:
    """Keep the window full and write finished chunks in list order."""
    more = True
    while True:
        while more and len(pending) < window:
            more = submit()
        if not pending:
            return
        future, entries, chunk = pending[0]
        results = future.result() if future is not None else run_chunk(ctx, chunk)
        pending.popleft()
        done = iter(results)
        for position, item, _, data in entries:
            if isinstance(data, ImgprepError):
                if not isinstance(data, ImageError):
                    raise data  # storage failing (S3 silent, denied...) is not a bad image
                skipped.append(Skipped(item.index, source.describe(item), data.message))
                continue
            framed, reason = next(done)
            if framed is None:
                skipped.append(Skipped(item.index, source.describe(item), reason or "unknown error"))
                if options.strict:
                    return
            else:
                writer.write(framed, item.index, position)
        if bar is not None:
            bar.update(len(entries))


__all__ = ["PackOptions", "PackSummary", "default_workers", "pack", "report_name"]
