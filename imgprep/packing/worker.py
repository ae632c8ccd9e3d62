"""What runs in a worker: a whole chunk of records made at once, in list order.

A worker turns a chunk of items into their framed records, back to back, and each record's
size (:class:`Packed`), so the single writer only appends finished bytes in list order: that
is what makes the output byte-identical for any number of workers and either executor.

With the native core the whole chunk is one C call that reads, transforms, adds the record
header and frames without the GIL (:func:`imgprep.imaging.native.pack_records`): per image
there is no Python, so threads scale with cores.  The items that call leaves to Python
(non-JPEGs, CMYK, bad files, symlinks, in-memory pixels...) and every item on the Pillow path
go through :func:`run_one`, which raises the error naming the image or falls back to Pillow.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imgprep.errors import ImgprepError
from imgprep.formats.checksums import record_crc
from imgprep.formats.imagesize import SizeRange
from imgprep.formats.recordio import pack_header
from imgprep.imaging.native import Batch
from imgprep.imaging.native import frame as frame_record
from imgprep.imaging.spec import TransformSpec
from imgprep.storage.roots import read_inside

if TYPE_CHECKING:
    from imgprep.splits.prints_spool import PrintBlock


@dataclass(frozen=True)
class WorkerContext:
    spec: TransformSpec
    image_path: str  # "native" or "pillow"
    pack_label: bool
    # resolved image root a final symlink must stay inside; None: no local root, or the user's
    # --follow-links-outside-root
    root: str | None = None
    # fingerprint each record's stored image for the duplicate check (prepare --dedup report)
    fingerprint: bool = False


@dataclass(frozen=True)
class Chunk:
    """A batch of records for one worker, stored by column so it pickles cheaply.

    ``paths[i]`` is a local file the worker reads itself; otherwise ``data[i]`` holds the bytes
    or pixels (same-shaped pixel arrays travel as one stacked array).  Names for messages are
    not sent: the parent describes an item only when it is reported.
    """

    indices: list[int]
    labels: list[tuple[float, ...]]
    paths: list[str | None]
    data: Any = None

    def __len__(self) -> int:
        return len(self.indices)


@dataclass(frozen=True)
class Packed:
    """A chunk's records: ``records`` holds the framed records of the items packed, back to back
    in chunk order; ``sizes[i]`` is item i's framed size, 0 when it was skipped, and then
    ``reasons[i]`` says why.  What the writer keeps of each record is made here too, so that its
    one thread does nothing per record: ``crcs[i]``, the CRC-32 of item i's framed record
    (:func:`imgprep.formats.checksums.record_crc`), and ``images``, the sizes of the packed images."""

    records: bytes | memoryview  # a view of the native batch's own buffer: not copied into bytes
    sizes: list[int]
    crcs: array
    images: SizeRange
    reasons: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0  # how long the worker took (the packer sizes chunks by it)
    cpu: float = 0.0  # the worker thread's CPU seconds for it (the packer's executor choice)
    by_python: int = 0  # files or bytes the native batch left to Python (Pillow, one at a time)
    # with ``WorkerContext.fingerprint``: per record packed (size > 0), in order, its stored image's
    # fingerprint row (unreadable when it could not be decoded again)
    prints: PrintBlock | None = None


_CONTEXT: WorkerContext | None = None
_FUNCTIONS: dict[str, Any] = {}


def header_label(labels: tuple[float, ...], pack_label: bool) -> float | tuple[float, ...]:
    """im2rec's rule: labels are packed only with --pack-label and more than one label."""
    if pack_label and len(labels) > 1:
        return labels
    return labels[0] if labels else 0.0


def _functions(ctx: WorkerContext) -> tuple[Any, Any]:
    key = ctx.image_path
    if key not in _FUNCTIONS:
        from imgprep.imaging.transform import select

        chosen = select(prefer_native=key == "native")
        _FUNCTIONS[key] = (chosen.transform_bytes, chosen.transform_pixels)
    return _FUNCTIONS[key]


def die_with_parent(parent: int | None) -> None:
    """Have the kernel SIGKILL this worker when its parent dies (Linux ``PR_SET_PDEATHSIG``), and
    exit now if the parent already died before that was set: a killed packer never leaves
    workers running."""
    import signal

    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def init_process(ctx: WorkerContext, parent: int | None = None) -> None:
    global _CONTEXT
    import signal

    die_with_parent(parent)
    # Ctrl-C reaches the whole process group; the parent alone unwinds and aborts outputs.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A forked worker inherits the parent's SIGTERM-as-Ctrl-C handler; the pool stops its
    # workers with SIGTERM, which must simply end them.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _CONTEXT = ctx
    _functions(ctx)


def run_chunk_in_process(chunk: Chunk) -> Packed:
    if _CONTEXT is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("worker context not initialised")
    packed = run_chunk(_CONTEXT, chunk)
    if isinstance(packed.records, memoryview):  # a view does not pickle: the bytes go back
        packed = dataclasses.replace(packed, records=packed.records.tobytes())
    return packed


