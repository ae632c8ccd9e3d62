"""Inspect's findings as text for a terminal: one block per split, then duplicates and leaks."""

from __future__ import annotations

from typing import Any

from imgprep.formats.display import cap, cells, ljust
from imgprep.inspect.analyse import Findings

BAR = 30  # characters of the longest histogram bar
SHOWN = 20  # pairs and groups listed
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
    doc = findings.to_json()
    s = doc["summary"]
    lines = [f"inspect {findings.collection.folder}: {s['images']:,} images in {len(doc['splits'])} split(s), "
             f"{len(doc['classes'])} classes"]
    for split in doc["splits"]:
        lines += ["", *_split(split)]
    lines += ["", f"duplicates ({doc['hash']['kind']}; near = within {doc['hash']['threshold_bits']} bits)"]
    lines.append(f"  exact: {s['exact_duplicate_groups']} group(s); near: {s['near_duplicate_pairs']} pair(s); "
                 f"leaks across splits: {s['leaks']}")
    if doc["hash"]["images_too_small"]:
        lines.append(f"  {doc['hash']['images_too_small']:,} image(s) under {doc['hash']['min_side']} px: "
                     "exact duplicates only")
    for group in doc["exact_duplicates"][:SHOWN]:
        tag = "LEAK  " if group["leak"] else "      "
        lines.append(f"  {tag}exact  " + "  ==  ".join(_ref(r) for r in group["images"]))
    for pair in doc["near_duplicates"][:SHOWN]:
        tag = "LEAK  " if pair["leak"] else "      "
        how = f"{pair['distance']} bits" + (", mirrored" if pair["mirrored"] else "")
        lines.append(f"  {tag}near   {_ref(pair['a'])}  ~  {_ref(pair['b'])}  [{how}]")
    listed = len(doc["exact_duplicates"][:SHOWN]) + len(doc["near_duplicates"][:SHOWN])
    if listed < s["exact_duplicate_groups"] + s["near_duplicate_pairs"]:
        lines.append("  ... more in --json / --html")
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
