"""Pure geometry shared by the Pillow and native paths, so both crop and scale identically.

A :class:`Plan` says which box of the (EXIF-oriented) source to take, what size to scale it
to, and, for ``--fit pad``, the canvas it is centred on.  :func:`dct_scale` picks the JPEG
DCT-domain reduction (1, 2, 4 or 8 only: other factors decode slower than a full decode).
"""

from __future__ import annotations

from dataclasses import dataclass

from imgprep.errors import ImageError
from imgprep.imaging.spec import TransformSpec


@dataclass(frozen=True)
class Plan:
    box: tuple[int, int, int, int]  # left, top, right, bottom in source pixels
    size: tuple[int, int]  # (width, height) the box is scaled to
    canvas: tuple[int, int] | None = None  # final (width, height) for --fit pad
    offset: tuple[int, int] = (0, 0)  # where the scaled box sits on the canvas

    @property
    def box_size(self) -> tuple[int, int]:
        return self.box[2] - self.box[0], self.box[3] - self.box[1]

    @property
    def output_size(self) -> tuple[int, int]:
        return self.canvas or self.size

    @property
    def resizes(self) -> bool:
        return self.size != self.box_size


def _shorter_side(w: int, h: int, n: int) -> tuple[int, int]:
    # im2rec's integer rounding, so sizes match what users already train on.
    if h > w:
        return n, max(1, h * n // w)
    return max(1, w * n // h), n


def plan(width: int, height: int, spec: TransformSpec) -> Plan:
    """Where the source pixels go for an image of ``width`` x ``height``."""
    w, h = width, height
    box = (0, 0, w, h)
    if spec.center_crop:
        if h > w:
            top = (h - w) // 2
            box = (0, top, w, top + w)
        else:
            left = (w - h) // 2
            box = (left, 0, left + h, h)
    bw, bh = box[2] - box[0], box[3] - box[1]
    if spec.resize:
        return Plan(box, _shorter_side(bw, bh, spec.resize))
    if spec.size is None:
        return Plan(box, (bw, bh))
    tw, th = spec.size
    if spec.fit == "stretch":
        return Plan(box, (tw, th))
    if spec.fit == "crop":
        if bw * th > bh * tw:  # source wider than target: trim the sides
            cw = max(1, min(bw, (bh * tw + th // 2) // th))
            left = (bw - cw) // 2
            return Plan((left, 0, left + cw, bh), (tw, th))
        ch = max(1, min(bh, (bw * th + tw // 2) // tw))
        top = (bh - ch) // 2
        return Plan((0, top, bw, top + ch), (tw, th))
    # pad: scale to fit inside, centre on a canvas
    if bw * th >= bh * tw:
        sw, sh = tw, max(1, min(th, (bh * tw + bw // 2) // bw))
    else:
        sw, sh = max(1, min(tw, (bw * th + bh // 2) // bh)), th
    return Plan(box, (sw, sh), (tw, th), ((tw - sw) // 2, (th - sh) // 2))


def dct_scale(p: Plan) -> int:
    """Largest of 8, 4, 2, 1 that still leaves the box at least as large as its target size."""
    bw, bh = p.box_size
    tw, th = p.size
    for s in (8, 4, 2):
        if bw >= tw * s and bh >= th * s:
            return s
    return 1


def check_limit(width: int, height: int, max_pixels: int, name: str | None = None,
                raise_with: str = "--max-pixels") -> None:
    """The decompression-bomb limit on a header's size, in the one wording pack and readers use."""
    if width * height > max_pixels:
        raise ImageError(f"{width}x{height} image exceeds the decompression-bomb limit of {max_pixels} pixels "
                         f"(raise it with {raise_with})", path=name)


def check_pixels(width: int, height: int, spec: TransformSpec, name: str) -> None:
    """The decompression-bomb guard, applied to a header's size before any pixel is decoded.

    The output is bounded by the same limit: ``--resize`` of a thin strip (or ``--size``)
    would otherwise allocate far more than the input ever needed.
    """
    check_limit(width, height, spec.max_pixels, name)
    if spec.resize and width > 0 and height > 0:
        out_w, out_h = plan(width, height, spec).output_size
        if out_w * out_h > spec.max_pixels:
            raise ImageError(
                f"--resize {spec.resize} makes this {width}x{height} image {out_w}x{out_h}, above the limit "
                f"of {spec.max_pixels} pixels (raise it with --max-pixels)",
                path=name,
            )