def run_one(ctx: WorkerContext, index: int, labels: tuple[float, ...], path: str | None, data: Any) -> bytes:
    """One image's framed record (the path for what the batch leaves to Python)."""
    transform_bytes, transform_pixels = _functions(ctx)
    name = path or f"record {index}"
    if path is not None:
        data = read_inside(path, ctx.root)
    if isinstance(data, bytes | bytearray | memoryview):
        image = transform_bytes(bytes(data), ctx.spec, name)
    else:
        image = transform_pixels(data, ctx.spec, name)
    return frame_record(pack_header(header_label(labels, ctx.pack_label), index), image)


def _one_or_reason(ctx: WorkerContext, chunk: Chunk, i: int) -> tuple[bytes | None, str | None]:
    data = chunk.data
    try:
        item = None if data is None else data[i]
        return run_one(ctx, chunk.indices[i], chunk.labels[i], chunk.paths[i], item), None
    except ImgprepError as exc:
        return None, exc.message
    except MemoryError:
        return None, "out of memory while processing this image"
    except Exception as exc:  # noqa: BLE001 - a decoder bug on one image must not kill its shard
        return None, f"unexpected {type(exc).__name__}: {exc}"


def _batchable(ctx: WorkerContext, chunk: Chunk) -> bool:
    """Whether the chunk can go through the native batch: the core runs (the native image path,
    or pass-through with the core built and on) and every item is a file or bytes."""
    from imgprep.imaging import native

    if not (ctx.image_path == "native" or ctx.spec.pass_through) or not native.available():
        return False
    data = chunk.data
    return data is None or (isinstance(data, list) and all(
        d is None or isinstance(d, bytes | bytearray | memoryview) for d in data))


def run_chunk(ctx: WorkerContext, chunk: Chunk) -> Packed:
    """The chunk's records: one native call where it can, then Python for the items it left."""
    started, cpu = time.perf_counter(), time.thread_time()
    packed = _pack_chunk(ctx, chunk)
    if ctx.fingerprint:
        packed = dataclasses.replace(packed, prints=fingerprints(packed))
    return dataclasses.replace(packed, seconds=time.perf_counter() - started, cpu=time.thread_time() - cpu)


def fingerprints(packed: Packed) -> PrintBlock:
    """The fingerprint of each packed record's stored image: the bytes a reader of the output gets,
    so ``inspect`` of it compares exactly what the duplicate report compared.  One small decode
    per record (at a DCT reduction when large), in the worker that made it: one native call for
    the chunk, Python for what it leaves (other formats, damage) or without the core."""
    from imgprep.imaging.phash import record_rows
    from imgprep.splits.prints_spool import PrintBlock, block_of

    view, at, spans = memoryview(packed.records), 0, []
    for size in packed.sizes:
        if size:
            spans.append(view[at:at + size])
        at += size
    rows = record_rows(packed.records, packed.sizes)
    if rows is not None:
        return block_of(rows, lambda row: _measure_stored(spans[row]))
    block = PrintBlock()
    for span in spans:
        block.add(_measure_stored(span))
    return block


def _measure_stored(record: memoryview) -> Any:
    """``measure`` of a framed record's stored image (None: it cannot be decoded)."""
    from imgprep.errors import ImageError
    from imgprep.formats.recordio import image_header, unframe
    from imgprep.splits.dedup import measure

    payload = unframe(record)
    _, start = image_header(payload)
    try:
        return measure(bytes(payload[start:]))
    except (ImageError, ImgprepError, OSError):
        return None


def _pack_chunk(ctx: WorkerContext, chunk: Chunk) -> Packed:
    if _batchable(ctx, chunk):
        from imgprep.imaging.native import pack_records

        batch = pack_records(ctx.spec, chunk.paths, chunk.data, chunk.indices, chunk.labels, ctx.pack_label,
                             ctx.root is not None)
        left = [i for i, size in enumerate(batch.sizes) if not size]
        if not left:
            return Packed(batch.records, batch.sizes, batch.crcs, batch.images)
        by_python = len(left)
    else:  # the Pillow path, or in-memory pixels (the native path encodes them one at a time in C)
        batch = Batch(b"", [0] * len(chunk), array("I", bytes(4 * len(chunk))), SizeRange())
        left, by_python = list(range(len(chunk))), 0
    packed = _splice(batch, {i: _one_or_reason(ctx, chunk, i) for i in left})
    return dataclasses.replace(packed, by_python=by_python)


def _splice(batch: Batch, done: dict[int, tuple[bytes | None, str | None]]) -> Packed:
    """Put the records made one at a time in their places between the batch's."""
    parts: list[bytes | memoryview] = []
    view = memoryview(batch.records)
    sizes, crcs, images = batch.sizes, batch.crcs, batch.images
    at = 0
    reasons: dict[int, str] = {}
    for i, size in enumerate(sizes):
        if size:
            parts.append(view[at:at + size])
            at += size
            continue
        framed, reason = done[i]
        if framed is None:
            reasons[i] = reason or "unknown error"
        else:
            parts.append(framed)
            sizes[i], crcs[i] = len(framed), record_crc(framed)
            images.note_framed(framed)
    return Packed(b"".join(parts), sizes, crcs, images, reasons)
