"""The list of images a run skipped, written beside its output so nothing is lost silently."""

from __future__ import annotations

import os
from dataclasses import dataclass


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


def write_report(prefix: str, skipped: list[Skipped], **storage_options: object) -> str | None:
    """Write ``PREFIX.skipped.tsv`` when images were skipped; drop a stale local one otherwise."""
    from imgprep.storage.base import is_remote, write_text

    name = report_name(prefix)
    if skipped:
        write_text(name, format_report(skipped), **storage_options)
        return name
    if not is_remote(name):
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass
    return None
