"""Training and evaluation transforms: where to crop, seeded per sample, and the decode that does it.

:class:`Transform` says what a sample becomes (``train``: torchvision's RandomResizedCrop with its
usual ranges, then a horizontal flip with probability ½; ``eval``: the shorter side to
``resize``, then a centre crop), :meth:`Transform.box` where the crop lies in the stored image,
drawn from the sample's own seed (so a sample's pixels do not depend on which worker, thread or
process made it), and :func:`decode_batch` decodes many samples into one uint8 array.

JPEG payloads go to the native core (``imgprep._native.decode_crops``, GIL released), which
decodes only the crop: the smallest DCT scale (1/8, 1/4, 1/2) that keeps the crop at least the
output size, only the iMCU columns (``jpeg_crop_scanline``) and rows (``jpeg_skip_scanlines``)
the resampler touches; then Pillow's BILINEAR (triangle) resampling of that box.  PNG, grey or
CMYK payloads, JPEGs on which libjpeg warns, and installs without the native core take Pillow,
with the same box and the same filter.  Pillow's pixels are pack's (``imaging.pillow.as_packed``):
16-bit grey scaled, alpha composited onto white, EXIF orientation applied, so a ``--pass-through``
record reads as the packed one would.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from imgprep.errors import ImageError, UsageError
from imgprep.imaging import native as native_path
from imgprep.imaging.orientation import jpeg_orientation

_M64 = (1 << 64) - 1


def mix(*words: int) -> int:
    """A 64-bit seed from integers (splitmix64 over each in turn): the same on every platform."""
    state = 0
    for word in words:
        state = _splitmix(state ^ (int(word) & _M64))
    return state


def _splitmix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


class _Rng:
    """splitmix64: tiny, fast to seed per sample, and defined by this file alone (numpy's
    generators promise no stream stability across versions)."""

    def __init__(self, seed: int) -> None:
        self.state = seed & _M64

    def next(self) -> int:
        out = _splitmix(self.state)
        self.state = (self.state + 0x9E3779B97F4A7C15) & _M64
        return out

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * ((self.next() >> 11) * 2.0**-53)

    def below(self, n: int) -> int:
        return (self.next() * n) >> 64


@dataclass(frozen=True)
class Transform:
    """What a sample's image becomes: ``height × width × 3`` uint8 (HWC) or ``3 × height × width`` (CHW)."""

    mode: str  # "train" or "eval"
    height: int
    width: int
    resize: int = 0  # eval: the shorter side before the centre crop
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True
    layout: str = "HWC"

    @classmethod
    def train(cls, size: int | tuple[int, int] = 224, *, scale: tuple[float, float] = (0.08, 1.0),
              ratio: tuple[float, float] = (3 / 4, 4 / 3), flip: bool = True, layout: str = "HWC") -> Transform:
        """Random resized crop (area fraction ``scale``, aspect ratio ``ratio``) to ``size``, then a
        horizontal flip with probability ½ when ``flip``."""
        h, w = _size(size)
        if not (0 < scale[0] <= scale[1] <= 1) or not (0 < ratio[0] <= ratio[1]):
            raise UsageError(f"scale {scale} must lie in (0, 1] and ratio {ratio} be positive, low to high")
        return cls("train", h, w, 0, (float(scale[0]), float(scale[1])), (float(ratio[0]), float(ratio[1])),
                   bool(flip), _layout(layout))

    @classmethod
    def eval(cls, size: int | tuple[int, int] = 224, *, resize: int | None = None, layout: str = "HWC") -> Transform:
        """Shorter side to ``resize``, centre crop to ``size``.  ``resize`` defaults to the crop's
        longer side × 256/224, rounded — 256 only for a 224 crop (146 for 128, 293 for 256, 439
        for 384): pass ``resize=256`` to keep 256 whatever the crop."""
        h, w = _size(size)
        resize = round(max(h, w) * 256 / 224) if resize is None else int(resize)
        if resize < max(h, w):
            raise UsageError(f"resize {resize} is smaller than the crop {w}x{h}")
        return cls("eval", h, w, resize, flip=False, layout=_layout(layout))

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, 3) if self.layout == "HWC" else (3, self.height, self.width)

    def box(self, seed: int, width: int, height: int) -> tuple[tuple[float, float, float, float], bool]:
        """The crop ``(left, top, right, bottom)`` in the stored image's pixels, and whether to flip."""
        if self.mode == "eval":
            # torchvision's Resize(resize) + CenterCrop(size) as one box: the resized size and the
            # crop's offsets rounded as it rounds them, mapped back onto the stored image.
            short, long = sorted((width, height))
            rw, rh = (self.resize, int(self.resize * long / short))[:: 1 if width == short else -1]
            top, left = round((rh - self.height) / 2), round((rw - self.width) / 2)
            fx, fy = width / rw, height / rh
            return (left * fx, top * fy, (left + self.width) * fx, (top + self.height) * fy), False
        rng = _Rng(seed)
        x, y, cw, ch = _random_resized_crop(rng, width, height, self.scale, self.ratio)
        flip = self.flip and rng.next() >> 63 == 1
        return (float(x), float(y), float(x + cw), float(y + ch)), flip


