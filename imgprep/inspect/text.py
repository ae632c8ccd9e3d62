"""Inspect's findings as text for a terminal: one block per split, then duplicates and leaks."""

from __future__ import annotations

from typing import Any

from imgprep.formats.display import cap, cells, ljust
from imgprep.inspect.analyse import Findings

BAR = 30  # characters of the longest histogram bar
SHOWN = 20  # groups listed
MEMBERS = 4  # images named per group
CLASSES_SHOWN = 40  # histogram rows per split; the rest are counted


def _ref(ref: dict[str, Any]) -> str:
    return f"{ref['split']} id {ref['id']} ({ref['path']})"


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def render(findings: Findings) -> str:
    doc = findings.to_json(groups=SHOWN)
    s = doc["summary"]
    lines = [f"inspect {findings.collection.folder}: {s['images']:,} images in {len(doc['splits'])} split(s), "
             f"{len(doc['classes'])} classes"]
    lines += [f"  left out: {line}" for line in findings.collection.left_out]
    lines += [f"  {line}" for line in findings.collection.notes]
    for split in doc["splits"]:
        lines += ["", *_split(split)]
    if findings.summary:
        lines += ["", *findings.summary.lines([sp["name"] for sp in doc["splits"]])]
    lines.append(f"  ({doc['hash']['kind']}; near = within {doc['hash']['threshold_bits']} bits)")
    for group in doc["duplicate_groups"]:
        tag = ("LEAK " if group["leak"] else "") + ("CONFLICT " if group["conflict"] else "")
        how = "identical" if group["exact"] else "look-alike" if group.get("lookalike") else "near"
        refs = "  ~  ".join(_ref(r) for r in group["images"][:MEMBERS])
        more = f"  (+{group['size'] - MEMBERS:,} more)" if group["size"] > MEMBERS else ""
        lines.append(f"  {tag or '      '}{how} x{group['size']}: {refs}{more}")
    if len(doc["duplicate_groups"]) < s["duplicate_groups"]:
        lines.append(f"  ... and {s['duplicate_groups'] - len(doc['duplicate_groups']):,} more group(s): "
                     "--dedup-report FILE lists every group (--json / --html show them too)")
    if doc["unreadable"]:
        lines.append(f"unreadable: {len(doc['unreadable'])} image(s)")
        lines += [f"  {e}" for e in doc["unreadable"][:SHOWN]]
    return "\n".join(lines)


def _split(split: dict[str, Any]) -> list[str]:
    lines = [f"{split['name']}: {split['images']:,} images ({split['source']})"]
    top = max((c["count"] for c in split["classes"]), default=0) or 1
    width = max((cells(c["name"]) for c in split["classes"]), default=0)
    rows = []
    for c in split["classes"]:
        bar = "#" * max(round(BAR * c["count"] / top), 1 if c["count"] else 0)
        rows.append(f"  {ljust(c['name'], width)}  {c['count']:>7,}  {bar}")
    lines += cap(rows, CLASSES_SHOWN, what="classes", full="--json or --html", indent="  ")
    if "label_cardinality" in split:
        card = split["label_cardinality"]
        hist = ", ".join(f"{k}: {n}" for k, n in card["histogram"].items())
        lines.append(f"  labels per image: mean {card['mean']} ({hist})")
    w, h = split["width"], split["height"]
    if w:
        common = ", ".join(f"{c['width']}x{c['height']} ({c['images']})" for c in split["common_sizes"][:3])
        lines.append(f"  size: width {w['min']}..{w['max']} (median {w['median']}), height {h['min']}..{h['max']} "
                     f"(median {h['median']}); commonest {common}")
        e = split["encoded_bytes"]
        lines.append(f"  encoded: median {_size(e['median'])}, p95 {_size(e['p95'])}, max {_size(e['max'])}, "
                     f"total {_size(e['total'])}")
    lines += [f"  warning: {w}" for w in split["warnings"]]
    return lines
