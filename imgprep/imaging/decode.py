"""Decode without transforming: what ``verify`` checks and what perceptual hashes are made from.

JPEGs go through the native core's ``decode_luma`` when it is built: every entropy-coded byte
is decoded (libjpeg warnings count as damage), but at a DCT reduction, so the inverse DCT and
colour work shrink — a full check of a 256-pixel record costs about a third of a full decode.
Everything else (PNG, CMYK JPEGs, no native core) goes through Pillow with truncated images
refused.  Both release the GIL, so a thread pool scales.
"""

from __future__ import annotations

import io
import warnings
from typing import NamedTuple

import numpy as np

from imgprep.errors import ImageError
from imgprep.imaging import native

_JPEG_SOI = b"\xff\xd8\xff"


class Decoded(NamedTuple):
    """Stored size and channel count; ``luma`` is a small grey rendering (None when not asked)."""

    width: int
    height: int
    channels: int
    luma: np.ndarray | None


def decode(data: bytes, *, min_side: int = 1, keep_luma: bool = False) -> Decoded:
    """Decode all of ``data``; ``min_side`` bounds how far a JPEG may be reduced while decoding."""
    core = native._native
    if core is not None and native.available() and bytes(data[:3]) == _JPEG_SOI:
        try:
            width, height, comps, sw, sh, luma = core.decode_luma(data, min_side)
        except core.Unsupported:
            pass
        except core.Error as exc:
            raise ImageError(f"cannot decode image ({exc})") from None
        else:
            plane = np.frombuffer(luma, np.uint8).reshape(sh, sw) if keep_luma else None
            return Decoded(width, height, comps, plane)
    return _pillow(data, min_side, keep_luma)


def decode_all(images: list[bytes], *, min_side: int = 1) -> list[Decoded | ImageError]:
    """:func:`decode` of every image (no luma kept), JPEGs in one native call without the GIL:
    a batch of small records costs one Python call, not one per record.  What that call does not
    decode (other formats, CMYK, damage) goes through :func:`decode`, which gives the error."""
    core = native._native
    out: list[Decoded | ImageError] = []
    if core is None or not native.available():
        codes = None
    else:
        codes = memoryview(core.decode_batch(images, min_side)).cast("i")
    for i, data in enumerate(images):
        if codes is not None and codes[4 * i + 3] == 0:
            out.append(Decoded(codes[4 * i], codes[4 * i + 1], codes[4 * i + 2], None))
            continue
        try:
            out.append(decode(data, min_side=min_side))
        except ImageError as exc:
            out.append(exc)
    return out


_CHANNELS = {"1": 1, "L": 1, "P": 3, "RGB": 3, "YCbCr": 3, "LA": 2, "RGBA": 4, "CMYK": 4, "I;16": 1, "I": 1, "F": 1}


def _pillow(data: bytes, min_side: int, keep_luma: bool) -> Decoded:
    from imgprep.requirements import require

    require("PIL")  # one line naming the fix, not an ImportError per image
    from PIL import Image

    from imgprep.imaging.pillow import normalize_mode

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                channels = _CHANNELS.get(img.mode, len(img.getbands()))
                if keep_luma and img.format == "JPEG":
                    img.draft("L", (max(min_side, 1), max(min_side, 1)))
                img.load()
                # grey as pack converts: 16-bit scaled (not clipped to white), alpha on white
                luma = np.asarray(normalize_mode(img, 0, "jpeg")) if keep_luma else None
    except Image.UnidentifiedImageError:  # its message names a BytesIO object, not the image
        raise ImageError("cannot decode image (not an image Pillow can read)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ImageError(f"cannot decode image ({exc})") from None
    return Decoded(width, height, channels, luma)
