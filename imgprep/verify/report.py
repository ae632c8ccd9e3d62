"""Verify's findings: problems that name the shard and record, and the one-screen summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from imgprep.formats.display import cap

SHOWN = 20  # problems listed on the screen; the count says how many more there are


@dataclass(frozen=True)
class Problem:
    where: str  # "train.rec record #3 (id 3, byte 1208)", "train.idx line 4", "train.rec"
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def record_at(shard: str, ordinal: int, offset: int, id: int | None = None) -> str:
    """How a record is named in every message: shard, position, id (when readable), byte offset."""
    ident = "" if id is None else f"id {id}, "
    return f"{shard} record #{ordinal} ({ident}byte {offset})"


@dataclass
class Report:
    target: str
    shards: list[str] = field(default_factory=list)
    records: int = 0
    decoded: int = 0
    sizes: dict[tuple[int, int, int], int] = field(default_factory=dict)  # (w, h, channels) -> count
    labels: str = ""
    checks: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    label_width: int | None = None  # labels per record, as the first record holds them
    label_counts: list[int] = field(default_factory=list)  # images per class (positives per label)
    channel: dict[str, Any] | None = None  # SageMaker channel settings, when asked for

    def count_labels(self, labels: tuple[float, ...], multi_hot: bool) -> None:
        """Add one record's labels to the histogram (class indices, or a 0/1 vector's positives)."""
        counts = self.label_counts
        if multi_hot or len(labels) > 1:
            if len(counts) < len(labels):
                counts.extend([0] * (len(labels) - len(counts)))
            for i, value in enumerate(labels):
                if value == 1.0:
                    counts[i] += 1
            return
        value = labels[0] if labels else -1.0
        if value >= 0 and float(value).is_integer() and value < 1 << 20:
            index = int(value)
            if len(counts) <= index:
                counts.extend([0] * (index + 1 - len(counts)))
            counts[index] += 1

    def add(self, where: str, what: str) -> None:
        self.problems.append(Problem(where, what))

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """Everything, every problem included, for ``--json``."""
        return {
            "target": self.target, "ok": self.ok, "shards": self.shards, "records": self.records,
            "decoded": self.decoded, "labels": self.labels, "checks": self.checks,
            "sizes": [{"width": w, "height": h, "channels": c, "images": n}
                      for (w, h, c), n in sorted(self.sizes.items(), key=lambda kv: (-kv[1], kv[0]))],
            "label_counts": self.label_counts,
            "problems": [{"where": p.where, "what": p.what} for p in self.problems],
            "channel": self.channel,
        }

    def format(self) -> str:
        lines = [f"verify {self.target}"]
        names = ", ".join(self.shards[:3]) + (f", ... ({len(self.shards)} in all)" if len(self.shards) > 3 else "")
        lines.append(f"  shards   {len(self.shards)}: {names}")
        lines.append(f"  records  {self.records:,} read, {self.decoded:,} decoded")
        if self.sizes:
            lines.append(f"  images   {_sizes(self.sizes)}")
        if self.labels:
            lines.append(f"  labels   {self.labels}")
        lines.append(f"  checked  {', '.join(self.checks)}")
        if self.ok:
            lines.append(f"OK: {self.records:,} records, no problems")
            return "\n".join(lines)
        count = len(self.problems)
        lines.append(f"FAILED: {count} problem{'s' if count != 1 else ''}")
        lines += cap([f"  {p}" for p in self.problems], SHOWN, what="problems", full="--json", indent="  ",
                     slack=0)
        return "\n".join(lines)


def _sizes(sizes: dict[tuple[int, int, int], int]) -> str:
    common = sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ", ".join(f"{w}x{h}x{c} ({n:,})" for (w, h, c), n in common[:3])
    return shown + (f", {len(common) - 3} other sizes" if len(common) > 3 else "")
