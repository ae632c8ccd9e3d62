"""Decode without transforming: what ``verify`` checks and what perceptual hashes are made from.

JPEGs go through the native core's ``decode_luma`` when it is built: every entropy-coded byte
is decoded (libjpeg warnings count as damage), but at a DCT reduction, so the inverse DCT and
colour work shrink — a full check of a 256-pixel record costs about a third of a full decode.
Everything else (PNG, CMYK JPEGs, no native core) goes through Pillow with truncated images
refused.  Both release the GIL, so a thread pool scales.  With ``keep_luma`` a colour image also
gives its Cb and Cr planes at half the luma's resolution (``chroma``), for the fingerprint's colour check:
the JPEG decode has them already; a grey JPEG pays nothing for them.
"""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from imgprep.errors import ImageError
from imgprep.imaging import native

if TYPE_CHECKING:
    from PIL import Image

_JPEG_SOI = b"\xff\xd8\xff"


class Decoded(NamedTuple):
    """Stored size and channel count; ``luma`` is a small grey rendering (None when not asked) and
    ``chroma`` its Cb and Cr planes at half its resolution (sample (y, x) under luma pixel (2y, 2x):
    2 x ceil(h / 2) x ceil(w / 2); None when not asked or grey)."""

    width: int
    height: int
    channels: int
    luma: np.ndarray | None
    chroma: np.ndarray | None = None


def decode(data: bytes, *, min_side: int = 1, keep_luma: bool = False) -> Decoded:
    """Decode all of ``data``; ``min_side`` bounds how far a JPEG may be reduced while decoding."""
    core = native._native
    if core is not None and native.available() and bytes(data[:3]) == _JPEG_SOI:
        try:
            width, height, comps, sw, sh, luma, *colour = core.decode_luma(data, min_side, keep_luma)
        except core.Unsupported:
            pass
        except core.Error as exc:
            raise ImageError(f"cannot decode image ({exc})") from None
        else:
            if not keep_luma:
                return Decoded(width, height, comps, None)
            half = (2, (sh + 1) // 2, (sw + 1) // 2)
            chroma = None if colour[0] is None else np.frombuffer(colour[0], np.uint8).reshape(half)
            return Decoded(width, height, comps, np.frombuffer(luma, np.uint8).reshape(sh, sw), chroma)
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
                    img.draft("L" if img.mode == "L" else "YCbCr", (max(min_side, 1), max(min_side, 1)))
                img.load()
                # as pack converts: 16-bit scaled (not clipped to white), alpha on white, palette expanded
                luma, chroma = (_planes(img if img.mode == "YCbCr" else normalize_mode(img, -1, "jpeg"))
                                if keep_luma else (None, None))
    except Image.UnidentifiedImageError:  # its message names a BytesIO object, not the image
        raise ImageError("cannot decode image (not an image Pillow can read)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ImageError(f"cannot decode image ({exc})") from None
    return Decoded(width, height, channels, luma, chroma)


def _planes(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Grey levels (Pillow's L) and, for colour, the Cb and Cr planes (every other row and column) of an
    L, RGB or YCbCr image."""
    if img.mode == "L":
        return np.asarray(img), None
    if img.mode == "YCbCr":  # a JPEG drafted in its own colour space
        ycc = np.asarray(img)
        return np.ascontiguousarray(ycc[:, :, 0]), np.ascontiguousarray(ycc[::2, ::2, 1:].transpose(2, 0, 1))
    ycc = np.asarray(img.convert("YCbCr"))
    return np.asarray(img.convert("L")), np.ascontiguousarray(ycc[::2, ::2, 1:].transpose(2, 0, 1))
