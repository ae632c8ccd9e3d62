"""Inspect's findings as one HTML page, its thumbnails as files beside it: no script, nothing fetched
from outside the page's own folder.

Built to be worked through at 1,000 classes: the summary comes first, a sticky bar navigates,
every section is a ``<details>`` that folds, long lists and tables start folded, and each list
is capped on the page with the whole of it a click away.  Every count comes from
:mod:`imgprep.inspect.counts`.  Duplicate groups show as cards with thumbnails (:mod:`cards`);
every group is also written beside the page as ``OUT-duplicates.jsonl`` (what ``--dedup-report``
writes).  Thumbnails are small JPEGs in ``OUT-thumbs/`` loaded lazily, so the page stays small
and opens at once; :mod:`assets` writes them before the page.
"""

from __future__ import annotations

from html import escape
from typing import Any

from imgprep.inspect import cards, thumbs
from imgprep.inspect.analyse import Findings
from imgprep.inspect.assets import PageFiles, Shown
from imgprep.inspect.counts import Counts, counts
from imgprep.inspect.text import _size

WARNINGS = 8  # warnings shown per split
OPEN_CLASSES = 40  # a class table longer than this starts folded
PAGE_CLASSES = 50  # class tiles per folded group
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
.splits{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(520px,100%),1fr));gap:16px}
svg.histogram{display:block;max-width:100%;height:auto}
svg text{font:12px "DejaVu Sans",sans-serif;fill:var(--ink)}svg .count{fill:var(--muted)}
rect.bar{fill:var(--accent)}rect.bar.zero{fill:var(--bad)}
table.kv{border-collapse:collapse;margin-top:10px;font-size:13px;width:100%;table-layout:fixed}
table.kv td{padding:2px 14px 2px 0;overflow-wrap:anywhere}table.kv td:first-child{color:var(--muted);width:10em}
table.list{border-collapse:collapse;font-size:13px;width:100%;background:var(--card)}
table.list th{position:sticky;top:40px;background:#f3f4f6;text-align:left;padding:4px 8px;font-weight:600}
table.list td{border-top:1px solid var(--line);padding:3px 8px;vertical-align:top;overflow-wrap:anywhere}
td.n{text-align:right;white-space:nowrap}
.share{display:flex;height:12px;width:160px;border-radius:3px;overflow:hidden;background:#e5e7eb}
.share i{display:block;height:100%}.key{display:inline-block;width:10px;height:10px;border-radius:2px;
margin:0 4px 0 10px}
.warn{color:var(--warn);font-size:13px;margin:6px 0 0}.warn::before{content:"\\26A0  "}
.groups{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(370px,100%),1fr));gap:14px}
.group{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px}
.group.leak{border-color:#fca5a5;box-shadow:0 0 0 2px #fee2e2}
.group.conflict{border-color:#fcd34d;box-shadow:0 0 0 2px #fef3c7}
.group .imgs{display:flex;gap:8px;justify-content:center;align-items:flex-start;flex-wrap:wrap}
.group figure{margin:0;text-align:center;width:170px;max-width:100%}
.group img{max-width:100%;height:auto;border-radius:6px;background:#e5e7eb}
.missing{display:inline-block;padding:20px 8px;border-radius:6px;background:#fee2e2;color:var(--bad);font-size:12px}
.group figcaption{font-size:12px;color:var(--muted);overflow-wrap:anywhere}
.tag{display:inline-block;font-size:11px;font-weight:bold;letter-spacing:.04em;border-radius:4px;padding:1px 6px;
margin-right:6px}.tag.leak{background:var(--bad);color:#fff}.tag.dup{background:#e0e7ff;color:#3730a3}
.tag.conflict{background:#f59e0b;color:#fff}.tag.lookalike{background:#e5e7eb;color:#374151}.tag.drop{background:#fee2e2;color:var(--bad)}
.meta{font-size:13px;margin-bottom:8px}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(290px,100%),1fr));gap:10px}
.tile{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px}
.tile h3{font-size:13px;margin:0 0 6px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.tile .strip{display:flex;gap:4px;overflow:hidden}.tile img{width:64px;height:64px;object-fit:cover;border-radius:4px;
background:#e5e7eb}
.none{color:var(--ok)}footer{color:var(--muted);font-size:12px;margin-top:40px}
.sorter input{margin-left:12px}#by-index:checked~.by-count,#by-count:checked~.by-index{display:none}
"""

def write_html(findings: Findings, out: str, *, workers: int | None = None) -> list[str]:
    """Write the thumbnails, the group listing and then the page; return the paths written."""
    files = PageFiles(out)
    tally = counts(findings)
    rows = thumbs.samples(findings)
    wanted: dict[int, list[int]] = {}
    for _, members in rows:
        for r in members:
            wanted.setdefault(r, []).append(thumbs.TILE)
    for section in tally.sections:
        for r in cards.card_rows(findings, section):
            if thumbs.SIDE not in wanted.setdefault(r, []):
                wanted[r].insert(0, thumbs.SIDE)
    shown = files.thumbnails(findings, wanted, workers)
    listing = files.listing(findings.report_lines())
    return files.publish(_page(findings, tally, rows, shown, listing))


def _page(findings: Findings, tally: Counts, rows: list[tuple[str, list[int]]],
          shown: dict[tuple[int, int], Shown], listing: str) -> str:
    doc = findings.to_json(groups=0)
    title = f"imgprep inspect — {findings.collection.folder}"
    nav = [("summary", "Summary", None), *((s.anchor, s.label, s.count) for s in tally.sections),
           ("classes", "Classes", tally.classes), ("splits", "Splits", tally.splits),
           ("contact", "Contact sheet", None)]
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>",
        '<meta name=viewport content="width=device-width,initial-scale=1">',
        f"<style>{CSS}</style></head><body>",
        "<nav>" + "".join(_nav_link(*link) for link in nav) + "</nav><main>",
        f"<h1>{escape(title)}</h1>",
        _summary(doc, tally, listing),
        *(cards.group_section(findings, s, shown, thumbs.SIDE, listing) for s in tally.sections),
        _class_section(doc, tally),
        f"<details class=section id=splits open><summary>Splits: <span class=tally>{tally.splits:,}</span></summary>"
        "<div class=splits>",
        *(_split_panel(split) for split in doc["splits"]),
        "</div></details>",
        _contact_section(rows, shown),
        "<footer>Written by imgprep inspect. No scripts; thumbnails load from the folder beside this page.</footer>",
        "</main></body></html>\n",
    ]
    return "\n".join(parts)


def _nav_link(anchor: str, label: str, n: int | None) -> str:
    tally = "" if n is None else f" (<span class=tally>{n:,}</span>)"
    return f'<a href="#{anchor}">{escape(label)}{tally}</a>'


def _summary(doc: dict[str, Any], tally: Counts, listing: str) -> str:
    h = doc["hash"]
    s = doc["summary"]
    leaks, conflicts, other = tally.sections
    cards_ = [  # (key, label, value, look, link)
        ("images", "images", tally.images, "", "splits"), ("splits", "splits", tally.splits, "", "splits"),
        ("classes", "classes", tally.classes, "", "classes"),
        ("duplicate-groups", "duplicate groups", tally.groups, "", "groups"),
        ("leaks", f"leaks ({tally.leaked_images:,} images to drop)", leaks.count, "bad" if leaks.count else "good",
         "leaks"),
        ("conflicts", "label conflicts", conflicts.count, "bad" if conflicts.count else "good", "conflicts"),
        ("groups", "other groups", other.count, "", "groups"),
    ]
    if tally.lookalikes:
        cards_.append(("lookalike-groups", "look-alike groups (no detail to tell a copy)", tally.lookalikes, "",
                       "groups"))
    if s["low_information"]:
        cards_.append(("low-information", "low-information images", s["low_information"], "", "summary"))
    if s["unreadable"]:
        cards_.append(("unreadable", "unreadable images", s["unreadable"], "bad", "summary"))
    note = (f"{escape(h['kind'])}; near duplicates are within {h['threshold_bits']} bits "
            f"({h['window_threshold_bits']} for crop windows). A group in two splits is a leak: the model is "
            "scored on images it trained on; a group with two labels is a label conflict (a group can be both, "
            "and is then listed in both sections). A LOOK-ALIKE group's images have no detail beyond the "
            "thumbnail the hash sees (smooth fields, fog, plain gradients): a copy cannot be told from a similar "
            "image, so check it by eye.")
    if h["images_too_small"]:
        note += f" {h['images_too_small']:,} images under {h['min_side']} px are matched by identical bytes only."
    if h["low_information"]:
        note += f" {h['low_information']:,} flat images are matched by identical bytes only."
    note += f' Every group, with the images to drop: <a href="{escape(listing)}">{escape(listing)}</a>.'
    return ("<section id=summary>" + f"<p class=sub>{note}</p><div class=cards>"
            + "".join(f'<a class="card {look}" href="#{link}" data-count={key}><b class=tally>{value:,}</b>'
                      f"<span>{escape(label)}</span></a>" for key, label, value, look, link in cards_)
            + "</div></section>")


def _class_section(doc: dict[str, Any], tally: Counts) -> str:
    names = [sp["name"] for sp in doc["splits"]]
    counts_ = [[sp["classes"][k]["count"] if k < len(sp["classes"]) else 0 for sp in doc["splits"]]
               for k in range(tally.classes)]
    legend = "".join(f'<span class=key style="background:{_colour(i)}"></span>{escape(n)}' for i, n in enumerate(names))
    rows = [(k, doc["classes"][k], c) for k, c in enumerate(counts_)]
    by_count = sorted(rows, key=lambda t: (-sum(t[2]), t[0]))
    head = ("<thead><tr><th>#</th><th>class</th><th>images</th>" + "".join(f"<th>{escape(n)}</th>" for n in names)
            + "<th>split shares</th></tr></thead>")
    table = ("<div class=sorter>Sort by <input type=radio name=sort id=by-count checked>"
             "<label for=by-count>count</label><input type=radio name=sort id=by-index><label for=by-index>index"
             f"</label><table class='list by-count'>{head}<tbody>{_class_rows(by_count)}</tbody></table>"
             f"<table class='list by-index'>{head}<tbody>{_class_rows(rows)}</tbody></table></div>")
    if len(rows) > OPEN_CLASSES:
        table = f"<details class=more><summary>Show the table of all {len(rows):,} classes</summary>{table}</details>"
    return (f"<details class=section id=classes open><summary>Classes: <span class=tally>{tally.classes:,}</span>"
            f"</summary><div class=panel><p class=sub>Images per class and split (positive labels for multi-label "
            f"data); shares: {legend}</p>{table}</div></details>")

def _class_rows(rows: list[tuple[int, str, list[int]]]) -> str:
    out = []
    for k, name, per_split in rows:
        total = sum(per_split) or 1
        share = "".join(f'<i style="width:{100 * c / total:.1f}%;background:{_colour(i)}" title="{c:,}"></i>'
                        for i, c in enumerate(per_split) if c)
        out.append(f"<tr data-class={k}><td class=n>{k}</td><td>{escape(name)}</td><td class=n>{sum(per_split):,}</td>"
                   + "".join(f"<td class=n>{c:,}</td>" for c in per_split)
                   + f"<td><div class=share>{share}</div></td></tr>")
    return "".join(out)


def _colour(i: int) -> str:
    return SPLIT_COLOURS[i % len(SPLIT_COLOURS)]


def _histogram(classes: list[dict[str, Any]]) -> str:
    """Images per class, largest first: labelled bars up to 40 classes, a bar chart without labels beyond."""
    ordered = sorted(classes, key=lambda c: (-c["count"], c["index"]))
    top = max((c["count"] for c in ordered), default=0) or 1
    if len(ordered) > 40:
        width, height = 420, 120
        step = width / len(ordered)
        bars = "".join(
            f'<rect class="{"bar zero" if c["count"] == 0 else "bar"}" x="{i * step:.2f}" y="{height - h:.1f}" '
            f'width="{max(step, 0.5):.2f}" height="{h:.1f}"><title>{escape(c["name"])}: {c["count"]:,}</title></rect>'
            for i, c in enumerate(ordered) for h in (max(height * c["count"] / top, 1),))
        note = (f'<text x="0" y="{height + 14}">{len(ordered):,} classes, largest {ordered[0]["count"]:,}, '
                f'smallest {ordered[-1]["count"]:,}</text>')
        return _svg(width, height + 18, bars + note)
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
    return _svg(label_w + BAR_W + 70, row_h * len(ordered) + 6, "".join(bars_))


def _svg(width: int, height: int, inner: str) -> str:
    """A chart drawn at ``width`` that shrinks with its panel (the viewBox scales it), never overflows it."""
    return (f'<svg class=histogram viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="images per class, largest first">{inner}</svg>')


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


def _contact_section(rows: list[tuple[str, list[int]]], shown: dict[tuple[int, int], Shown]) -> str:
    groups = []
    for lo in range(0, len(rows), PAGE_CLASSES):
        part = rows[lo: lo + PAGE_CLASSES]
        tiles = "".join(_tile(name, members, shown) for name, members in part)
        opened = " open" if lo == 0 else ""
        groups.append(f"<details class=more{opened}><summary>Classes {lo + 1:,}–{lo + len(part):,}</summary>"
                      f"<div class=tiles>{tiles}</div></details>")
    return (f"<details class=section id=contact open><summary>Contact sheet</summary><p class=sub>Up to "
            f"{thumbs.PER_CLASS} images per class, {len(rows):,} classes.</p>" + "".join(groups) + "</details>")


def _tile(name: str, members: list[int], shown: dict[tuple[int, int], Shown]) -> str:
    imgs = "".join(cards.img(shown.get((r, thumbs.TILE))) for r in members)
    return (f'<div class=tile><h3 title="{escape(name)}">{escape(name)} <span class=sub>({len(members)})</span>'
            f"</h3><div class=strip>{imgs}</div></div>")
