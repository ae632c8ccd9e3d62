"""The list of images a run skipped, written beside its output so nothing is lost silently."""

from __future__ import annotations

from dataclasses import dataclass

from imgprep.storage.base import Store


@dataclass(frozen=True)
class Skipped:
    index: int
    path: str
    reason: str


def report_name(prefix: str) -> str:
    return prefix + ".skipped.tsv"


def format_report(skipped: list[Skipped]) -> str:
    lines = ["index\tpath\treason\n"]
    for s in skipped:
        reason = s.reason.replace("\t", " ").replace("\n", " ")
        lines.append(f"{s.index}\t{s.path}\t{reason}\n")
    return "".join(lines)


def write_report(storage: Store, prefix: str, skipped: list[Skipped]) -> str | None:
    """Write ``PREFIX.skipped.tsv`` when images were skipped; remove a stale one otherwise."""
    name = report_name(prefix)
    if skipped:
        storage.write_text(name, format_report(skipped))
        return name
    storage.delete(name)  # a stale report from an earlier run would describe other images
    return None
