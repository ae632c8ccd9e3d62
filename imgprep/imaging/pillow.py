"""The Pillow(-SIMD) image path: decode, orient, normalise colour, crop/resize, encode.

This path is the reference the native path is measured against, and the fallback for every
image the native path does not take (PNG, CMYK, GIF, ...).

Defined results:
- EXIF orientation is applied, then dropped (records carry no EXIF).
- ``color=1``: RGB.  Alpha (RGBA, LA, palette transparency) is composited onto white; CMYK is
  converted by Pillow; 16-bit and 32-bit grayscale is scaled to 8 bits (``>> 8``), not clipped.
  ``color=0``: 8-bit grayscale (ITU-R 601-2 luma).  ``color=-1``: L and RGB stay as decoded,
  alpha is kept when encoding PNG and composited onto white for JPEG.
- Shrinking uses Pillow's BILINEAR filter, which is antialiased: its triangle kernel widens
  with the reduction factor, so large photos do not alias the way im2rec's cv2 INTER_LINEAR does.
- JPEG DCT-domain scaling (``Image.draft``) at 1/2, 1/4 or 1/8 only where the target size is
  still reached (:func:`imgprep.imaging.geometry.dct_scale`).
- JPEG output: baseline, 4:2:0, the given quality.  PNG output: compression level 3.
"""

from __future__ import annotations

import io
import struct
import warnings
from typing import Any

from PIL import Image, ImageFile

from imgprep.errors import ImageError
from imgprep.imaging.geometry import Plan, check_pixels, dct_scale, plan
from imgprep.imaging.passthrough import check_passthrough
from imgprep.imaging.spec import TransformSpec

# imgprep applies its own decompression-bomb limit (TransformSpec.max_pixels) right after the
# header is read; Pillow's warning below its hard limit would only be noise.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
ImageFile.LOAD_TRUNCATED_IMAGES = False

PNG_COMPRESS_LEVEL = 3
_TRANSPOSE = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}


def exif_orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the image
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _to_8bit_gray(im: Image.Image) -> Image.Image:
    import numpy as np

    arr = np.asarray(im)
    if im.mode == "F":
        arr = np.clip(arr, 0, 255)
    elif arr.dtype.itemsize > 1 or im.mode.startswith("I"):
        arr = np.clip(arr.astype(np.int64) >> 8, 0, 255)
    return Image.fromarray(arr.astype(np.uint8), "L")


