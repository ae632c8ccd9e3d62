"""Inspect's findings as one self-contained HTML page: no script, no external file or font.

Histograms are inline SVG (one ``rect.bar`` per class), images are JPEG data URIs, and the
per-class contact sheet is also written as ``OUT-contact.png`` beside the page.  Leaks come
first: they are the finding that changes what a validation score means.
"""

from __future__ import annotations

import os
from html import escape
from typing import Any

from imgprep.inspect import thumbs
from imgprep.inspect.analyse import Findings
from imgprep.inspect.text import _size

PAIRS_SHOWN = 60
BAR_W = 360

CSS = """
:root{--ink:#1f2430;--muted:#6b7280;--line:#e5e7eb;--bg:#f6f7f9;--card:#fff;--accent:#2563eb;--bad:#dc2626;
--warn:#b45309;--ok:#059669}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--ink);
font:15px/1.5 "DejaVu Sans",system-ui,-apple-system,"Segoe UI",sans-serif}
main{max-width:1180px;margin:0 auto;padding:28px 24px 60px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:34px 0 12px}h3{font-size:16px;margin:0 0 10px}
.sub{color:var(--muted);margin:0 0 22px}.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 18px;min-width:140px}
.card b{display:block;font-size:24px}.card span{color:var(--muted);font-size:13px}
.card.bad{border-color:#fecaca;background:#fef2f2}.card.bad b{color:var(--bad)}
.card.good b{color:var(--ok)}
.panel{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 20px;margin-bottom:16px}
.splits{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px}
svg text{font:12px "DejaVu Sans",sans-serif;fill:var(--ink)}svg .count{fill:var(--muted)}
rect.bar{fill:var(--accent)}rect.bar.zero{fill:var(--bad)}
table.kv{border-collapse:collapse;margin-top:10px;font-size:13px}
table.kv td{padding:2px 14px 2px 0}table.kv td:first-child{color:var(--muted)}
.warn{color:var(--warn);font-size:13px;margin:6px 0 0}.warn::before{content:"\\26A0  "}
.pairs{display:grid;grid-template-columns:repeat(auto-fill,minmax(370px,1fr));gap:14px}
.pair{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px}
.pair.leak{border-color:#fca5a5;box-shadow:0 0 0 2px #fee2e2}
.pair .imgs{display:flex;gap:8px;justify-content:center;align-items:center}
.pair figure{margin:0;text-align:center;width:170px}
.pair img{max-width:168px;max-height:168px;border-radius:6px;background:#e5e7eb}
.pair figcaption{font-size:12px;color:var(--muted);word-break:break-all}
.tag{display:inline-block;font-size:11px;font-weight:bold;letter-spacing:.04em;border-radius:4px;padding:1px 6px;
margin-right:6px}.tag.leak{background:var(--bad);color:#fff}.tag.dup{background:#e0e7ff;color:#3730a3}
.meta{font-size:13px;margin-bottom:8px}.sheet h3{margin-top:12px}
.strip{display:flex;gap:6px;flex-wrap:wrap}.strip img{width:104px;height:104px;object-fit:cover;border-radius:6px}
.none{color:var(--ok)}footer{color:var(--muted);font-size:12px;margin-top:40px}
"""


def write_html(findings: Findings, out: str) -> list[str]:
    """Write the page and its contact sheet PNG; return both paths."""
    rows = thumbs.samples(findings)
    wanted = {r for _, members in rows for r in members}
    pairs = _pairs(findings)
    wanted |= {r for pair in pairs[:PAIRS_SHOWN] for r in pair[0]}
    images = {r: img for r in sorted(wanted) if (img := thumbs.thumbnail(findings, r, thumbs.SIDE)) is not None}
    sheet_path = os.path.splitext(out)[0] + "-contact.png"
    thumbs.contact_sheet(findings, rows, images).save(sheet_path, optimize=True)
    uris = {r: thumbs.data_uri(img) for r, img in images.items()}
    page = _page(findings, pairs, rows, uris, os.path.basename(sheet_path))
    tmp = out + ".tmp"
    # A file name that is not UTF-8 reaches here with surrogate escapes; the page shows U+FFFD
    # for its undecodable bytes, as the terminal report does.
    page = page.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(page)
    os.replace(tmp, out)
    return [out, sheet_path]


def _pairs(findings: Findings) -> list[tuple[list[int], str, bool]]:
    """(rows, description, leak) per duplicate group, leaks first."""
    return [(f.rows, f"{len(f.rows)} images, " + ("identical bytes" if f.exact else "near copies"), f.leak)
            for f in findings.groups]


