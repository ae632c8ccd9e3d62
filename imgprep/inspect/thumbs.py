"""Small colour thumbnails for the report, as JPEG bytes: one decode per image for every size it needs."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from imgprep.inspect.analyse import Findings

SIDE = 168  # group card thumbnails
TILE = 96  # class tiles (shown at 64 CSS px: sharp on a 1.5x screen)
PER_CLASS = 4
QUALITY = 78


@dataclass(frozen=True)
class Thumb:
    data: bytes  # JPEG
    width: int
    height: int


def render(findings: Findings, row: int, sides: Sequence[int]) -> list[Thumb] | None:
    """Row ``row``'s image fitted in each of ``sides`` (JPEGs decoded at a DCT reduction); None when unreadable."""
    split = findings.collection.splits[findings.table.split[row]]
    largest = max(sides)
    try:
        with Image.open(io.BytesIO(split.fetch(findings.table.locator[row]))) as img:
            img.draft("RGB", (largest, largest))
            full = img.convert("RGB")
    except (OSError, ValueError):
        return None
    out = []
    for side in sides:
        small = full.copy()
        small.thumbnail((side, side), Image.BILINEAR)
        buf = io.BytesIO()
        small.save(buf, "JPEG", quality=QUALITY)
        out.append(Thumb(buf.getvalue(), small.width, small.height))
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
