"""Small colour thumbnails for the report: data URIs for the page, and the contact sheet PNG."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from imgprep.inspect.analyse import Findings

SIDE = 168  # group card thumbnails
CELL = 96  # contact sheet cells
PER_CLASS = 4
SHEET_CLASSES = 96  # classes per contact sheet page
TILE_COLUMNS = 4  # class tiles per row of a sheet page


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
    """Up to ``PER_CLASS`` rows per class (first class of multi-label rows), every class in index order."""
    picked: dict[int, list[int]] = {}
    label = findings.table.label
    for row in range(len(findings.table)):
        k = label[row]
        if k >= 0 and len(picked.setdefault(k, [])) < PER_CLASS:
            picked[k].append(row)
    return [(findings.classes[k] if k < len(findings.classes) else str(k), picked.get(k, []))
            for k in range(len(findings.classes))]


def sheet_pages(rows: Sequence[tuple[str, list[int]]]) -> list[Sequence[tuple[str, list[int]]]]:
    """The contact sheet in pages of ``SHEET_CLASSES`` classes (one page even with none)."""
    return [rows[lo: lo + SHEET_CLASSES] for lo in range(0, len(rows), SHEET_CLASSES)] or [rows]


def contact_sheet(rows: Sequence[tuple[str, list[int]]], thumbs: dict[int, Image.Image]) -> Image.Image:
    """One tile per class, ``TILE_COLUMNS`` to a row: its name, then its sample images fitted in square cells."""
    pad, label_h = 6, 22
    tile_w = PER_CLASS * (CELL + pad) + pad
    tile_h = label_h + CELL + 2 * pad
    lines = max(1, -(-len(rows) // TILE_COLUMNS))
    sheet = Image.new("RGB", (TILE_COLUMNS * (tile_w + pad) + pad, lines * (tile_h + pad) + pad), (248, 249, 251))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=14)
    for t, (name, members) in enumerate(rows):
        x0 = pad + (t % TILE_COLUMNS) * (tile_w + pad)
        y0 = pad + (t // TILE_COLUMNS) * (tile_h + pad)
        draw.rectangle((x0, y0, x0 + tile_w - 1, y0 + tile_h - 1), fill=(255, 255, 255), outline=(229, 231, 235))
        label = name if len(name) <= 40 else name[:39] + "…"
        draw.text((x0 + pad, y0 + pad + label_h // 2 - 2), f"{label} ({len(members)})", fill=(40, 44, 52), font=font,
                  anchor="lm")
        for c, row in enumerate(members):
            img = thumbs.get(row)
            if img is None:
                continue
            x = x0 + pad + c * (CELL + pad)
            y = y0 + pad + label_h
            draw.rectangle((x, y, x + CELL - 1, y + CELL - 1), fill=(230, 232, 236))
            fitted = img.copy()
            fitted.thumbnail((CELL, CELL), Image.BILINEAR)
            sheet.paste(fitted, (x + (CELL - fitted.width) // 2, y + (CELL - fitted.height) // 2))
    return sheet
