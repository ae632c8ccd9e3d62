"""The native JPEG fast path: ``imgprep._native`` (C on libjpeg-turbo's TurboJPEG API).

JPEG in, JPEG out: decode with DCT-domain scaling straight to YCbCr planes, apply the EXIF
orientation, crop and resample each plane with Pillow's BILINEAR convolution (chroma at its
subsampled size), pad, and encode 4:2:0 from the planes.  It follows the same
:func:`imgprep.imaging.geometry.plan` as the Pillow path, so output sizes are identical and
pixels agree to well above 40 dB PSNR at q95.

Anything else goes to :func:`imgprep.imaging.pillow.transform_bytes`, one image at a time:
non-JPEG input, PNG output, pass-through, CMYK/YCCK/RGB JPEGs, subsamplings TurboJPEG 2.1 cannot
name, and images on which libjpeg only *warns* (Pillow tolerates some warnings and reports
truncation itself, so it decides).  Corrupt JPEGs raise :class:`ImageError` directly.

``IMGPREP_NATIVE`` (a documented user switch, read here and nowhere else, see :func:`switch`):
``0``/``false``/``no``/``off`` turns the native path off (the Pillow path runs); ``1``/``true``/
``yes``/``on`` requires it (a run fails if it cannot run); unset or anything else: native when built.
"""

from __future__ import annotations

import itertools
import os
from array import array
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from imgprep.errors import ImageError
from imgprep.formats import recordio
from imgprep.formats.imagesize import SizeRange
from imgprep.imaging.geometry import check_pixels, dct_scale, plan
from imgprep.imaging.passthrough import check_passthrough

if TYPE_CHECKING:
    from imgprep.imaging.spec import TransformSpec

try:
    from imgprep import _native
except ImportError as exc:  # not built: no libturbojpeg headers, or IMGPREP_NO_NATIVE at build time
    _native = None
    _IMPORT_ERROR: str | None = str(exc)
else:
    _IMPORT_ERROR = None

ENV_SWITCH = "IMGPREP_NATIVE"

# Pool kind for the packer when the native path is active: threads.  The C code releases the GIL
# for all pixel work, so threads scale, and they save what processes cost: pickling every record
# back to the parent, forking, a copy of the interpreter per worker.  What threads give up: a
# crash in C would take the whole run down instead of one worker (the core is fuzzed and run
# under ASan/UBSan in `make test`); `--executor process` (PackOptions.executor) remains.
PREFERRED_EXECUTOR = "thread"

# Free heap glibc keeps per malloc arena (M_TOP_PAD) in a packing process, with blocks under
# 32 MiB served from the heap (M_MMAP_THRESHOLD, which glibc stops adapting once anything is set):
# every transform allocates and frees a few hundred KB, and without this the heap shrinks and
# regrows around each image, paying page faults every time.  Setting only the pad would make
# every large photo an mmap of its own: both are needed.  Process-wide, so only the imgprep CLI
# and the Processing entrypoint set it.
HEAP_PAD = 16 << 20


def keep_heap() -> bool:
    """Tune this process's allocator for packing (see ``HEAP_PAD``); False where it cannot."""
    return _native is not None and bool(_native.keep_heap(HEAP_PAD))


_JPEG_SOI = b"\xff\xd8\xff"


_OFF = ("0", "false", "no", "off")
_ON = ("1", "true", "yes", "on")


def switch() -> bool | None:
    """``IMGPREP_NATIVE``: False when switched off, True when required, None when unset (or any
    other word): the one place the switch is read."""
    word = os.environ.get(ENV_SWITCH, "").strip().lower()
    return False if word in _OFF else True if word in _ON else None


def available() -> bool:
    """True when the extension is built and not switched off with ``IMGPREP_NATIVE=0``."""
    return _native is not None and switch() is not False


def index_lines(keys: Sequence[int], sizes: Sequence[int], offset: int) -> bytes:
    """The ``.idx`` lines of consecutive records of ``sizes[i]`` bytes, the first at byte
    ``offset`` (:func:`recordio.format_index_line` each): in C where the core runs, since they
    are the one thing the packer's single writer still makes per record."""
    if _native is not None and type(keys) is list and type(sizes) is list and available():
        return _native.index_lines(keys, sizes, offset)
    offsets = itertools.accumulate(sizes, initial=offset)
    return "".join(map(recordio.format_index_line, keys, offsets)).encode()


def frame(head: bytes, body: bytes) -> bytes:
    """``head + body`` framed as one RecordIO record: in C when the core is built (byte-identical,
    tested against :func:`imgprep.formats.recordio.frame`, and cheaper on big payloads)."""
    if _native is not None:
        return _native.frame(head, body)  # type: ignore[no-any-return]
    return recordio.frame(head + body)


def status() -> str:
    """One line saying which image path runs and why (for ``imgprep doctor`` and ``--verbose``)."""
    if _native is None:
        return f"Pillow path: native extension imgprep._native not built ({_IMPORT_ERROR})"
    if not available():
        return f"Pillow path: native JPEG path switched off by {ENV_SWITCH}=0"
    return (
        f"native JPEG path (imgprep._native on libjpeg-turbo {_native.LIBJPEG_TURBO_VERSION}: "
        "DCT-scaled decode to YCbCr planes, BILINEAR resample, 4:2:0 encode); "
        "other formats and CMYK JPEGs use Pillow"
    )