def _page(findings: Findings, pairs: list[tuple[list[int], str, bool]], rows: list[tuple[str, list[int]]],
          uris: dict[int, str], sheet: str) -> str:
    doc = findings.to_json()
    s = doc["summary"]
    title = f"imgprep inspect — {findings.collection.folder}"
    cards = [
        ("images", f"{s['images']:,}", ""), ("splits", str(len(doc["splits"])), ""),
        ("classes", str(len(doc["classes"])), ""),
        ("duplicate groups", str(s["duplicate_groups"]), ""),
        ("leaks across splits", str(s["leaks"]), "bad" if s["leaks"] else "good"),
    ]
    if s["unreadable"]:
        cards.append(("unreadable images", str(s["unreadable"]), "bad"))
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>",
        '<meta name=viewport content="width=device-width,initial-scale=1">',
        f"<style>{CSS}</style></head><body><main>",
        f"<h1>{escape(title)}</h1>",
        f'<p class=sub>{escape(doc["hash"]["kind"])}; near duplicates are within {doc["hash"]["threshold_bits"]} '
        "bits. A pair in two splits is a leak: the model is scored on images it trained on."
        + (f" {doc['hash']['images_too_small']:,} images under {doc['hash']['min_side']} px are checked for "
           "exact copies only." if doc["hash"]["images_too_small"] else "") + "</p>",
        '<div class=cards id=summary>',
        *(f'<div class="card {cls}"><b>{value}</b><span>{escape(label)}</span></div>' for label, value, cls in cards),
        "</div>",
        "<h2>Duplicates and leaks</h2>",
        _pair_section(findings, pairs, uris),
        "<h2>Splits</h2><div class=splits>",
        *(_split_panel(split) for split in doc["splits"]),
        "</div>",
        f"<h2>Contact sheet</h2><div class='panel sheet'><p class=sub>Up to {thumbs.PER_CLASS} images per class "
        f"(also saved as {escape(sheet)}).</p>",
        *(_strip(name, members, uris) for name, members in rows),
        "</div>",
        "<footer>Written by imgprep inspect. Self-contained: no scripts, no external files.</footer>",
        "</main></body></html>\n",
    ]
    return "\n".join(parts)


def _pair_section(findings: Findings, pairs: list[tuple[list[int], str, bool]], uris: dict[int, str]) -> str:
    if not pairs:
        return '<div class=panel><p class=none>No exact or near duplicates found.</p></div>'
    cells = []
    for rows, how, leak in pairs[:PAIRS_SHOWN]:
        tag = '<span class="tag leak">LEAK</span>' if leak else '<span class="tag dup">DUPLICATE</span>'
        figures = "".join(_figure(findings.ref(r), uris.get(r, "")) for r in rows[:3])
        cells.append(f'<div class="pair{" leak" if leak else ""}"><div class=meta>{tag}{escape(how)}</div>'
                     f"<div class=imgs>{figures}</div></div>")
    more = f"<p class=sub>{len(pairs) - PAIRS_SHOWN} more in --json.</p>" if len(pairs) > PAIRS_SHOWN else ""
    return f"<div class=pairs>{''.join(cells)}</div>{more}"


def _figure(ref: dict[str, Any], uri: str) -> str:
    alt = f"{ref['split']} id {ref['id']}"
    return (f'<figure data-split="{escape(ref["split"])}" data-id="{ref["id"]}"><img src="{uri}" alt="{escape(alt)}">'
            f"<figcaption><b>{escape(ref['split'])}</b> id {ref['id']}<br>{escape(ref['path'])}</figcaption></figure>")


def _histogram(classes: list[dict[str, Any]]) -> str:
    label_w, row_h = 150, 22
    top = max((c["count"] for c in classes), default=0) or 1
    height = row_h * len(classes) + 6
    bars = []
    for i, c in enumerate(classes):
        y = 3 + i * row_h
        w = max(BAR_W * c["count"] / top, 2)
        cls = "bar zero" if c["count"] == 0 else "bar"
        name = c["name"] if len(c["name"]) <= 22 else c["name"][:21] + "…"
        bars.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(name)}</text>'
            f'<rect class="{cls}" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 7}" rx="3">'
            f"<title>{escape(c['name'])}: {c['count']}</title></rect>"
            f'<text class=count x="{label_w + w + 6:.1f}" y="{y + 15}">{c["count"]:,}</text>')
    return (f'<svg class=histogram width="{label_w + BAR_W + 70}" height="{height}" role="img" '
            f'aria-label="images per class">{"".join(bars)}</svg>')


def _split_panel(split: dict[str, Any]) -> str:
    rows = [("images", f"{split['images']:,}"), ("source", split["source"])]
    if split["width"]:
        w, h, e = split["width"], split["height"], split["encoded_bytes"]
        rows += [("width", f"{w['min']} – {w['max']} (median {w['median']})"),
                 ("height", f"{h['min']} – {h['max']} (median {h['median']})"),
                 ("commonest sizes", ", ".join(f"{c['width']}×{c['height']} ({c['images']:,})"
                                               for c in split["common_sizes"][:3])),
                 ("encoded", f"median {_size(e['median'])}, p95 {_size(e['p95'])}, total {_size(e['total'])}")]
    if "label_cardinality" in split:
        card = split["label_cardinality"]
        rows.append(("labels per image", f"mean {card['mean']} — " + ", ".join(
            f"{k}: {n:,}" for k, n in card["histogram"].items())))
    table = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in rows)
    warnings = "".join(f"<p class=warn>{escape(w)}</p>" for w in split["warnings"])
    return (f'<section class=panel data-split="{escape(split["name"])}"><h3>{escape(split["name"])}</h3>'
            f"{_histogram(split['classes'])}<table class=kv>{table}</table>{warnings}</section>")


def _strip(name: str, members: list[int], uris: dict[int, str]) -> str:
    imgs = "".join(f'<img src="{uris[r]}" alt="">' for r in members if uris.get(r))
    return f"<h3>{escape(name)} <span class=sub>({len(members)})</span></h3><div class=strip>{imgs}</div>"
