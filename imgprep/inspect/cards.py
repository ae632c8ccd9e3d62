"""Duplicate groups on the inspect page: a card with thumbnails per group, and a table of many.

A leak is only visible if both sides of it are: every card and table row shows one member of each
split the group spans before any second member of a split, and says which splits the members it
leaves out are in.
"""

from __future__ import annotations

from collections import Counter
from html import escape

from imgprep.inspect.analyse import Findings
from imgprep.inspect.assets import Shown
from imgprep.inspect.counts import Section
from imgprep.splits.dedup import Finding

CARDS = 24  # group cards with thumbnails per section
CARD_IMAGES = 4  # thumbnails per card (more when a group spans more splits)
TABLE_ROWS = 1000  # groups listed per section's table; every one is in OUT-duplicates.jsonl
TABLE_MEMBERS = 6  # members named per table row


def shown_rows(findings: Findings, f: Finding, limit: int) -> list[int]:
    """The first member of each split, in split order, then the others in group order, up to ``limit``
    (never fewer than one per split)."""
    split = findings.table.split
    firsts: dict[int, int] = {}
    for r in f.rows:
        firsts.setdefault(split[r], r)
        if len(firsts) == len(f.splits):
            break
    lead = [firsts[k] for k in sorted(firsts)]
    chosen = set(lead)
    rest = []
    for r in f.rows:
        if len(lead) + len(rest) >= limit:
            break
        if r not in chosen:
            rest.append(r)
    return lead + rest


def _hidden(findings: Findings, f: Finding, shown: list[int]) -> str:
    """"+N more (train 3, val 1)" for the members a card or row leaves out."""
    if len(f.rows) <= len(shown):
        return ""
    seen = set(shown)
    per = Counter(findings.table.split[r] for r in f.rows if r not in seen)
    names = ", ".join(f"{findings.collection.splits[k].name} {n:,}" for k, n in sorted(per.items()))
    return f"+{len(f.rows) - len(shown):,} more ({names})"


def card_rows(findings: Findings, section: Section) -> list[int]:
    """Every row a card of ``section`` shows: the thumbnails to make."""
    return [r for f in section.groups[:CARDS] for r in shown_rows(findings, f, CARD_IMAGES)]


def group_section(findings: Findings, section: Section, thumbs: dict[tuple[int, int], Shown], side: int,
                  listing: str) -> str:
    found = section.groups
    opened = " open" if found and section.anchor != "groups" else ""
    head = (f"<details class=section id={section.anchor}{opened}><summary>{escape(section.title)}: "
            f"<span class=tally>{section.count:,}</span></summary>")
    if not found:
        return head + "<div class=panel><p class=none>None found.</p></div></details>"
    cards = "".join(_card(findings, f, thumbs, side) for f in found[:CARDS])
    shown = f"<p class=sub>The first {min(CARDS, len(found)):,} of {len(found):,}.</p>"
    capped = (f" (the first {TABLE_ROWS:,} here; every one in <a href=\"{escape(listing)}\">{escape(listing)}</a>)"
              if len(found) > TABLE_ROWS else "")
    table = (f"<details class=more><summary>List all {len(found):,} as a table{capped}</summary>"
             + _group_table(findings, found[:TABLE_ROWS]) + "</details>")
    return f"{head}{shown}<div class=groups>{cards}</div>{table}</details>"


def _card(findings: Findings, f: Finding, thumbs: dict[tuple[int, int], Shown], side: int) -> str:
    tags = ('<span class="tag leak">LEAK</span>' if f.leak else "") + (
        '<span class="tag conflict">CONFLICT</span>' if f.conflict else "") or '<span class="tag dup">DUPLICATE</span>'
    if f.lookalike:
        tags += '<span class="tag lookalike">LOOK-ALIKE</span>'
    how = f"{len(f.rows):,} images, " + ("identical files" if f.exact else "look-alikes or copies: too little "
                                         "detail to tell" if f.lookalike else "near copies")
    if f.leak:
        how += f" in {', '.join(findings.collection.splits[k].name for k in f.splits)}"
    if f.drop:
        how += f"; drop {len(f.drop):,} to close the leak"
    drop = set(f.drop)
    rows = shown_rows(findings, f, CARD_IMAGES)
    figures = "".join(_figure(findings, r, thumbs.get((r, side)), r in drop) for r in rows)
    hidden = _hidden(findings, f, rows)
    more = f"<p class=sub>{escape(hidden)}</p>" if hidden else ""
    cls = "group" + (" leak" if f.leak else "") + (" conflict" if f.conflict else "")
    return f'<div class="{cls}"><div class=meta>{tags}{escape(how)}</div><div class=imgs>{figures}</div>{more}</div>'


def img(shown: Shown | None, alt: str = "") -> str:
    """A lazily loaded thumbnail with its size, so the layout is final before any image arrives."""
    if shown is None:
        return f'<span class=missing title="unreadable">{escape(alt) or "?"}</span>'
    return (f'<img src="{escape(shown.href)}" width={shown.width} height={shown.height} loading=lazy '
            f'decoding=async alt="{escape(alt)}">')


def _figure(findings: Findings, row: int, shown: Shown | None, drop: bool) -> str:
    ref = findings.ref(row)
    tag = '<span class="tag drop">DROP</span>' if drop else ""
    alt = f"{ref['split']} id {ref['id']}"
    return (f'<figure data-split="{escape(ref["split"])}" data-id="{ref["id"]}">{img(shown, alt)}'

            f"<figcaption>{tag}<b>{escape(ref['split'])}</b> id {ref['id']} · {escape(findings.class_of(row))}<br>"
            f"{escape(ref['path'])}</figcaption></figure>")


def _group_table(findings: Findings, found: list[Finding]) -> str:
    body = []
    for f in found:
        drop = set(f.drop)
        rows = shown_rows(findings, f, TABLE_MEMBERS)
        refs = "<br>".join(
            ("<b>drop</b> " if r in drop else "") + escape(f"{ref['split']} id {ref['id']} ({ref['path']})")
            for r in rows for ref in (findings.ref(r),))
        hidden = _hidden(findings, f, rows)
        classes = sorted({findings.class_of(r) for r in f.rows})
        kind = "identical" if f.exact else "look-alike" if f.lookalike else "near"
        body.append(f"<tr><td class=n>{len(f.rows):,}</td><td>{kind}</td>"
                    f"<td>{escape(', '.join(classes[:4]))}{'…' if len(classes) > 4 else ''}</td>"
                    f"<td>{refs}{'<br>' + escape(hidden) if hidden else ''}</td></tr>")
    return ("<table class=list><thead><tr><th>images</th><th>kind</th><th>classes</th><th>members</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")
