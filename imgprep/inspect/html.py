"""Inspect's findings as one self-contained HTML page: no script, no external file or font.

Built to be worked through at 1,000 classes: the summary comes first, a sticky bar navigates,
every section is a ``<details>`` that folds, and each list is capped on the page with the whole
of it a click away.  Duplicate groups (leaks first, then label conflicts, then the rest) show as
cards with thumbnails for the first ``CARDS`` and as a table for up to ``TABLE_ROWS``; every
group is also written beside the page as ``OUT-duplicates.jsonl`` (what ``--dedup-report``
writes).  The class table shows each class's count and split shares and sorts by count or by
index with a CSS-only toggle.  The contact sheet is paged: ``OUT-contact.png``,
``OUT-contact-2.png``, … with ``thumbs.SHEET_CLASSES`` classes per page as tiles, and the page
shows the same tiles in folded groups.
"""

from __future__ import annotations

import os
from html import escape
from typing import Any

from imgprep.inspect import thumbs
from imgprep.inspect.analyse import Findings
from imgprep.inspect.text import _size
from imgprep.splits.dedup import Finding

CARDS = 24  # group cards with thumbnails per section
CARD_IMAGES = 4  # thumbnails per card
TABLE_ROWS = 2000  # groups listed per section's table; the rest are in OUT-duplicates.jsonl
WARNINGS = 8  # warnings shown per split
PAGE_CLASSES = 50  # contact-sheet classes per folded group on the page
BAR_W = 360
SPLIT_COLOURS = ("#2563eb", "#f59e0b", "#10b981", "#8b5cf6", "#ef4444", "#14b8a6")

CSS = """
:root{--ink:#1f2430;--muted:#6b7280;--line:#e5e7eb;--bg:#f6f7f9;--card:#fff;--accent:#2563eb;--bad:#dc2626;
--warn:#b45309;--ok:#059669}
*{box-sizing:border-box}html{scroll-padding-top:56px}body{margin:0;background:var(--bg);color:var(--ink);
font:15px/1.5 "DejaVu Sans",system-ui,-apple-system,"Segoe UI",sans-serif}
nav{position:sticky;top:0;z-index:2;background:#111827;padding:8px 24px;display:flex;gap:18px;flex-wrap:wrap}
nav a{color:#e5e7eb;text-decoration:none;font-size:14px}nav a:hover{color:#fff;text-decoration:underline}
nav b{color:#fca5a5}
main{max-width:1180px;margin:0 auto;padding:22px 24px 60px}
h1{font-size:26px;margin:0 0 4px}h3{font-size:16px;margin:0 0 10px}
details.section{margin-top:26px}details.section>summary{font-size:19px;font-weight:bold;cursor:pointer;
margin-bottom:12px}details.more>summary{cursor:pointer;color:var(--accent);margin:10px 0}
.sub{color:var(--muted);margin:0 0 18px}.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 18px;min-width:140px;
text-decoration:none;color:inherit}
.card b{display:block;font-size:24px}.card span{color:var(--muted);font-size:13px}
.card.bad{border-color:#fecaca;background:#fef2f2}.card.bad b{color:var(--bad)}
.card.good b{color:var(--ok)}
.panel{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 20px;margin-bottom:16px}
.splits{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px}
svg text{font:12px "DejaVu Sans",sans-serif;fill:var(--ink)}svg .count{fill:var(--muted)}
rect.bar{fill:var(--accent)}rect.bar.zero{fill:var(--bad)}
table.kv{border-collapse:collapse;margin-top:10px;font-size:13px}
table.kv td{padding:2px 14px 2px 0}table.kv td:first-child{color:var(--muted)}
table.list{border-collapse:collapse;font-size:13px;width:100%;background:var(--card)}
table.list th{position:sticky;top:40px;background:#f3f4f6;text-align:left;padding:4px 8px;font-weight:600}
table.list td{border-top:1px solid var(--line);padding:3px 8px;vertical-align:top;word-break:break-all}
td.n{text-align:right;white-space:nowrap}
.share{display:flex;height:12px;width:160px;border-radius:3px;overflow:hidden;background:#e5e7eb}
.share i{display:block;height:100%}.key{display:inline-block;width:10px;height:10px;border-radius:2px;
margin:0 4px 0 10px}
.warn{color:var(--warn);font-size:13px;margin:6px 0 0}.warn::before{content:"\\26A0  "}
.groups{display:grid;grid-template-columns:repeat(auto-fill,minmax(370px,1fr));gap:14px}
.group{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px}
.group.leak{border-color:#fca5a5;box-shadow:0 0 0 2px #fee2e2}
.group.conflict{border-color:#fcd34d;box-shadow:0 0 0 2px #fef3c7}
.group .imgs{display:flex;gap:8px;justify-content:center;align-items:flex-start;flex-wrap:wrap}
.group figure{margin:0;text-align:center;width:170px}
.group img{max-width:168px;max-height:168px;border-radius:6px;background:#e5e7eb}
.group figcaption{font-size:12px;color:var(--muted);word-break:break-all}
.tag{display:inline-block;font-size:11px;font-weight:bold;letter-spacing:.04em;border-radius:4px;padding:1px 6px;
margin-right:6px}.tag.leak{background:var(--bad);color:#fff}.tag.dup{background:#e0e7ff;color:#3730a3}
.tag.conflict{background:#f59e0b;color:#fff}.tag.drop{background:#fee2e2;color:var(--bad)}
.meta{font-size:13px;margin-bottom:8px}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:10px}
.tile{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px}
.tile h3{font-size:13px;margin:0 0 6px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.tile .strip{display:flex;gap:4px}.tile img{width:60px;height:60px;object-fit:cover;border-radius:4px}
.none{color:var(--ok)}footer{color:var(--muted);font-size:12px;margin-top:40px}
.sorter input{margin-left:12px}#by-index:checked~.by-count,#by-count:checked~.by-index{display:none}
"""


