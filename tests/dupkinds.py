"""Copies of a photo the way datasets hold them: the kinds the duplicate search must find.

Shared by tests/test_dedup.py (synthetic photos) and benchmarks/bench_dedup.py (real photos).
Each kind maps an RGB image to the bytes of its copy; ``exif`` stores the pixels turned and an
EXIF Orientation tag that turns them back, so the copy *displays* (and packs) like the original.
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageEnhance, ImageOps

EXIF_ORIENTATION_TAG = 0x0112


def _jpeg(img: Image.Image, quality: int = 90, exif: bytes | None = None) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality, **({"exif": exif} if exif else {}))
    return out.getvalue()


def _crop(img: Image.Image, fx0: float, fy0: float, fx1: float, fy1: float) -> Image.Image:
    w, h = img.size
    return img.crop((round(w * fx0), round(h * fy0), round(w * fx1), round(h * fy1)))


def _letterbox(img: Image.Image) -> Image.Image:
    side = max(img.size)
    canvas = Image.new("RGB", (side, side), (0, 0, 0))
    canvas.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
    return canvas


def _exif_copy(img: Image.Image) -> bytes:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = 6  # "rotate 90 CW to display": store the pixels turned 90 CCW
    return _jpeg(img.transpose(Image.Transpose.ROTATE_90), exif=exif.tobytes())


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def _sixteen_bit(img: Image.Image) -> bytes:
    """A 16-bit greyscale PNG (each 8-bit level times 257, as scanners and medical tools write them)."""
    import numpy as np

    return _png(Image.fromarray(np.asarray(img.convert("L"), dtype=np.uint16) * 257))


def _alpha(img: Image.Image) -> bytes:
    """An RGBA PNG, opaque but for a transparent 2-pixel frame (a cut-out's edge)."""
    out = img.convert("RGBA")
    alpha = Image.new("L", img.size, 0)
    alpha.paste(255, (2, 2, img.width - 2, img.height - 2))
    out.putalpha(alpha)
    return _png(out)


def _watermark(img: Image.Image) -> Image.Image:
    out = img.copy()
    ImageDraw.Draw(out).text((out.width // 20, out.height * 17 // 20), "(c) imgprep stock", fill=(255, 255, 255))
    return out


KINDS = {
    "identical": None,  # the same file
    "re-encoded q30": lambda im: _jpeg(im, 30),
    "resized 50%": lambda im: _jpeg(im.resize((im.width // 2, im.height // 2), Image.Resampling.BILINEAR)),
    "grayscale": lambda im: _jpeg(im.convert("L")),
    "mirrored": lambda im: _jpeg(ImageOps.mirror(im)),
    "flipped vertically": lambda im: _jpeg(ImageOps.flip(im)),
    "rotated 90": lambda im: _jpeg(im.transpose(Image.Transpose.ROTATE_90)),
    "rotated 180": lambda im: _jpeg(im.transpose(Image.Transpose.ROTATE_180)),
    "rotated 270": lambda im: _jpeg(im.transpose(Image.Transpose.ROTATE_270)),
    "EXIF orientation": _exif_copy,
    "cropped 10% centred": lambda im: _jpeg(_crop(im, 0.05, 0.05, 0.95, 0.95)),
    "cropped 10% from a corner": lambda im: _jpeg(_crop(im, 0.1, 0.1, 1.0, 1.0)),
    "cropped 5% from a corner": lambda im: _jpeg(_crop(im, 0.0, 0.05, 0.95, 1.0)),
    "letterboxed": lambda im: _jpeg(_letterbox(im)),
    "watermarked": lambda im: _jpeg(_watermark(im)),
    "cropped 7% from one side": lambda im: _jpeg(_crop(im, 0.07, 0.0, 1.0, 1.0)),
    "cropped 10% from one side": lambda im: _jpeg(_crop(im, 0.0, 0.0, 1.0, 0.9)),
    "cropped 10% from two adjacent sides": lambda im: _jpeg(_crop(im, 0.0, 0.1, 0.9, 1.0)),
    "cropped to 80% (10% off every side)": lambda im: _jpeg(_crop(im, 0.1, 0.1, 0.9, 0.9)),
    "rotated 180, cropped 5%": lambda im: _jpeg(_crop(im.transpose(Image.Transpose.ROTATE_180), 0.05, 0.0, 1.0, 0.95)),
    "mirrored, cropped 8% from one side, q50": lambda im: _jpeg(_crop(ImageOps.mirror(im), 0.0, 0.0, 0.92, 1.0), 50),
    "16-bit PNG": _sixteen_bit,
    "palette PNG": lambda im: _png(im.quantize(colors=128)),
    "alpha PNG": _alpha,
    "saturation x0.5": lambda im: _jpeg(ImageEnhance.Color(im).enhance(0.5)),  # hue kept, colours paler
}


def original(img: Image.Image) -> bytes:
    return _jpeg(img)


def copy(img: Image.Image, kind: str, original_bytes: bytes) -> bytes:
    make = KINDS[kind]
    return original_bytes if make is None else make(img)
