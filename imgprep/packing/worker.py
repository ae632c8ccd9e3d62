"""What runs in a worker: read (if local), transform, add the record header, frame.

Workers return framed records, so the single writer only concatenates bytes in list order;
that is what makes the output byte-identical for any number of workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imgprep.errors import ImageError, ImgprepError
from imgprep.formats.recordio import frame, pack_header
from imgprep.imaging.spec import TransformSpec


@dataclass(frozen=True)
class WorkerContext:
    spec: TransformSpec
    image_path: str  # "native" or "pillow"
    pack_label: bool


@dataclass(frozen=True)
class Task:
    position: int
    index: int
    labels: tuple[float, ...]
    name: str  # for error messages
    path: str | None  # local file the worker reads itself
    data: Any = None  # bytes or a pixel array when there is no local file


# (position, framed record or None, reason when skipped)
Result = tuple[int, bytes | None, str | None]

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


def init_process(ctx: WorkerContext) -> None:
    global _CONTEXT
    import signal

    # Ctrl-C reaches the whole process group; the parent alone unwinds and aborts outputs.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _CONTEXT = ctx
    _functions(ctx)


def run_chunk_in_process(tasks: list[Task]) -> list[Result]:
    if _CONTEXT is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("worker context not initialised")
    return run_chunk(_CONTEXT, tasks)


def run_one(ctx: WorkerContext, task: Task) -> bytes:
    transform_bytes, transform_pixels = _functions(ctx)
    data = task.data
    if task.path is not None:
        try:
            with open(task.path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise ImageError(f"cannot read ({exc.strerror})", path=task.name) from None
    if isinstance(data, bytes | bytearray | memoryview):
        image = transform_bytes(bytes(data), ctx.spec, task.name)
    else:
        image = transform_pixels(data, ctx.spec, task.name)
    return frame(pack_header(header_label(task.labels, ctx.pack_label), task.index) + image)


def run_chunk(ctx: WorkerContext, tasks: list[Task]) -> list[Result]:
    results: list[Result] = []
    for task in tasks:
        try:
            results.append((task.position, run_one(ctx, task), None))
        except ImgprepError as exc:
            results.append((task.position, None, exc.message))
        except MemoryError:
            results.append((task.position, None, "out of memory while processing this image"))
        except Exception as exc:  # noqa: BLE001 - a decoder bug on one image must not kill its shard
            results.append((task.position, None, f"unexpected {type(exc).__name__}: {exc}"))
    return results