def write_html(findings: Findings, out: str) -> list[str]:
    """Write the page, its contact sheet pages and (with duplicates) the group list; return the paths."""
    base = os.path.splitext(out)[0]
    rows = thumbs.samples(findings)
    wanted = {r for _, members in rows for r in members}
    sections = _sections(findings)
    wanted |= {r for _, _, found in sections for f in found[:CARDS] for r in f.rows[:CARD_IMAGES]}
    images = {r: img for r in sorted(wanted) if (img := thumbs.thumbnail(findings, r, thumbs.SIDE)) is not None}
    written = [out]
    sheets = []
    for number, page in enumerate(thumbs.sheet_pages(rows)):
        path = f"{base}-contact.png" if number == 0 else f"{base}-contact-{number + 1}.png"
        thumbs.contact_sheet(page, images).save(path, optimize=True)
        sheets.append(os.path.basename(path))
        written.append(path)
    listing = None
    if findings.groups:
        listing = f"{base}-duplicates.jsonl"
        with open(listing, "w", encoding="utf-8") as fh:
            fh.writelines(findings.report_lines())
        written.append(listing)
    uris = {r: thumbs.data_uri(img) for r, img in images.items()}
    page = _page(findings, sections, rows, uris, sheets, os.path.basename(listing) if listing else None)
    tmp = out + ".tmp"
    # A file name that is not UTF-8 reaches here with surrogate escapes; the page shows U+FFFD
    # for its undecodable bytes, as the terminal report does.
    page = page.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(page)
    os.replace(tmp, out)
    return written


def _sections(findings: Findings) -> list[tuple[str, str, list[Finding]]]:
    """(anchor, title, groups): leaks, label conflicts that are not leaks, other groups."""
    leaks = [f for f in findings.groups if f.leak]
    conflicts = [f for f in findings.groups if f.conflict and not f.leak]
    other = [f for f in findings.groups if not f.leak and not f.conflict]
    return [("leaks", "Leaks: groups in more than one split", leaks),
            ("conflicts", "Label conflicts: groups with more than one label", conflicts),
            ("groups", "Other duplicate groups (one split, one label)", other)]


