"""Synthetic but photo-like test images: gradients, shapes and noise, in any size and mode.

Plain flat images compress to almost nothing and hide resampling and chroma bugs; these have
edges, smooth areas and texture, so encoders and resizers do real work.  Everything is
deterministic for a given seed.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

EXIF_ORIENTATION_TAG = 0x0112


def photo(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    """A ``width``×``height`` image in ``mode`` (RGB, L, RGBA, P, CMYK, I;16, ...)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, 3)
    base = np.stack(
        [
            127 + 100 * np.sin(x / max(width, 1) * 3.0 + phase[0]) * np.cos(y / max(height, 1) * 2.0),
            127 + 100 * np.cos((x + y) / max(width + height, 1) * 4.0 + phase[1]),
            127 + 100 * np.sin(y / max(height, 1) * 5.0 + phase[2]),
        ],
        axis=-1,
    )
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    pick = random.Random(seed)
    for _ in range(6):
        x0, y0 = pick.randrange(max(width, 1)), pick.randrange(max(height, 1))
        x1 = x0 + pick.randrange(1, max(width // 2, 2))
        y1 = y0 + pick.randrange(1, max(height // 2, 2))
        colour = tuple(pick.randrange(256) for _ in range(3))
        if pick.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour, outline=(0, 0, 0))
    noisy = np.asarray(img, dtype=np.int16) + rng.integers(-12, 13, (height, width, 3), dtype=np.int16)
    img = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")
    return convert(img, mode, seed)


def convert(img: Image.Image, mode: str, seed: int = 0) -> Image.Image:
    """Convert an RGB image to ``mode``, with real content in every channel."""
    if mode == "RGB":
        return img
    if mode == "RGBA":
        alpha = Image.linear_gradient("L").resize(img.size).rotate(seed % 360)
        out = img.copy()
        out.putalpha(alpha)
        return out
    if mode == "P":
        return img.quantize(colors=64)
    if mode == "I;16":
        grey = np.asarray(img.convert("L"), dtype=np.uint16) * 257
        return Image.fromarray(grey)  # uint16 arrays become mode I;16
    return img.convert(mode)


def encode(img: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def jpeg(
    width: int,
    height: int,
    *,
    mode: str = "RGB",
    seed: int = 0,
    quality: int = 90,
    progressive: bool = False,
    orientation: int | None = None,
) -> bytes:
    """JPEG bytes (modes RGB, L, CMYK); ``orientation`` 1..8 adds an EXIF Orientation tag."""
    img = photo(width, height, mode, seed)
    params: dict[str, object] = {"quality": quality}
    if progressive:
        params["progressive"] = True
    if orientation is not None:
        exif = Image.Exif()
        exif[EXIF_ORIENTATION_TAG] = orientation
        params["exif"] = exif.tobytes()
    return encode(img, "JPEG", **params)


def png(width: int, height: int, *, mode: str = "RGB", seed: int = 0) -> bytes:
    """PNG bytes (modes RGB, RGBA, L, P, I;16)."""
    return encode(photo(width, height, mode, seed), "PNG")


def truncated_jpeg(width: int = 64, height: int = 48, *, seed: int = 0, keep: float = 0.5) -> bytes:
    """A JPEG cut short: the header parses, the scan data ends early."""
    data = jpeg(width, height, seed=seed)
    return data[: max(int(len(data) * keep), 200)]


def not_an_image(size: int = 256, seed: int = 0) -> bytes:
    """Bytes no decoder accepts (starts like text, not like any image signature)."""
    body = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    return b"this is not an image\n" + body


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def class_tree(
    root: Path,
    classes: Sequence[str],
    per_class: int,
    *,
    sizes: Iterable[tuple[int, int]] = ((96, 72), (64, 80), (120, 90), (50, 50)),
    png_every: int = 0,
    seed: int = 0,
) -> list[Path]:
    """Class folders ``root/<class>/img_NNN.jpg`` (every ``png_every``-th one a PNG).

    Returns the files in sorted order.  Sizes cycle through ``sizes`` so images differ in shape.
    """
    sizes = list(sizes)
    files = []
    n = 0
    for ci, name in enumerate(classes):
        for i in range(per_class):
            w, h = sizes[n % len(sizes)]
            s = seed * 100_003 + ci * 1009 + i
            if png_every and n % png_every == png_every - 1:
                files.append(write(root / name / f"img_{i:03d}.png", png(w, h, seed=s)))
            else:
                files.append(write(root / name / f"img_{i:03d}.jpg", jpeg(w, h, seed=s)))
            n += 1
    return sorted(files)
