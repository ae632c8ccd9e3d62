"""Small colour thumbnails for the report: data URIs for the page, and the contact sheet PNG."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from imgprep.inspect.analyse import Findings

SIDE = 168  # pair thumbnails
CELL = 112  # contact sheet cells
PER_CLASS = 8
MAX_CLASSES = 120


def thumbnail(findings: Findings, row: int, side: int) -> Image.Image | None:
    """Row ``row``'s image fitted in ``side`` x ``side`` (JPEGs decoded at a DCT reduction)."""
    split = findings.collection.splits[findings.table.split[row]]
    try:
        with Image.open(io.BytesIO(split.fetch(findings.table.locator[row]))) as img:
            img.draft("RGB", (side, side))
            out = img.convert("RGB")
    except (OSError, ValueError):
        return None
    out.thumbnail((side, side), Image.BILINEAR)
    return out


def data_uri(img: Image.Image | None) -> str:
    if img is None:
        return ""
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=82)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def samples(findings: Findings) -> list[tuple[str, list[int]]]:
    """Up to ``PER_CLASS`` rows per class (first class of multi-label rows), classes in index order."""
    picked: dict[int, list[int]] = {}
    label = findings.table.label
    for row in range(len(findings.table)):
        k = label[row]
        if 0 <= k < MAX_CLASSES and len(picked.setdefault(k, [])) < PER_CLASS:
            picked[k].append(row)
    return [(findings.classes[k] if k < len(findings.classes) else str(k), picked.get(k, []))
            for k in range(min(len(findings.classes), MAX_CLASSES))]


def contact_sheet(findings: Findings, rows: Sequence[tuple[str, list[int]]], thumbs: dict[int, Image.Image]
                  ) -> Image.Image:
    """One strip per class: its name, then its sample images, fitted and centred in square cells."""
    label_w, pad = 180, 6
    sheet = Image.new("RGB", (label_w + PER_CLASS * (CELL + pad) + pad, len(rows) * (CELL + pad) + pad),
                      (248, 249, 251))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=15)
    for r, (name, members) in enumerate(rows):
        y = pad + r * (CELL + pad)
        draw.text((pad + 4, y + CELL // 2), f"{name} ({len(members)})", fill=(40, 44, 52), font=font, anchor="lm")
        for c, row in enumerate(members):
            img = thumbs.get(row)
            if img is None:
                continue
            x = label_w + pad + c * (CELL + pad)
            draw.rectangle((x, y, x + CELL - 1, y + CELL - 1), fill=(230, 232, 236))
            fitted = img.copy()
            fitted.thumbnail((CELL, CELL), Image.BILINEAR)
            sheet.paste(fitted, (x + (CELL - fitted.width) // 2, y + (CELL - fitted.height) // 2))
    return sheet