def _page(findings: Findings, sections: list[tuple[str, str, list[Finding]]], rows: list[tuple[str, list[int]]],
          uris: dict[int, str], sheets: list[str], listing: str | None) -> str:
    doc = findings.to_json(groups=0)
    title = f"imgprep inspect — {findings.collection.folder}"
    nav = [("summary", "Summary"), *((a, f"{t.split(':')[0]} ({len(g):,})") for a, t, g in sections),
           ("classes", f"Classes ({len(doc['classes']):,})"), ("splits", "Splits"), ("contact", "Contact sheet")]
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>",
        '<meta name=viewport content="width=device-width,initial-scale=1">',
        f"<style>{CSS}</style></head><body>",
        "<nav>" + "".join(f'<a href="#{a}">{escape(label)}</a>' for a, label in nav) + "</nav><main>",
        f"<h1>{escape(title)}</h1>",
        _summary(findings, doc, listing),
        *(_group_section(findings, anchor, heading, found, uris, listing) for anchor, heading, found in sections),
        _class_section(doc),
        "<details class=section id=splits open><summary>Splits</summary><div class=splits>",
        *(_split_panel(split) for split in doc["splits"]),
        "</div></details>",
        _contact_section(rows, uris, sheets),
        "<footer>Written by imgprep inspect. Self-contained: no scripts, no external files.</footer>",
        "</main></body></html>\n",
    ]
    return "\n".join(parts)


def _summary(findings: Findings, doc: dict[str, Any], listing: str | None) -> str:
    s = doc["summary"]
    cards = [
        ("images", f"{s['images']:,}", "", "splits"), ("splits", str(len(doc["splits"])), "", "splits"),
        ("classes", f"{len(doc['classes']):,}", "", "classes"),
        ("duplicate groups", f"{s['duplicate_groups']:,}", "", "groups"),
        (f"leaks ({s['leaked_images']:,} images to drop)", f"{s['leaks']:,}", "bad" if s["leaks"] else "good",
         "leaks"),
        ("label conflicts", f"{s['label_conflicts']:,}", "bad" if s["label_conflicts"] else "good", "conflicts"),
    ]
    if s["low_information"]:
        cards.append(("low-information images", f"{s['low_information']:,}", "", "summary"))
    if s["unreadable"]:
        cards.append(("unreadable images", f"{s['unreadable']:,}", "bad", "summary"))
    h = doc["hash"]
    note = (f"{escape(h['kind'])}; near duplicates are within {h['threshold_bits']} bits "
            f"({h['window_threshold_bits']} for crop windows). A group in two splits is a leak: the model is "
            "scored on images it trained on; a group with two labels is a label conflict.")
    if h["images_too_small"]:
        note += f" {h['images_too_small']:,} images under {h['min_side']} px are matched by identical bytes only."
    if h["low_information"]:
        note += f" {h['low_information']:,} flat images are matched by identical bytes only."
    if listing:
        note += f' Every group, with the images to drop: <a href="{escape(listing)}">{escape(listing)}</a>.'
    return ("<section id=summary>" + f"<p class=sub>{note}</p><div class=cards>"
            + "".join(f'<a class="card {cls}" href="#{a}"><b>{value}</b><span>{escape(label)}</span></a>'
                      for label, value, cls, a in cards) + "</div></section>")


def _group_section(findings: Findings, anchor: str, heading: str, found: list[Finding], uris: dict[int, str],
                   listing: str | None) -> str:
    opened = " open" if found and anchor != "groups" else ""
    head = f"<details class=section id={anchor}{opened}><summary>{escape(heading)}: {len(found):,}</summary>"
    if not found:
        return head + '<div class=panel><p class=none>None found.</p></div></details>'
    cards = "".join(_card(findings, f, uris) for f in found[:CARDS])
    shown = f"<p class=sub>The first {min(CARDS, len(found)):,} of {len(found):,}, largest first.</p>"
    rest = found[:TABLE_ROWS]
    table = (f"<details class=more><summary>List all {len(found):,} as a table"
             + (f" (the first {TABLE_ROWS:,} here; every one in {escape(listing or '')})" if len(found) > TABLE_ROWS
                else "") + "</summary>" + _group_table(findings, rest) + "</details>")
    return f"{head}{shown}<div class=groups>{cards}</div>{table}</details>"


