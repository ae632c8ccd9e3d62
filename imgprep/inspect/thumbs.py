"""Small colour thumbnails for the report, as JPEG bytes made by the packer's own resize."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from imgprep.errors import ImageError
from imgprep.formats.imagesize import dimensions
from imgprep.imaging.native import transform_bytes
from imgprep.imaging.spec import TransformSpec
from imgprep.inspect.analyse import Findings

SIDE = 168  # group card thumbnails
TILE = 96  # class tiles: shown cropped to 64 CSS px, sharp on a 1.5x screen
PER_CLASS = 4
QUALITY = 78


@dataclass(frozen=True)
class Thumb:
    data: bytes  # JPEG
    width: int
    height: int


def render(findings: Findings, row: int, sides: Sequence[int]) -> list[Thumb] | None:
    """Row ``row``'s image fitted in each of ``sides`` x ``sides`` (never enlarged), by the packer's
    own resize (JPEGs decoded at a DCT reduction in C, off the GIL); None when it cannot be read."""
    split = findings.collection.splits[findings.table.split[row]]
    name = f"{split.name} id {findings.table.id[row]}"
    try:
        data = split.fetch(findings.table.locator[row])
        size = dimensions(data)
        if size is None:
            return None
        out = []
        for side in sides:
            shorter = max(1, min(min(size), side * min(size) // max(size)))
            jpeg = transform_bytes(data, TransformSpec(resize=shorter, quality=QUALITY), name)
            w, h = dimensions(jpeg) or (side, side)
            out.append(Thumb(jpeg, w, h))
    except (ImageError, OSError, ValueError):
        return None
    return out


def samples(findings: Findings) -> list[tuple[str, list[int]]]:
    """Up to ``PER_CLASS`` rows per class (first class of multi-label rows), every class in index order."""
    picked: dict[int, list[int]] = {}
    label = findings.table.label
    for row in range(len(findings.table)):
        k = label[row]
        if k >= 0 and len(picked.setdefault(k, [])) < PER_CLASS:
            picked[k].append(row)
    return [(findings.classes[k] if k < len(findings.classes) else str(k), picked.get(k, []))
            for k in range(len(findings.classes))]
