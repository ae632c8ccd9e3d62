"""Statistics per split, and duplicates within and across splits, from a scanned table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgprep.formats.hyperparams import IMBALANCE_RATIO
from imgprep.imaging.phash import NEAR_MIN_SIDE
from imgprep.inspect.collect import Collection
from imgprep.inspect.scan import Table
from imgprep.splits import dedup
from imgprep.splits.neardup import CHECK_THRESHOLD, CHROMA_THRESHOLD, DEFAULT_THRESHOLD, window_threshold

HASH = ("DCT pHash, 64 bits on a 32x32 luma thumbnail of the image inside uniform borders, in a canonical "
        "orientation (turns and flips), plus fourteen crop windows (5-10% off one, two or four sides); every link "
        "confirmed by a check hash and, where both images have colour, by the Cb/Cr chroma words of the same box; "
        "groups are stars around a representative, never chains")


@dataclass
class Findings:
    collection: Collection
    table: Table
    threshold: int
    classes: list[str]
    splits: list[dict[str, Any]] = field(default_factory=list)
    summary: dedup.Summary | None = None
    groups: list[dedup.Finding] = field(default_factory=list)  # leaks and conflicts first, then by size

    def ref(self, row: int) -> dict[str, Any]:
        """How an image is named in every report: split, record id, path."""
        split = self.collection.splits[self.table.split[row]]
        id = self.table.id[row]
        return {"split": split.name, "id": id, "path": split.path_at(self.table.locator[row], id)}

    @property
    def leaks(self) -> int:
        return self.summary.leaks if self.summary else 0

    def group_json(self, f: dedup.Finding) -> dict[str, Any]:
        drop = set(f.drop)
        return {"size": len(f.rows), "exact": f.exact, "lookalike": f.lookalike, "leak": f.leak, "conflict": f.conflict,
                "splits": [self.collection.splits[k].name for k in f.splits],
                "images": [{**self.ref(r), "class": self.class_of(r), "drop": r in drop} for r in f.rows]}

    def class_of(self, row: int) -> str:
        k = self.table.label[row]
        return self.classes[k] if 0 <= k < len(self.classes) else str(k)

    def report_lines(self) -> list[str]:
        """``--dedup-report``: the same JSON Lines ``convert --dedup-report`` writes."""
        return list(dedup.report_lines(self.groups, self.ref))

    def to_json(self, *, groups: int | None = None) -> dict[str, Any]:
        s = self.summary or dedup.Summary(len(self.table))
        return {
            "summary": {
                "images": len(self.table), "unreadable": len(self.table.errors),
                "duplicate_groups": s.groups, "duplicate_images": s.grouped_images,
                "exact_duplicate_groups": s.exact_groups, "leaks": s.leaks, "leaked_images": s.leaked_images,
                "label_conflicts": s.conflicts, "low_information": s.flat,
                "lookalike_groups": s.lookalike_groups, "lookalike_images": s.lookalike_images,
                "lookalike_leaks": s.lookalike_leaks, "lookalike_conflicts": s.lookalike_conflicts,
            },
            "hash": {"kind": HASH, "threshold_bits": self.threshold,
                     "window_threshold_bits": window_threshold(self.threshold),
                     "check_threshold_bits": CHECK_THRESHOLD, "chroma_threshold_bits": CHROMA_THRESHOLD,
                     "min_side": NEAR_MIN_SIDE,
                     "images_too_small": s.small, "low_information": s.flat},
            "left_out": self.collection.left_out,
            "notes": self.collection.notes,
            "classes": self.classes,
            "splits": self.splits,
            "duplicate_groups": [self.group_json(f) for f in self.groups[:groups]],
            "unreadable": self.table.errors,
        }


def analyse(collection: Collection, table: Table, *, threshold: int = DEFAULT_THRESHOLD,
            workers: int | None = None) -> Findings:
    classes = _class_names(collection, table)
    findings = Findings(collection, table, threshold, classes)
    findings.splits = [_split_stats(number, split.name, split.source, table, classes)
                       for number, split in enumerate(collection.splits)]
    groups = dedup.find_groups(table.prints, threshold, workers=workers)
    findings.summary, findings.groups = dedup.findings(groups, table.column("split").astype(np.int64),
                                                       table.column("labelkey"), threshold)
    findings.summary.unreadable = len(table.errors)
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