def _card(findings: Findings, f: Finding, uris: dict[int, str]) -> str:
    tags = ('<span class="tag leak">LEAK</span>' if f.leak else "") + (
        '<span class="tag conflict">CONFLICT</span>' if f.conflict else "") or '<span class="tag dup">DUPLICATE</span>'
    how = f"{len(f.rows):,} images, " + ("identical files" if f.exact else "near copies")
    if f.drop:
        how += f"; drop {len(f.drop):,} to close the leak"
    drop = set(f.drop)
    figures = "".join(_figure(findings, r, uris.get(r, ""), r in drop) for r in f.rows[:CARD_IMAGES])
    more = f"<p class=sub>+{len(f.rows) - CARD_IMAGES:,} more</p>" if len(f.rows) > CARD_IMAGES else ""
    cls = "group" + (" leak" if f.leak else "") + (" conflict" if f.conflict else "")
    return f'<div class="{cls}"><div class=meta>{tags}{escape(how)}</div><div class=imgs>{figures}</div>{more}</div>'


def _figure(findings: Findings, row: int, uri: str, drop: bool) -> str:
    ref = findings.ref(row)
    alt = f"{ref['split']} id {ref['id']}"
    tag = '<span class="tag drop">DROP</span>' if drop else ""
    return (f'<figure data-split="{escape(ref["split"])}" data-id="{ref["id"]}"><img src="{uri}" alt="{escape(alt)}">'
            f"<figcaption>{tag}<b>{escape(ref['split'])}</b> id {ref['id']} · {escape(findings.class_of(row))}<br>"
            f"{escape(ref['path'])}</figcaption></figure>")