def _flatten_alpha(im: Image.Image) -> Image.Image:
    rgba = im.convert("RGBA") if im.mode != "RGBA" else im
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def normalize_mode(im: Image.Image, color: int, encoding: str) -> Image.Image:
    """Bring any decoded mode to L, RGB (or, for ``color=-1`` PNG, LA/RGBA)."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        im, mode = _to_8bit_gray(im), "L"
    elif mode == "1":
        im, mode = im.convert("L"), "L"
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in im.info)
    if color == -1:
        if mode in ("L", "RGB"):
            return im
        if has_alpha and encoding == "png":
            return im.convert("LA" if mode in ("LA", "La") else "RGBA")
        if has_alpha:
            flat = _flatten_alpha(im)
            return flat.convert("L") if mode in ("LA", "La") else flat
        return im.convert("RGB")
    if has_alpha:
        im = _flatten_alpha(im)
    if color == 1:
        return im if im.mode == "RGB" else im.convert("RGB")
    return im if im.mode == "L" else im.convert("L")


def as_packed(im: Image.Image) -> Image.Image:
    """An opened image's pixels upright and in RGB exactly as pack (``color=1``) makes them: what
    the training reader shows of a ``--pass-through`` record (EXIF orientation applied; 16-bit
    grey scaled, not clipped; alpha and palette transparency composited onto white)."""
    orientation = exif_orientation(im) if im.format else 1
    im.load()
    for op in _TRANSPOSE.get(orientation, ()):
        im = im.transpose(op)
    return normalize_mode(im, 1, "jpeg")


def _geometry(im: Image.Image, p: Plan, source_size: tuple[int, int], scale: int, pad_color: int) -> Image.Image:
    """Crop/resize/pad ``im``, which was decoded at 1/``scale`` of ``source_size`` (JPEG draft)."""
    if p.resizes:
        # Pillow resamples the (fractional) box directly: crop and scale in one pass.
        fbox = tuple(v / scale for v in p.box)
        im = im.resize(p.size, Image.Resampling.BILINEAR, box=fbox)
    elif p.box != (0, 0, *source_size):
        im = im.crop(p.box)
    if p.canvas:
        fill: Any = pad_color if im.mode in ("L", "LA") else (pad_color,) * len(im.getbands())
        if im.mode == "LA":
            fill = (pad_color, 255)
        elif im.mode == "RGBA":
            fill = (pad_color, pad_color, pad_color, 255)
        canvas = Image.new(im.mode, p.canvas, fill)
        canvas.paste(im, p.offset)
        im = canvas
    return im


def encode(im: Image.Image, spec: TransformSpec) -> bytes:
    out = io.BytesIO()
    if spec.encoding == "png":
        im.save(out, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    else:
        if im.mode not in ("L", "RGB"):
            im = im.convert("RGB")
        im.save(out, "JPEG", quality=spec.quality, subsampling=2, optimize=False, progressive=False)
    return out.getvalue()


def transform_image(im: Image.Image, spec: TransformSpec, name: str) -> bytes:
    """Transform a decoded (or lazily opened) image; handles orientation, draft and colour."""
    width, height = im.size
    check_pixels(width, height, spec, name)
    orientation = exif_orientation(im) if im.format else 1
    oriented = (height, width) if orientation >= 5 else (width, height)
    p = plan(*oriented, spec)
    scale = 1
    if im.format == "JPEG" and p.resizes:
        s = dct_scale(p)
        if s > 1:
            draft_mode = {1: "RGB", 0: "L"}.get(spec.color, im.mode)
            if im.mode not in ("RGB", "L"):
                draft_mode = im.mode
            result = im.draft(draft_mode, (max(1, width // s), max(1, height // s)))
            if result is not None:
                scale = round(width / result[1][2])
    im.load()
    for op in _TRANSPOSE.get(orientation, ()):
        im = im.transpose(op)
    im = normalize_mode(im, spec.color, spec.encoding)
    im = _geometry(im, p, oriented, scale, spec.pad_color)
    return encode(im, spec)


def transform_bytes(data: bytes, spec: TransformSpec, name: str) -> bytes:
    """Encoded image bytes in, record image bytes out; any decoding problem is an ImageError."""
    if spec.pass_through:
        return check_passthrough(data, name)
    try:
        with Image.open(io.BytesIO(data)) as im:
            return transform_image(im, spec, name)
    except ImageError:
        raise
    except Image.UnidentifiedImageError:
        raise ImageError("not an image Pillow can read", path=name) from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image exceeds the decompression-bomb limit (Pillow: {exc})", path=name) from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageError(f"cannot decode image ({reason})", path=name) from None


def transform_pixels(array: Any, spec: TransformSpec, name: str) -> bytes:
    """Encode an in-memory uint8 array (HxW gray or HxWx3 RGB), e.g. straight from IDX files."""
    import numpy as np

    arr = np.asarray(array)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageError(f"pixel array of shape {arr.shape} and dtype {arr.dtype} is not an 8-bit image", path=name)
    im = Image.fromarray(np.ascontiguousarray(arr))
    p = plan(im.width, im.height, spec)
    im = normalize_mode(im, spec.color, spec.encoding)
    im = _geometry(im, p, im.size, 1, spec.pad_color)
    return encode(im, spec)


def version() -> str:
    """Which Pillow build is in use (Pillow-SIMD reports a ``.postN`` version)."""
    import PIL

    return PIL.__version__
