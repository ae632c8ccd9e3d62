"""Statistics per split, and duplicates within and across splits, from a scanned table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgprep.formats.hyperparams import IMBALANCE_RATIO
from imgprep.imaging.phash import NEAR_MIN_SIDE, hamming
from imgprep.inspect.collect import Collection
from imgprep.inspect.scan import Table
from imgprep.splits.neardup import DEFAULT_THRESHOLD, exact_groups, near_pairs

HASH = "DCT pHash, 64 bits on a 32x32 luma thumbnail, mirror-aware"


@dataclass(frozen=True)
class Pair:
    a: int  # table rows
    b: int
    distance: int
    mirrored: bool
    leak: bool


@dataclass
class Findings:
    collection: Collection
    table: Table
    threshold: int
    classes: list[str]
    splits: list[dict[str, Any]] = field(default_factory=list)
    exact: list[list[int]] = field(default_factory=list)  # groups of table rows
    near: list[Pair] = field(default_factory=list)
    small: int = 0  # images under NEAR_MIN_SIDE: exact duplicates only

    def ref(self, row: int) -> dict[str, Any]:
        """How an image is named in every report: split, record id, path."""
        split = self.collection.splits[self.table.split[row]]
        id = self.table.id[row]
        return {"split": split.name, "id": id, "path": split.path_at(self.table.locator[row], id)}

    def is_leak(self, rows: list[int]) -> bool:
        return len({self.table.split[r] for r in rows}) > 1

    @property
    def leaks(self) -> int:
        return sum(self.is_leak(g) for g in self.exact) + sum(p.leak for p in self.near)

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": {
                "images": len(self.table), "unreadable": len(self.table.errors),
                "exact_duplicate_groups": len(self.exact), "near_duplicate_pairs": len(self.near),
                "leaks": self.leaks,
            },
            "hash": {"kind": HASH, "threshold_bits": self.threshold, "min_side": NEAR_MIN_SIDE,
                     "images_too_small": self.small},
            "classes": self.classes,
            "splits": self.splits,
            "exact_duplicates": [{"leak": self.is_leak(g), "images": [self.ref(r) for r in g]} for g in self.exact],
            "near_duplicates": [
                {"a": self.ref(p.a), "b": self.ref(p.b), "distance": p.distance, "mirrored": p.mirrored,
                 "leak": p.leak}
                for p in self.near
            ],
            "unreadable": self.table.errors,
        }


def analyse(collection: Collection, table: Table, *, threshold: int = DEFAULT_THRESHOLD) -> Findings:
    classes = _class_names(collection, table)
    findings = Findings(collection, table, threshold, classes)
    findings.splits = [_split_stats(number, split.name, split.source, table, classes)
                       for number, split in enumerate(collection.splits)]
    digest, phash, mirror = table.column("digest"), table.column("phash"), table.column("mirror")
    findings.exact = exact_groups(digest) if len(table) else []
    big = np.flatnonzero(np.minimum(table.column("width"), table.column("height")) >= NEAR_MIN_SIDE)
    findings.small = len(table) - len(big)
    if len(big):
        for a, b, d in near_pairs(phash[big], mirror[big], threshold):
            i, j = int(big[a]), int(big[b])
            if digest[i] == digest[j]:
                continue
            mirrored = int(hamming(mirror[i], phash[j])) < int(hamming(phash[i], phash[j]))
            findings.near.append(Pair(i, j, d, mirrored, table.split[i] != table.split[j]))
    findings.near.sort(key=lambda p: (not p.leak, p.distance, p.a, p.b))
    findings.exact.sort(key=lambda g: (not findings.is_leak(g), g))
    return findings


def _class_names(collection: Collection, table: Table) -> list[str]:
    if collection.class_names:
        return list(collection.class_names)
    top = max((k for _, k in table.counts), default=-1)
    return [str(k) for k in range(top + 1)]


def _quantiles(values: np.ndarray) -> dict[str, int]:
    if not len(values):
        return {}
    q = np.percentile(values, [0, 50, 95, 100]).round().astype(int).tolist()
    return {"min": q[0], "median": q[1], "p95": q[2], "max": q[3]}


def _split_stats(number: int, name: str, source: str, table: Table, classes: list[str]) -> dict[str, Any]:
    rows = table.column("split") == number
    counts = [table.counts.get((number, k), 0) for k in range(len(classes))]
    width, height = table.column("width")[rows], table.column("height")[rows]
    sizes, freq = np.unique(np.stack([width, height], 1), axis=0, return_counts=True) if rows.any() else ([], [])
    common = sorted(zip(freq, map(tuple, sizes), strict=True), key=lambda t: (-t[0], t[1]))[:5]
    encoded = table.column("encoded")[rows]
    stats: dict[str, Any] = {
        "name": name, "source": source, "images": int(rows.sum()),
        "classes": [{"index": k, "name": classes[k], "count": c} for k, c in enumerate(counts)],
        "width": _quantiles(width), "height": _quantiles(height),
        "common_sizes": [{"width": int(s[0]), "height": int(s[1]), "images": int(f)} for f, s in common],
        "encoded_bytes": {**_quantiles(encoded), "total": int(encoded.sum())},
    }
    if table.multi_label:
        positives = table.column("positives")[rows]
        card = np.bincount(positives) if len(positives) else np.zeros(1, int)
        stats["label_cardinality"] = {"mean": round(float(positives.mean()), 3) if len(positives) else 0.0,
                                      "histogram": {str(k): int(n) for k, n in enumerate(card) if n}}
    stats["warnings"] = _warnings(name, counts, classes)
    return stats


def _warnings(split: str, counts: list[int], classes: list[str]) -> list[str]:
    out = [f"class {classes[k]!r} has no images in {split}" for k, c in enumerate(counts) if c == 0]
    present = [(c, k) for k, c in enumerate(counts) if c]
    if len(present) > 1:
        (low, lk), (high, hk) = min(present), max(present)
        if high / low >= IMBALANCE_RATIO:
            out.append(f"imbalanced: {classes[hk]!r} has {high} images, {classes[lk]!r} only {low} "
                       f"({high / low:.0f}x); consider class weights or resampling")
    return out