def _group_table(findings: Findings, found: list[Finding]) -> str:
    body = []
    for f in found:
        drop = set(f.drop)
        refs = "<br>".join(
            ("<b>drop</b> " if r in drop else "") + escape(f"{ref['split']} id {ref['id']} ({ref['path']})")
            for r in f.rows[:8] for ref in (findings.ref(r),))
        more = f"<br>… +{len(f.rows) - 8:,} more" if len(f.rows) > 8 else ""
        classes = sorted({findings.class_of(r) for r in f.rows})
        body.append(f"<tr><td class=n>{len(f.rows):,}</td><td>{'identical' if f.exact else 'near'}</td>"
                    f"<td>{escape(', '.join(classes[:4]))}{'…' if len(classes) > 4 else ''}</td>"
                    f"<td>{refs}{more}</td></tr>")
    return ("<table class=list><thead><tr><th>images</th><th>kind</th><th>classes</th><th>members</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _class_section(doc: dict[str, Any]) -> str:
    names = [sp["name"] for sp in doc["splits"]]
    counts = [[sp["classes"][k]["count"] if k < len(sp["classes"]) else 0 for sp in doc["splits"]]
              for k in range(len(doc["classes"]))]
    legend = "".join(f'<span class=key style="background:{_colour(i)}"></span>{escape(n)}' for i, n in enumerate(names))
    rows = [(k, doc["classes"][k], c) for k, c in enumerate(counts)]
    by_count = sorted(rows, key=lambda t: (-sum(t[2]), t[0]))
    head = ("<thead><tr><th>#</th><th>class</th><th>images</th>" + "".join(f"<th>{escape(n)}</th>" for n in names)
            + "<th>split shares</th></tr></thead>")
    return (f"<details class=section id=classes open><summary>Classes: {len(rows):,}</summary>"
            f"<div class=panel><p class=sub>Images per class and split (positive labels for multi-label data); "
            f"shares: {legend}</p><div class=sorter>Sort by <input type=radio name=sort id=by-count checked>"
            "<label for=by-count>count</label><input type=radio name=sort id=by-index><label for=by-index>index"
            f"</label><table class='list by-count'>{head}<tbody>{_class_rows(by_count)}</tbody></table>"
            f"<table class='list by-index'>{head}<tbody>{_class_rows(rows)}</tbody></table></div></div></details>")


def _class_rows(rows: list[tuple[int, str, list[int]]]) -> str:
    out = []
    for k, name, counts in rows:
        total = sum(counts) or 1
        share = "".join(f'<i style="width:{100 * c / total:.1f}%;background:{_colour(i)}" title="{c:,}"></i>'
                        for i, c in enumerate(counts) if c)
        out.append(f"<tr data-class={k}><td class=n>{k}</td><td>{escape(name)}</td><td class=n>{sum(counts):,}</td>"
                   + "".join(f"<td class=n>{c:,}</td>" for c in counts)
                   + f"<td><div class=share>{share}</div></td></tr>")
    return "".join(out)


def _colour(i: int) -> str:
    return SPLIT_COLOURS[i % len(SPLIT_COLOURS)]


def _histogram(classes: list[dict[str, Any]]) -> str:
    """Images per class, largest first: labelled bars up to 40 classes, a bar chart without labels beyond."""
    ordered = sorted(classes, key=lambda c: (-c["count"], c["index"]))
    top = max((c["count"] for c in ordered), default=0) or 1
    if len(ordered) > 40:
        width, height = 560, 120
        step = width / len(ordered)
        bars = "".join(
            f'<rect class="{"bar zero" if c["count"] == 0 else "bar"}" x="{i * step:.2f}" y="{height - h:.1f}" '
            f'width="{max(step, 0.5):.2f}" height="{h:.1f}"><title>{escape(c["name"])}: {c["count"]:,}</title></rect>'
            for i, c in enumerate(ordered) for h in (max(height * c["count"] / top, 1),))
        return (f'<svg class=histogram width="{width}" height="{height + 18}" role="img" aria-label="images per '
                f'class, largest first">{bars}<text x="0" y="{height + 14}">{len(ordered):,} classes, largest '
                f'{ordered[0]["count"]:,}, smallest {ordered[-1]["count"]:,}</text></svg>')
    label_w, row_h = 150, 22
    bars_ = []
    for i, c in enumerate(ordered):
        y = 3 + i * row_h
        w = max(BAR_W * c["count"] / top, 2)
        cls = "bar zero" if c["count"] == 0 else "bar"
        name = c["name"] if len(c["name"]) <= 22 else c["name"][:21] + "…"
        bars_.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(name)}</text>'
            f'<rect class="{cls}" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 7}" rx="3">'
            f"<title>{escape(c['name'])}: {c['count']}</title></rect>"
            f'<text class=count x="{label_w + w + 6:.1f}" y="{y + 15}">{c["count"]:,}</text>')
    return (f'<svg class=histogram width="{label_w + BAR_W + 70}" height="{row_h * len(ordered) + 6}" role="img" '
            f'aria-label="images per class, largest first">{"".join(bars_)}</svg>')


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
    warnings = split["warnings"]
    shown = "".join(f"<p class=warn>{escape(w)}</p>" for w in warnings[:WARNINGS])
    if len(warnings) > WARNINGS:
        shown += (f"<details class=more><summary>{len(warnings) - WARNINGS:,} more warnings</summary>"
                  + "".join(f"<p class=warn>{escape(w)}</p>" for w in warnings[WARNINGS:]) + "</details>")
    return (f'<section class=panel data-split="{escape(split["name"])}"><h3>{escape(split["name"])}</h3>'
            f"{_histogram(split['classes'])}<table class=kv>{table}</table>{shown}</section>")


def _contact_section(rows: list[tuple[str, list[int]]], uris: dict[int, str], sheets: list[str]) -> str:
    files = ", ".join(escape(s) for s in sheets)
    groups = []
    for lo in range(0, len(rows), PAGE_CLASSES):
        part = rows[lo: lo + PAGE_CLASSES]
        tiles = "".join(_tile(name, members, uris) for name, members in part)
        opened = " open" if lo == 0 else ""
        groups.append(f"<details class=more{opened}><summary>Classes {lo + 1:,}–{lo + len(part):,}</summary>"
                      f"<div class=tiles>{tiles}</div></details>")
    return (f"<details class=section id=contact open><summary>Contact sheet</summary><p class=sub>Up to "
            f"{thumbs.PER_CLASS} images per class, {len(rows):,} classes (also saved as {files}).</p>"
            + "".join(groups) + "</details>")


def _tile(name: str, members: list[int], uris: dict[int, str]) -> str:
    imgs = "".join(f'<img src="{uris[r]}" alt="">' for r in members if uris.get(r))
    return (f'<div class=tile><h3 title="{escape(name)}">{escape(name)} <span class=sub>({len(members)})</span>'
            f"</h3><div class=strip>{imgs}</div></div>")
