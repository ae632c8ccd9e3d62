"""What runs in a worker: read (if local), transform, add the record header, frame.

Workers return framed records, so the single writer only concatenates bytes in list order;
that is what makes the output byte-identical for any number of workers.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from imgprep.errors import ImgprepError
from imgprep.formats.recordio import pack_header
from imgprep.imaging.native import frame as frame_record
from imgprep.imaging.spec import TransformSpec
from imgprep.storage.roots import read_inside


@dataclass(frozen=True)
class WorkerContext:
    spec: TransformSpec
    image_path: str  # "native" or "pillow"
    pack_label: bool
    root: str | None = None  # resolved image root: a file that is a symlink must stay inside it


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


# One per record, in order: (framed record, None) or (None, reason it was skipped).
Result = tuple[bytes | None, str | None]

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


def run_chunk_in_process(chunk: Chunk) -> list[Result]:
    if _CONTEXT is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("worker context not initialised")
    return run_chunk(_CONTEXT, chunk)


def run_one(ctx: WorkerContext, index: int, labels: tuple[float, ...], path: str | None, data: Any) -> bytes:
    transform_bytes, transform_pixels = _functions(ctx)
    name = path or f"record {index}"
    if path is not None:
        data = read_inside(path, ctx.root)
    if isinstance(data, bytes | bytearray | memoryview):
        image = transform_bytes(bytes(data), ctx.spec, name)
    else:
        image = transform_pixels(data, ctx.spec, name)
    return frame_record(pack_header(header_label(labels, ctx.pack_label), index), image)


def run_chunk(ctx: WorkerContext, chunk: Chunk) -> list[Result]:
    results: list[Result] = []
    data = chunk.data
    for i, index in enumerate(chunk.indices):
        try:
            item = None if data is None else data[i]
            results.append((run_one(ctx, index, chunk.labels[i], chunk.paths[i], item), None))
        except ImgprepError as exc:
            results.append((None, exc.message))
        except MemoryError:
            results.append((None, "out of memory while processing this image"))
        except Exception as exc:  # noqa: BLE001 - a decoder bug on one image must not kill its shard
            results.append((None, f"unexpected {type(exc).__name__}: {exc}"))
    return results