def _size(size: int | tuple[int, int]) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if h < 1 or w < 1:
        raise UsageError(f"output size {size} must be positive")
    return h, w


def _layout(layout: str) -> str:
    if layout not in ("HWC", "CHW"):
        raise UsageError(f"layout {layout!r} must be 'HWC' or 'CHW'")
    return layout


def _random_resized_crop(rng: _Rng, width: int, height: int, scale: tuple[float, float],
                         ratio: tuple[float, float]) -> tuple[int, int, int, int]:
    """torchvision's ``RandomResizedCrop.get_params``: 10 tries, then a centre crop of the
    closest allowed aspect ratio."""
    area = width * height
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= width and 0 < ch <= height:
            return rng.below(width - cw + 1), rng.below(height - ch + 1), cw, ch
    in_ratio = width / height
    if in_ratio < ratio[0]:
        cw, ch = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        cw, ch = round(height * ratio[1]), height
    else:
        cw, ch = width, height
    return (width - cw) // 2, (height - ch) // 2, cw, ch


# --------------------------------------------------------------------------- decoding


def _native():
    return native_path._native if native_path.available() and hasattr(native_path._native, "decode_crops") else None


def decode_batch(images: Sequence[memoryview], seeds: Sequence[int], transform: Transform,
                 out: np.ndarray) -> dict[int, ImageError]:
    """Decode ``images[j]`` with its seed's crop into ``out[j]``; the failures by position."""
    failed: dict[int, ImageError] = {}
    pending = list(range(len(images)))
    core = _native()
    if core is not None:
        pending = _decode_native(core, images, seeds, transform, out, failed)
    for j in pending:
        try:
            out[j] = decode_pillow(images[j], seeds[j], transform)
        except ImageError as exc:
            failed[j] = exc
    return failed


def _decode_native(core, images, seeds, transform, out, failed) -> list[int]:
    """Native decode of the JPEGs among ``images``; the positions left for Pillow."""
    jpegs, rest = [], []
    for j, data in enumerate(images):  # a JPEG to be turned upright takes Pillow, which turns it as pack does
        (jpegs if data[:2] == b"\xff\xd8" and jpeg_orientation(data) == 1 else rest).append(j)
    if not jpegs:
        return rest
    sizes = core.jpeg_sizes([images[j] for j in jpegs])
    run, boxes, flips = [], [], []
    for j, size in zip(jpegs, sizes):
        if size is None:  # not a JPEG header libjpeg accepts: Pillow names the problem
            rest.append(j)
            continue
        box, flip = transform.box(seeds[j], *size)
        run.append(j)
        boxes.append(box)
        flips.append(flip)
    if run:
        target = out if len(run) == len(images) else np.empty((len(run), *out.shape[1:]), np.uint8)
        problems = core.decode_crops([images[j] for j in run], np.asarray(boxes, np.float64),
                                     np.asarray(flips, np.uint8), target, transform.layout == "CHW")
        bad = {k: (kind, message) for k, kind, message in problems}
        for k, j in enumerate(run):
            if k in bad:
                kind, message = bad[k]
                if kind == "error":
                    failed[j] = ImageError(f"corrupt JPEG ({message})")
                else:  # unsupported colour space or a libjpeg warning: Pillow decides
                    rest.append(j)
            elif target is not out:
                out[j] = target[k]
    return sorted(rest)


def decode_pillow(data: bytes | memoryview, seed: int, transform: Transform) -> np.ndarray:
    """One sample on the Pillow path (PNG, grey, CMYK, or no native core): same box, same filter."""
    from PIL import Image

    from imgprep.imaging.pillow import as_packed

    try:
        with Image.open(io.BytesIO(data)) as im:
            im = as_packed(im)
            box, flip = transform.box(seed, *im.size)
            im = im.resize((transform.width, transform.height), Image.Resampling.BILINEAR, box=box)
            if flip:
                im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            pixels = np.asarray(im)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageError(f"cannot decode the image ({exc})") from None
    return pixels if transform.layout == "HWC" else np.ascontiguousarray(pixels.transpose(2, 0, 1))


def decode_full(data: bytes | memoryview) -> np.ndarray:
    """The whole image as ``height × width × 3`` uint8 (no transform)."""
    from PIL import Image

    from imgprep.imaging.pillow import as_packed

    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(as_packed(im))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageError(f"cannot decode the image ({exc})") from None