def _pillow(data: bytes, spec: TransformSpec, name: str) -> bytes:
    # Imported lazily: the Pillow path is only needed for the images native cannot take.
    from imgprep.imaging import pillow

    return pillow.transform_bytes(data, spec, name)


def transform_bytes(data: bytes, spec: TransformSpec, name: str) -> bytes:
    """Same contract as :func:`imgprep.imaging.pillow.transform_bytes`; JPEGs run natively."""
    if spec.pass_through:
        return check_passthrough(data, name)
    if _native is None or not available() or spec.encoding != "jpg":
        return _pillow(data, spec, name)
    if bytes(memoryview(data)[:3]) != _JPEG_SOI:
        return _pillow(data, spec, name)
    try:
        width, height, subsamp, colorspace, orientation = _native.probe(data)
    except _native.Unsupported:
        return _pillow(data, spec, name)
    except _native.Error as exc:
        raise ImageError(f"cannot decode image ({exc})", path=name) from None
    if colorspace not in (_native.TJCS_YCbCr, _native.TJCS_GRAY):
        return _pillow(data, spec, name)
    check_pixels(width, height, spec, name)
    if orientation >= 5:  # rotated by 90 degrees: the plan works in oriented pixels
        width, height = height, width
    p = plan(width, height, spec)
    s = dct_scale(p)
    left, top, right, bottom = p.box
    canvas = p.canvas or p.size
    gray = spec.color == 0 or (spec.color == -1 and subsamp == _native.TJSAMP_GRAY)
    try:
        return _native.transform(
            data,
            s,
            orientation,
            (left / s, top / s, right / s, bottom / s),
            p.size,
            canvas,
            p.offset,
            gray,
            spec.quality,
            spec.pad_color,
        )
    except (_native.Unsupported, _native.DataWarning):
        return _pillow(data, spec, name)
    except _native.Error as exc:
        raise ImageError(f"cannot decode image ({exc})", path=name) from None


def transform_pixels(array: Any, spec: TransformSpec, name: str) -> bytes:
    """In-memory pixels (IDX arrays) to JPEG in C: Pillow's per-call overhead is most of the cost
    of a 28x28 image.  Anything needing geometry, colour conversion or PNG goes to Pillow."""
    import numpy as np

    arr = np.asarray(array)
    fast = (
        _native is not None
        and available()
        and spec.encoding == "jpg"
        and not spec.transforms_geometry
        and arr.dtype == np.uint8
        and ((arr.ndim == 2 and spec.color in (0, -1)) or (arr.ndim == 3 and arr.shape[2] == 3 and spec.color != 0))
    )
    if not fast:
        from imgprep.imaging import pillow

        return pillow.transform_pixels(array, spec, name)
    height, width = arr.shape[:2]
    check_pixels(width, height, spec, name)
    channels = 1 if arr.ndim == 2 else 3
    try:
        return _native.encode_pixels(np.ascontiguousarray(arr), width, height, channels, spec.quality)
    except (_native.Error, ValueError) as exc:
        raise ImageError(f"cannot encode pixels ({exc})", path=name) from None



_FITS = {"crop": 0, "pad": 1, "stretch": 2}


def _flat_spec(spec: TransformSpec) -> tuple[Any, ...]:
    """The spec as ``_native.pack_batch`` reads it (see native/batch.c)."""
    width, height = spec.size or (0, 0)
    return (spec.pass_through, spec.encoding == "jpg", spec.resize, width, height, _FITS[spec.fit],
            spec.center_crop, spec.quality, spec.color, spec.max_pixels, spec.pad_color)


class Batch(NamedTuple):
    """A chunk made by ``_native.pack_batch``: ``records`` back to back; per item its framed size
    (0: left to Python) and its record's CRC-32; the sizes of the images it packed.  ``records``
    is a read-only view of the buffer C filled (no copy into a ``bytes``)."""

    records: bytes | memoryview
    sizes: list[int]
    crcs: array
    images: SizeRange


def pack_records(
    spec: TransformSpec, paths: list[str | None], datas: list[Any] | None, ids: list[int],
    labels: list[tuple[float, ...]], pack_label: bool, guarded: bool,
) -> Batch:
    """A chunk's framed image records, made in C without the GIL (``_native.pack_batch``).

    Item ``i`` is the file ``paths[i]`` (read with ``O_NOFOLLOW`` when ``guarded``) or the bytes
    ``datas[i]``.  A size of 0 means the C path left that item to Python
    (:func:`transform_bytes` decides: Pillow, or the error naming the file), so records and
    messages are those of the one-image path.
    """
    if _native is None:  # callers check available() first
        raise RuntimeError("imgprep bug: pack_records without the native core")
    records, sizes, crcs, (width, height, unknown) = _native.pack_batch(
        _flat_spec(spec), paths, datas, ids, labels, pack_label, guarded)
    images = SizeRange(None if width < 0 else width, None if height < 0 else height, unknown)
    return Batch(memoryview(records), memoryview(sizes).cast("I").tolist(), array("I", crcs), images)
