"""The packer: a deterministic, bounded, parallel successor of ``im2rec.py``'s rec mode.

Workers (threads where the native core does a chunk's work without the GIL, processes where
Python runs per image) read, decode, resize, encode and frame whole chunks of records; this
process cuts the list into chunks in order, keeps a bounded window of them in flight (so
memory does not grow with the dataset) and appends their records in list order --
byte-identical output for any worker count and executor (:class:`Packer`).  A worker that dies fails the run;
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
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import BrokenExecutor, Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from imgprep import __version__
from imgprep.errors import BadRecordsError, ImageError, ImgprepError, UsageError, WorkerError
from imgprep.formats import typecheck
from imgprep.formats.dataset import DatasetRecord, ListRef
from imgprep.formats.imagesize import SizeRange
from imgprep.formats.lst import LstItem, format_line
from imgprep.formats.prints import prints_name
from imgprep.imaging.spec import TransformSpec
from imgprep.layout.meter import Off, meter
from imgprep.layout.names import output_prefix, record_folder, record_name
from imgprep.layout.progress import OpenShard, Progress
from imgprep.layout.skipped import Skipped, report_name, write_report
from imgprep.packing.classes import Classes, check_labels
from imgprep.packing.classes import find as find_classes
from imgprep.packing.publish import AlreadyComplete, Publisher
from imgprep.packing.shards import ShardWriter
from imgprep.packing.sources import ImageSource, check_source, resolve
from imgprep.packing.worker import Chunk, Packed, WorkerContext, run_chunk, run_chunk_in_process
from imgprep.requirements import require_for
from imgprep.signals import sigterm_as_interrupt
from imgprep.storage.base import Store
from imgprep.storage.probe import check_access

if TYPE_CHECKING:
    from imgprep.imaging.transform import ImagePath
    from imgprep.splits.prints_file import FilePrints
    from imgprep.splits.prints_spool import PrintsSpool

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
    progress: bool | None = None  # None: a bar on a terminal, else lines; True: lines; False: none (layout.meter)
    executor: str = "auto"
    native: bool | None = None  # None: use the native core when built (IMGPREP_NATIVE overrides)
    report: bool = True
    chunk_size: int = 0  # 0: chosen from the list length and worker count
    resume: bool = False  # continue after the last good published shard (see packing.publish)
    checkpoint_bytes: int = 32 << 20  # a shard being written is checkpointed this often
    storage: Store | None = None  # where to read and write: built by the caller (imgprep.pack: Storage())
    # read symlinks that lead outside a local image root (refused by default: storage.roots)
    follow_links_outside_root: bool = False
    # the classes the dataset record states (packing.classes): None = the classes.json beside the list
    num_classes: int | None = None
    class_names: tuple[str, ...] | None = None
    # fingerprint every stored image in the workers and write them as PREFIX.prints, listed in the
    # dataset record (prepare --dedup report/same-split: formats.prints); not on a resumed run
    fingerprint: bool = False
    # instead of fingerprinting: write the rows of this local fingerprint file (in image order, ``id``
    # = record id) in record order (prepare --dedup same-split: the rows its split was decided on)
    fingerprints_from: str | None = None

    def __post_init__(self) -> None:
        self.num_workers = typecheck.integer("num_workers", self.num_workers, optional=True)
        self.num_classes = typecheck.integer("num_classes", self.num_classes, optional=True)
        if self.num_classes is not None and self.num_classes < 1:
            raise UsageError(f"--num-classes must be at least 1, got {self.num_classes}")
        if self.class_names is not None:
            self.class_names = tuple(str(name) for name in self.class_names)
        for name in ("shard_records", "shard_size", "chunk_size", "checkpoint_bytes"):
            setattr(self, name, typecheck.integer(name, getattr(self, name)))
        for name in ("strict", "pack_label", "quiet", "report", "resume", "follow_links_outside_root",
                     "fingerprint"):
            typecheck.flag(name, getattr(self, name))
        if self.fingerprints_from is not None:
            typecheck.text("fingerprints_from", self.fingerprints_from)
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
    # smallest packed width/height, from each record's image header (unknown when resumed)
    sizes: SizeRange = field(default_factory=SizeRange)
    # CPU time of the thread that cut the list into chunks and appended the records: the serial
    # part of the run (workers and hashing run beside it).
    serial_cpu: float = 0.0
    already_complete: bool = False  # --resume found the output whole: nothing was packed

    @property
    def images_per_second(self) -> float:
        done = self.records + self.skipped
        return done / self.seconds if self.seconds > 0 else 0.0

    def format(self) -> str:
        if self.already_complete:
            return "\n".join([f"already complete: {self.dataset} names {self.records} records ({self.skipped} "
                              f"skipped, {self.bytes:,} bytes); nothing to resume", *(f"  {u}" for u in self.outputs)])
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
    if method == "forkserver" and _forkserver_reimports_main():
        print("imgprep: worker processes start through forkserver here (this process runs threads), which "
              "imports your script again in each worker: keep the call under `if __name__ == \"__main__\":`, "
              "or use executor=\"thread\"", file=sys.stderr)
    context = multiprocessing.get_context(method)
    # A worker dies with the process that started it: this one, or the forkserver, which itself
    # exits when this process is gone.
    parent = os.getpid() if method == "fork" else None
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=init_process,
                               initargs=(ctx, parent))


def _forkserver_reimports_main() -> bool:
    """Whether this process runs threads (so workers would start through forkserver) and its
    main module — which each forkserver worker imports again
    (``multiprocessing.spawn.get_preparation_data``) — has no ``if __name__ == "__main__":``
    guard, so its top level would run once more per worker.  Console scripts (imgprep's, pytest's)
    and ``python -m`` packages guard themselves; an interactive session or notebook has no main
    file to import."""
    if threading.active_count() == 1 and sys.platform == "linux":
        return False
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if not path:
        return False
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            source = fh.read(1 << 20)
    except OSError:
        return False
    return _MAIN_GUARD.search(source) is None


_MAIN_GUARD = re.compile(r"""__name__\s*==\s*['"]__main__['"]|['"]__main__['"]\s*==\s*__name__""")


def _progress(total: int, options: PackOptions, prefix: str = "") -> Off:
    # labelled with the output's name: prepare packs one split after another
    label = f"pack {os.path.basename(prefix)}" if prefix else "pack"
    return meter(label, total, "img", quiet=options.quiet, progress=options.progress)


def _nbytes(data: Any) -> int:
    return len(data) if isinstance(data, bytes | bytearray | memoryview) else int(getattr(data, "nbytes", 0))


def pack(
    items: Collection[LstItem],
    source: str | os.PathLike[str] | ImageSource,
    output: str,
    spec: TransformSpec | None = None,
    options: PackOptions | None = None,
    *,
    storage: Store | None = None,
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
    storage = storage or options.storage  # PackOptions.storage: the API's older way to give it
    if storage is None:
        raise UsageError("no Store to write through: pack(..., storage=imgprep.Storage())")
    clients = storage.clients(output) + (storage.clients(source, images=True) if isinstance(source, str) else ())
    require_for(clients, decode=not spec.pass_through)
    from imgprep.imaging.transform import select

    chosen = select(options.native)
    image_path = chosen.name if not spec.pass_through else "pass-through"
    prefix = output_prefix(output)
    classes = find_classes(items, options.num_classes, options.class_names, storage)
    check_labels(items, classes, _label_width(items, options))  # the list alone: before any image is read
    publisher = Publisher(prefix, _skeleton(items, spec, options, image_path, classes), storage,
                          before_retiring=before_publish)
    # Whatever can be checked is checked before the output is touched (invariant 5 of
    # packing.publish): names, the image root, under the lock the first images; the old
    # generation is retired only when the first shard is ready.
    publisher.files.check_names()
    image_source = resolve(source, storage, follow_outside=options.follow_links_outside_root)
    try:
        # SIGTERM unwinds like Ctrl-C from here on, taking the lock included (it may hang on S3).
        with sigterm_as_interrupt():
            # S3 credentials, bucket and write permission: one line naming the output, before the lock
            check_access(storage, writes=[prefix], images=[source])
            try:
                progress = publisher.begin(options.resume)  # the lock, and where to start: nothing removed
            except AlreadyComplete as done:
                return dataclasses.replace(_summary_of(done.record, prefix, image_path), already_complete=True)
            try:
                check_source(items, image_source)
                return Packer(items, image_source, spec, options, chosen, publisher).run(progress, prefix, storage)
            finally:
                publisher.end()
    finally:
        image_source.close()


def _label_width(items: Collection[LstItem], options: PackOptions) -> int:
    first = next(iter(items))
    return len(first.labels) if options.pack_label and len(first.labels) > 1 else 1


def _skeleton(items: Collection[LstItem], spec: TransformSpec, options: PackOptions, image_path: str,
              classes: Classes) -> DatasetRecord:
    """The dataset record of this run before any shard: what ``--resume`` compares."""
    ref = list_ref(items)
    settings = {**dataclasses.asdict(spec), "pack_label": options.pack_label, "image_path": image_path,
                "shard_records": options.shard_records, "shard_size": options.shard_size}
    return DatasetRecord(__version__, ref, (), json.loads(json.dumps(settings)),
                         label_width=_label_width(items, options), num_classes=classes.number,
                         num_classes_unknown=classes.unknown, class_names=classes.names)


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


class Packer:
    """One pack run, from its published progress to its summary: the pipeline of a pack.

    The list is read in order and cut into chunks; workers (threads or processes) turn a whole
    chunk into framed records (:func:`imgprep.packing.worker.run_chunk`: one native call per
    chunk where it can); this thread keeps at most ``window`` chunks in flight, so memory does
    not grow with the dataset, and appends each chunk's records in list order.  What it does
    per image is the serial part of a pack -- list item, path check, index line -- a few
    microseconds; hashing runs on a thread of its own (:mod:`imgprep.packing.shards`).
    """

    def __init__(self, items: Collection[LstItem], source: ImageSource, spec: TransformSpec, options: PackOptions,
                 chosen: ImagePath, publisher: Publisher) -> None:
        self.items, self.source, self.options, self.publisher = items, source, options, publisher
        self.spec, self.chosen = spec, chosen
        self.workers = options.num_workers or default_workers()
        self.kind = choose_executor(options.executor, self.workers, spec, chosen)
        guard = getattr(source, "guard", None)
        self.ctx = WorkerContext(spec, chosen.name, options.pack_label, guard.read_root if guard is not None else None,
                                 fingerprint=options.fingerprint)
        self.spool: PrintsSpool | None = None
        self.rows_from: FilePrints | None = None  # options.fingerprints_from, opened
        self.skipped: list[Skipped] = []  # bad images are few; the progress file repeats them per shard
        self.pending: deque[_InFlight] = deque()
        self.executor: Executor | None = None
        self.bar: Off = Off()
        self.writer: ShardWriter | None = None
        self.sizes = SizeRange()  # smallest packed width and height (prepare's image_shape)
        self.cutter: _Cutter | None = None
        self._sizer = _ChunkSizer(len(items), self.workers, options.chunk_size)
        self._trial = 0  # chunks this thread still makes before the pool is judged (_judge)

    @property
    def window(self) -> int:
        """Chunks in flight: enough to keep every worker busy while the oldest is awaited."""
        return self.workers * 4

    def run(self, progress: Progress, prefix: str, storage: Store) -> PackSummary:
        """Pack what ``progress`` leaves to do; publish the dataset record; return the summary."""
        writer, start = self._open_writer(progress, prefix, storage)
        given = self.options.fingerprints_from
        if (self.ctx.fingerprint or given) and not (start or writer.records):  # not an earlier run's records
            from imgprep.splits.prints_file import local_prints  # numpy: only a pack that fingerprints pays for it
            from imgprep.splits.prints_spool import PrintsSpool

            self.spool = PrintsSpool()
            self.rows_from = local_prints(given, storage) if given else None
        if self.spool is None or given:
            self.ctx = dataclasses.replace(self.ctx, fingerprint=False)
        self.bar = _progress(len(self.items), self.options, prefix)
        if start:
            self.bar.resume_at(start)
        started, cpu = time.perf_counter(), time.thread_time()
        failed = True
        try:
            self.cutter = _Cutter(self.items, start, self.source)
            self._probe()
            if not self._trial:
                self.executor = _make_executor(self.kind, self.workers, self.ctx)
            self._feed()
            if self._trial:  # the list ended before the pool was judged: every chunk was made here
                self.kind, self.workers = "inline", 1
            record, report = self._finish(writer, storage, prefix)
            failed = False
        except BaseException:
            writer.abort()
            with contextlib.suppress(ImgprepError, OSError):
                self.publisher.remove_temporaries()
            raise
        finally:
            if self.executor is not None:
                self.executor.shutdown(wait=True, cancel_futures=True)
            self.bar.close(failed=failed)
            if self.spool is not None:
                self.spool.close()
        summary = _summary_of(record, prefix, self.chosen_name)
        summary.seconds = time.perf_counter() - started
        summary.serial_cpu = time.thread_time() - cpu
        summary.report, summary.workers, summary.executor = report, self.workers, self.kind
        summary.skipped_items = self.skipped
        summary.sizes = self.sizes
        return summary

    @property
    def chosen_name(self) -> str:
        return "pass-through" if self.spec.pass_through else self.chosen.name

    def _open_writer(self, progress: Progress, prefix: str, storage: Store) -> tuple[ShardWriter, int]:
        """The shard writer, continuing what ``progress`` published (and the open shard's checkpoint)."""
        skipped, publisher, options = self.skipped, self.publisher, self.options

        def publish(rec: Any, idx: Any, entry: Any, consumed: int, crcs: Any) -> None:
            publisher.publish(rec, idx, entry, consumed, skipped, crcs)

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
        self.sizes.unknown += writer.records  # records an earlier run wrote: their sizes are not seen
        skipped.extend(progress.skipped)
        self.writer = writer
        return writer, start

    def _finish(self, writer: ShardWriter, storage: Store, prefix: str) -> tuple[DatasetRecord, str | None]:
        skipped = self.skipped
        if skipped and self.options.strict:
            first = skipped[0]
            raise BadRecordsError(
                f"{first.reason} (record {first.index}; --strict stops at the first bad image, "
                "the dataset was not committed)",
                path=first.path,
            )
        if writer.records == 0:
            first = skipped[0]
            raise ImgprepError(
                f"no records written: all {len(self.items)} images were skipped (first: {first.path}: {first.reason})"
            )
        writer.close(len(self.items))
        report = write_report(storage, prefix, skipped) if self.options.report else None
        prints = self.spool.publish(storage, prints_name(prefix)) if self.spool is not None else None
        return self.publisher.finish(len(skipped), fingerprints=prints), report

    def _probe(self) -> None:
        """``--executor auto`` measured on the images themselves: the run's first chunks are made
        here, before the pool starts, and when the native batch left most of them to Python one
        image at a time (PNGs, CMYK JPEGs: Pillow, holding the GIL), the run takes processes
        instead of threads; when a pool cannot make the run faster (:func:`worth_sharing`),
        it takes none: this thread makes every chunk, as with one worker.  Deciding before the
        pool starts keeps the fork of a process pool safe: the probe's threads are joined first.
        It costs little: a few images per worker, made on every worker's core at once (one chunk
        made alone kept the other cores waiting)."""
        if self.kind != "thread" or self.options.executor != "auto":
            return
        if self.cutter is None:  # run() makes it first
            raise RuntimeError("imgprep bug: a chunk cut before the list was opened")
        cuts: list[_Cut] = []
        while len(cuts) < self.workers and (cut := self.cutter.cut(min(self._sizer.limit(), CHUNK_PROBE))):
            cuts.append(cut)
        if not cuts:
            return
        chunks = [_make_chunk(cut, self.source) for cut in cuts]
        made = _beside(self.ctx, chunks)
        for cut, chunk, packed in zip(cuts, chunks, made, strict=True):
            self.pending.append(_InFlight(None, cut, chunk, packed))
        by_python, items = sum(p.by_python for p in made), sum(len(c) for c in chunks)
        if 2 * by_python > items and not _daemonic() and not _forkserver_reimports_main():
            self.kind = "process"
        elif not worth_sharing(sum(p.cpu for p in made), _hashing_cpu(made), self._cores(), SHARE_SURE):
            # A first call's costs (imports, buffers growing, cold pages) weigh on chunks this
            # small, and the writer's part is not measured yet: only a clear case is decided
            # here, the others on warm chunks made and written on this thread (_judge).
            self._trial = TRIAL_CHUNKS

    def _feed(self) -> None:
        """Keep the window full and append finished chunks in list order."""
        try:
            more = True
            while True:
                while more and len(self.pending) < self.window:
                    more = self._submit()
                if not self.pending:
                    return
                if self._append(self.pending[0]):
                    return  # --strict: the first bad image ends the run
                self.pending.popleft()
        except BrokenExecutor:
            # BrokenProcessPool, raised by result() or by the next submit(), whichever sees the dead
            # worker first.  (A thread pool breaks only when an initializer fails; it has none.)
            in_flight = [item for flight in self.pending for item in flight.cut.items]
            where = (f"while records {in_flight[0].index}..{in_flight[-1].index} were in flight "
                     f"({self.source.describe(in_flight[0])} ...)") if in_flight else "between chunks"
            raise WorkerError(
                f"a worker process died (killed, or out of memory?) {where}; the dataset was not committed"
            ) from None

    def _submit(self) -> bool:
        """Cut the next chunk from the list and hand it to a worker; False at the end of the list."""
        cut = self._cut()
        if cut is None:
            return False
        chunk = _make_chunk(cut, self.source)
        future = None
        if self.executor is not None and len(chunk):
            if isinstance(self.executor, ThreadPoolExecutor):
                future = self.executor.submit(run_chunk, self.ctx, chunk)
            else:
                future = self.executor.submit(run_chunk_in_process, chunk)
        self.pending.append(_InFlight(future, cut, chunk))
        return True

    def _cut(self) -> _Cut | None:
        if self.cutter is None:  # run() makes it first
            raise RuntimeError("imgprep bug: a chunk cut before the list was opened")
        return self.cutter.cut(self._sizer.limit(len(self.items) - self.cutter.position))

    def _append(self, flight: _InFlight) -> bool:
        """Write one finished chunk's records in list order and report its skipped images; True
        when ``--strict`` must stop at one.  Records between skipped images go out in one write."""
        packed = flight.done or (flight.future.result() if flight.future is not None
                                 else run_chunk(self.ctx, flight.chunk))
        trial, writing = self._trial and flight.done is None and bool(packed.records), time.thread_time()
        self._sizer.learn(len(flight.chunk), len(packed.records), packed.seconds)
        writer = self.writer
        if writer is None:  # run() opens it first
            raise RuntimeError("imgprep bug: records appended before the writer was opened")
        self.sizes.add(packed.images)
        cut, keys = flight.cut, flight.chunk.indices
        if self.spool is not None:
            self._add_prints(keys, packed)
        if cut.data is None and not packed.reasons:  # every item a local file, none skipped: one run
            writer.write(packed.records, packed.sizes, keys, cut.start, packed.crcs)
        elif self._append_around_skipped(writer, cut, keys, packed):
            return True
        if trial:
            self._judge(packed, time.thread_time() - writing)
        self.bar.update(len(cut.items))
        return False

    def _cores(self) -> int:
        """Cores this run's threads may use: its workers and the digest thread, at most the CPUs
        this process may run on."""
        return min(self.workers + 1, default_workers())

    def _judge(self, packed: Packed, writing_cpu: float) -> None:
        """Count a chunk made on this thread while the pool waits (``--executor auto`` where the
        probe left it unsure); on the last of them, warm, decide: worker threads for the rest of
        the run, or none (:func:`worth_sharing`) -- this thread makes every chunk, as with one
        worker, where a pool could not make the run faster than that."""
        self._trial -= 1
        if self._trial:
            return
        if worth_sharing(packed.cpu + writing_cpu, _hashing_cpu([packed]), self._cores()):
            self.executor = _make_executor(self.kind, self.workers, self.ctx)
            # cut while the trial ran (the first is the one being written): handed to the pool now
            for flight in itertools.islice(self.pending, 1, None):
                if flight.future is None and flight.done is None and len(flight.chunk):
                    flight.future = self.executor.submit(run_chunk, self.ctx, flight.chunk)
            return
        self.kind, self.workers = "inline", 1
        self._sizer.workers, self._sizer.spread = 1, max(1, len(self.items) // 8)

    def _add_prints(self, keys: list[int], packed: Packed) -> None:
        """The fingerprint rows of the chunk's records written, in record order."""
        if self.spool is None:
            return
        written = [key for key, size in zip(keys, packed.sizes, strict=True) if size]
        if self.rows_from is not None:
            import numpy as np

            from imgprep.splits.prints_file import pick

            ids = np.asarray(written, np.int64)
            self.spool.add_columns(pick([self.rows_from], np.zeros(len(ids), np.int64), ids), len(ids))
        elif packed.prints is None:  # the context asked for them: cannot happen, fail loudly
            raise RuntimeError("imgprep bug: a chunk came back without its fingerprints")
        else:
            self.spool.add_rows(packed.prints, written)

    def _append_around_skipped(self, writer: ShardWriter, cut: _Cut, keys: list[int], packed: Packed) -> bool:
        """Write the runs of records between skipped images and report those; True when
        ``--strict`` must stop at one."""
        sizes, crcs, view = packed.sizes, packed.crcs, memoryview(packed.records)
        k = first = 0  # next record of the chunk (items that were fetched), first one not yet written
        at = begin = 0  # their byte offsets in the chunk's records
        position = -1  # list position of record `first`
        for offset, item in enumerate(cut.items):
            data = None if cut.data is None else cut.data[offset]
            failure = data if isinstance(data, ImgprepError) else None
            if failure is None and sizes[k]:
                if k == first:
                    position = cut.start + offset
                at += sizes[k]
                k += 1
                continue
            if k > first:
                writer.write(view[begin:at], sizes[first:k], keys[first:k], position, crcs[first:k])
            if failure is not None and not isinstance(failure, ImageError):
                raise failure  # storage failing (S3 silent, denied...) is not a bad image
            reason = failure.message if failure is not None else packed.reasons.get(k, "unknown error")
            self.skipped.append(Skipped(item.index, self.source.describe(item), reason))
            if failure is None:
                k += 1
                if self.options.strict:
                    return True
            first, begin = k, at
        if k > first:
            writer.write(view[begin:at], sizes[first:k], keys[first:k], position, crcs[first:k])
        return False


def choose_executor(requested: str, workers: int, spec: TransformSpec, chosen: ImagePath) -> str:
    """The worker kind: ``inline`` for one worker, else ``requested`` unless it is ``auto``
    (and threads in a daemonic process, which may not start processes).

    ``auto`` picks threads where the native core does a chunk's work without the GIL (the
    native path, and pass-through with the core built), processes where Python runs per image
    (the Pillow path): threads share one GIL, so only GIL-free work scales on them, while
    processes cost a pickled copy of every record back to this one.  Whether the images are
    ones the native core takes is measured on the first chunk (:meth:`Packer._probe`).
    """
    if workers == 1:
        return "inline"
    kind = requested
    if requested == "auto":
        from imgprep.imaging import native

        kind = ("thread" if native.available() else "process") if spec.pass_through else chosen.preferred_executor
    if kind == "process" and (_daemonic() or (requested == "auto" and _forkserver_reimports_main())):
        # A daemonic process may not start processes; and worker processes that would start
        # through forkserver import the caller's script again (running its unguarded top level
        # a second time): threads give the same bytes.
        return "thread"
    return kind


SHARE_GAIN = 1.15  # the least speed-up (by the model in worth_sharing) for which a pool is started
SHARE_SURE = 1.5  # the same on the probe's first, cold chunks (the writer's part not yet measured)
TRIAL_CHUNKS = 4  # chunks made on the writer's thread before judging: the first ones run cold (new buffers)


def worth_sharing(making_cpu: float, hashing_cpu: float, cores: int, least: float = SHARE_GAIN) -> bool:
    """Whether worker threads can make the run at least ``least`` times faster than making every
    chunk on the writer's thread, from the CPU seconds of the same records: ``making_cpu`` to read,
    transform, frame and write them, ``hashing_cpu`` to hash them (SHA-256, sequential, on the
    digest thread in both cases), ``cores`` the cores the run's threads may use.

    Without a pool the writer's thread takes ``making_cpu`` and the digest thread beside it
    ``hashing_cpu``: the slower of the two sets the pace.  With one, the making spreads over the
    cores, but the hash stays one thread and everything shares ``cores``.  Where the hash alone
    takes about as long as the rest (a pass-through of large files without SHA instructions) or
    no second core is there (``-j 2`` pinned to one), a pool cannot help and only adds hand-overs
    between threads (futures, wake-ups, the GIL, records crossing cores): ``-j 2`` ran slower than
    ``-j 1``.  ``hashing_cpu`` of 0 (no records, a coarse clock): as asked, a pool."""
    if not hashing_cpu > 0:
        return True
    alone = max(making_cpu, hashing_cpu)
    shared = max(hashing_cpu, (making_cpu + hashing_cpu) / max(cores, 1))
    return alone >= least * shared


def _hashing_cpu(made: list[Packed]) -> float:
    """This thread's CPU seconds for a SHA-256 of the probe's records (what the digest thread
    will spend on them)."""
    hashlib.sha256(b"").digest()  # the first use of a digest costs more than one record's hash
    started = time.thread_time()
    for packed in made:
        hashlib.sha256(packed.records).digest()
    return time.thread_time() - started


def _beside(ctx: WorkerContext, chunks: list[Chunk]) -> list[Packed]:
    """Each chunk made on a thread of its own (the first on this one), all joined before return."""
    made: list[Packed | BaseException | None] = [None] * len(chunks)

    def make(k: int) -> None:
        try:
            made[k] = run_chunk(ctx, chunks[k])
        except BaseException as exc:  # noqa: BLE001 - raised on the calling thread below
            made[k] = exc

    threads = [threading.Thread(target=make, args=(k,), name=f"imgprep-probe-{k}", daemon=True)
               for k in range(1, len(chunks))]
    for thread in threads:
        thread.start()
    try:
        make(0)
    finally:
        for thread in threads:
            thread.join()
    for packed in made:
        if isinstance(packed, BaseException):
            raise packed
    return made  # type: ignore[return-value]


class _Cut(NamedTuple):
    """Consecutive list items cut for one worker, by column."""

    start: int  # the first item's place in the list
    items: list[LstItem]
    paths: list[str | None]  # local files the worker reads itself; None: ``data`` holds the image
    # None: every item is a local file.  Else each item's fetched bytes or pixels, None (a local
    # file), _DEFERRED (fetched with the whole chunk) or the ImgprepError that fetching raised.
    data: list[Any] | None


@dataclass
class _InFlight:
    """A chunk handed to a worker (``future`` None: run inline when its turn comes)."""

    future: Future[Packed] | None
    cut: _Cut
    chunk: Chunk
    done: Packed | None = None  # made before the pool started (the first chunk, when probed)


_DEFERRED = object()  # data a batched source fetches a whole chunk at a time (``fetch_many``)


class _Cutter:
    """The list from position ``start``, cut into runs of items in order.

    Items with a local file are only named (workers read them); the data of the others is
    fetched here, ahead of the workers (an S3 source downloads concurrently in ``iter_fetch``;
    an in-memory source hands over whole chunks in ``fetch_many``), and a cut of fetched data
    ends at :data:`CHUNK_INPUT` bytes.  The list is read lazily, twice in step when some items
    are fetched: nothing is held per item but the cut being made.
    """

    def __init__(self, items: Collection[LstItem], start: int, source: ImageSource) -> None:
        self.items, self.source = items, source
        self.listed = itertools.islice(items, start, None)
        self.position = start
        self.carried: deque[LstItem] = deque()  # read but not taken: after a cut ended on its input size
        self.fetched: Iterator[Any] | None = None

    def cut(self, limit: int) -> _Cut | None:
        """The next run of at most ``limit`` items; None at the end of the list."""
        items = [self.carried.popleft() for _ in range(min(limit, len(self.carried)))]
        items += itertools.islice(self.listed, limit - len(items))
        if not items:
            return None
        paths = self.source.local_paths(items)
        if None not in paths:
            return self._taken(items, paths, None)
        data: list[Any] = []
        in_memory = 0
        for path in paths:
            if path is not None:
                data.append(None)
                continue
            data.append(_DEFERRED if self.source.batched else next(self._fetch()))
            in_memory += _nbytes(data[-1])
            if in_memory >= CHUNK_INPUT:
                break
        self.carried.extendleft(reversed(items[len(data):]))
        return self._taken(items[:len(data)], paths[:len(data)], data)

    def _taken(self, items: list[LstItem], paths: list[str | None], data: list[Any] | None) -> _Cut:
        cut = _Cut(self.position, items, paths, data)
        self.position += len(items)
        return cut

    def _fetch(self) -> Iterator[Any]:
        if self.fetched is None:
            start, source = self.position, self.source
            remote = (item for item in itertools.islice(self.items, start, None) if source.local_path(item) is None)
            self.fetched = source.iter_fetch(remote)
        return self.fetched


def _make_chunk(cut: _Cut, source: ImageSource) -> Chunk:
    items, paths = cut.items, cut.paths
    if cut.data is None:
        return Chunk([item.index for item in items], [item.labels for item in items], paths, None)
    ready = [k for k, d in enumerate(cut.data) if not isinstance(d, ImgprepError)]
    data: Any = [cut.data[k] for k in ready]
    if any(d is _DEFERRED for d in data):
        data = source.fetch_many([items[k] for k in ready])
    elif any(paths[k] is None for k in ready):
        first = data[0]
        shape = getattr(first, "shape", None)
        if shape is not None and all(getattr(d, "shape", None) == shape and d.dtype == first.dtype for d in data):
            import numpy as np

            data = np.stack(data)  # one buffer instead of many small pickles
    else:
        data = None
    return Chunk([items[k].index for k in ready], [items[k].labels for k in ready], [paths[k] for k in ready], data)


CHUNK_RECORDS = 256  # most items per chunk: beyond this a chunk's Python costs nothing per image
CHUNK_FIRST = 16  # items per chunk until the size of records is known
CHUNK_PROBE = 4  # items per worker --executor auto packs before the pool starts (Packer._probe)
CHUNK_BYTES = 1 << 20  # records per chunk aimed at: bounds the window's memory (window x this)
CHUNK_SECONDS = 0.2  # work per chunk aimed at: a chunk in C cannot be interrupted (Ctrl-C, SIGTERM)
# cap on in-memory input bytes per chunk (fetched files, arrays): the window holds window x this
# besides its records, so a pack reading s3:// keeps to a local pack's memory plus its client
CHUNK_INPUT = 512 << 10


class _ChunkSizer:
    """How many items the next chunk takes.

    A chunk is one future and one worker call: per image that overhead must be small next to a
    small image's C work (a 64x48 thumbnail costs tens of microseconds), so chunks are large.
    But a chunk's records are held until written, and a native call runs to its end before a
    worker sees Ctrl-C: once chunks came back, they are sized to about ``CHUNK_BYTES`` of records
    (a few phone photos passed through, hundreds of thumbnails) and ``CHUNK_SECONDS`` of a
    worker's time (a dozen 12 MP photos shrunk to thumbnails), and to at least ~8 chunks per
    worker so that short lists still spread over every worker.
    """

    def __init__(self, total: int, workers: int, requested: int) -> None:
        self.requested, self.workers = requested, workers
        self.spread = max(1, total // (workers * 8))
        self.items = self.bytes = 0
        self.seconds = 0.0

    def learn(self, items: int, records_bytes: int, seconds: float) -> None:
        self.items += items
        self.bytes += records_bytes
        self.seconds += seconds

    def limit(self, remaining: int | None = None) -> int:
        """Items for the next chunk; ``remaining``: items left in the list, so that the last
        chunks shrink and no worker sits idle while another finishes a long one."""
        if self.requested:
            return self.requested
        if remaining is not None:
            return min(self._limit(), max(1, remaining // (2 * self.workers)))
        return self._limit()

    def _limit(self) -> int:
        if not self.items:
            limit = CHUNK_FIRST
        else:
            by_bytes = CHUNK_BYTES * self.items // max(1, self.bytes)
            by_time = int(CHUNK_SECONDS * self.items / self.seconds) if self.seconds > 0 else CHUNK_RECORDS
            limit = max(1, min(CHUNK_RECORDS, by_bytes, by_time))
        return min(limit, self.spread)


__all__ = ["PackOptions", "PackSummary", "Packer", "default_workers", "pack", "report_name"]
