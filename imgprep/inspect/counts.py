"""Every number the inspect page shows, computed once: the navigation, the summary cards and the
section headings all read them from here, so they cannot disagree.

A group can be a leak and a label conflict at once.  Each section holds every group of its kind
(such a group is listed under both), so "label conflicts" means the same set wherever it appears,
here and in the terminal report; "other groups" are those of neither kind.
"""

from __future__ import annotations

from dataclasses import dataclass

from imgprep.inspect.analyse import Findings
from imgprep.splits.dedup import Finding


@dataclass(frozen=True)
class Section:
    anchor: str
    label: str  # in the navigation and on the summary card
    title: str  # the section's heading
    groups: list[Finding]

    @property
    def count(self) -> int:
        return len(self.groups)


@dataclass(frozen=True)
class Counts:
    images: int
    splits: int
    classes: int
    groups: int
    leaked_images: int  # images outside their group's first split: what closes every leak
    lookalikes: int  # groups whose images have no detail beyond the thumbnail (copies or look-alikes)
    sections: tuple[Section, Section, Section]  # leaks, label conflicts, other groups

    def section(self, anchor: str) -> Section:
        return next(s for s in self.sections if s.anchor == anchor)


def counts(findings: Findings) -> Counts:
    groups = findings.groups
    leaks = [f for f in groups if f.leak]
    # conflicts that are not also leaks first: the leak section above already shows the others
    conflicts = sorted((f for f in groups if f.conflict), key=lambda f: f.leak)
    other = [f for f in groups if not f.leak and not f.conflict]
    return Counts(
        images=len(findings.table), splits=len(findings.collection.splits), classes=len(findings.classes),
        groups=len(groups), leaked_images=sum(len(f.drop) for f in leaks),
        lookalikes=sum(f.lookalike for f in groups),
        sections=(Section("leaks", "Leaks", "Leaks: groups in more than one split", leaks),
                  Section("conflicts", "Label conflicts", "Label conflicts: groups with more than one label",
                          conflicts),
                  Section("groups", "Other groups", "Other duplicate groups: one split, one label", other)),
    )
