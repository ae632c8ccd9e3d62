"""What verify remembers of every record, in flat arrays: its id, and its offset where the index's differs.

Per shard, the id and byte offset of each record the walk read (its ordinal only once a record
was skipped: until then it is the position); across shards, duplicate ids are found by one
stable sort at the end (each message put where a check as the record was read would have put
it), and a record is named (:func:`imgprep.verify.report.record_at`) only
when a message needs it.  With ``--against``, each record's labels too (float32, as stored).
"""

from __future__ import annotations

import bisect
import itertools
from array import array
from collections.abc import Iterable, Sequence

import numpy as np

from imgprep.formats.lst import LstItem
from imgprep.verify.report import Problem, Report, record_at


class Walked:
    """The records of one shard with a readable header, in file order.

    Their offsets are usually the index's own, in order: while they are, they are read from
    ``expected`` (the index's offsets, ascending) instead of being kept twice."""

    def __init__(self, shard: str, expected: np.ndarray | None = None) -> None:
        self.shard = shard
        self.ids = array("Q")
        self.ordinals: array | None = None  # None while record i is the shard's record #i
        self._expected = expected if expected is not None else np.zeros(0, dtype=np.int64)
        self._offsets: array | None = None if expected is not None else array("q")

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, ordinal: int, offset: int, id: int) -> None:
        n = len(self.ids)
        if self.ordinals is not None:
            self.ordinals.append(ordinal)
        elif ordinal != n:
            self.ordinals = array("q", range(n))
            self.ordinals.append(ordinal)
        if self._offsets is not None:
            self._offsets.append(offset)
        elif n >= len(self._expected) or self._expected[n] != offset:
            self._offsets = array("q", self._expected[:n].tobytes())
            self._offsets.append(offset)
        self.ids.append(id)

    @property
    def offsets(self) -> np.ndarray:
        """Each record's byte offset, ascending (the walk only goes forward)."""
        if self._offsets is None:
            return self._expected[: len(self.ids)]
        return np.frombuffer(self._offsets, dtype=np.int64)

    def ordinal(self, i: int) -> int:
        return i if self.ordinals is None else self.ordinals[i]

    def where(self, i: int) -> str:
        offset = self._offsets[i] if self._offsets is not None else int(self._expected[i])
        return record_at(self.shard, self.ordinal(i), offset, self.ids[i])


class Labels:
    """Each record's labels in walk order (for ``--against``): values back to back (float32, as
    records store them), and each record's end only once records of different widths were seen."""

    def __init__(self) -> None:
        self.values = array("f")
        self.count = 0
        self.width = 0
        self.ends: array | None = None

    def add(self, labels: tuple[float, ...]) -> None:
        if not self.count:
            self.width = len(labels)
        if self.ends is None and len(labels) != self.width:
            self.ends = array("q", range(self.width, self.width * self.count + 1, self.width) if self.width
                              else bytes(8 * self.count))
        self.values.extend(labels)
        self.count += 1
        if self.ends is not None:
            self.ends.append(len(self.values))

    def get(self, record: int) -> tuple[float, ...]:
        if self.ends is None:
            return tuple(self.values[record * self.width:(record + 1) * self.width])
        start = self.ends[record - 1] if record else 0
        return tuple(self.values[start:self.ends[record]])


class Ledger:
    """Every shard's walked records, in walk order (a record's number counts across shards)."""

    def __init__(self, labels: bool) -> None:
        self.shards: list[Walked] = []
        self.labels = Labels() if labels else None
        self.records = 0
        # where a duplicate's message goes: (record number, problems reported up to its check),
        # kept only when the count changed, so it grows with the problems, not the records
        self._marks: tuple[array, array] = (array("q"), array("q"))
        self._ids = np.zeros(0, dtype=np.uint64)  # each distinct id, ascending (check_duplicates)
        self._first = np.zeros(0, dtype=np.int64)  # the number of its first record

    def shard(self, name: str, expected: np.ndarray | None = None) -> Walked:
        walked = Walked(name, expected)
        self.shards.append(walked)
        return walked

    def add(self, walked: Walked, ordinal: int, offset: int, id: int, problems: int) -> None:
        """Note a record of ``walked`` (the shard last opened) after ``problems`` were reported."""
        walked.add(ordinal, offset, id)
        numbers, counts = self._marks
        if not counts or counts[-1] != problems:
            numbers.append(self.records)
            counts.append(problems)
        self.records += 1

    def _reported_before(self, number: int) -> int:
        """How many problems were reported when record ``number`` was checked."""
        numbers, counts = self._marks
        return counts[bisect.bisect_right(numbers, number) - 1]

    def _record(self, number: int) -> tuple[Walked, int]:
        starts = list(itertools.accumulate((len(w) for w in self.shards), initial=0))
        shard = bisect.bisect_right(starts, number) - 1
        return self.shards[shard], number - starts[shard]

    def where(self, number: int) -> str:
        walked, i = self._record(number)
        return walked.where(i)

    def check_duplicates(self, report: Report) -> None:
        """Name each record whose id an earlier record holds, in walk order, with the first one."""
        parts = [np.frombuffer(w.ids, dtype=np.uint64) for w in self.shards]
        ids = parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)
        if self.labels is None:
            ordered = np.sort(ids)
            if not (ordered[1:] == ordered[:-1]).any():
                return  # no duplicates, and no --against to look ids up for
            del ordered
        order = np.argsort(ids, kind="stable")  # equal ids in walk order: the first one leads
        ids = ids[order]
        del parts
        repeat = np.zeros(len(ids), dtype=bool)
        repeat[1:] = ids[1:] == ids[:-1]
        if repeat.any():
            leader = np.maximum.accumulate(np.where(repeat, 0, np.arange(len(ids))))
            found = sorted((int(order[i]), int(order[leader[i]]), int(ids[i])) for i in np.flatnonzero(repeat))
            # each message where a check at the time would have put it: right after its record's own
            problems, merged, done = report.problems, [], 0
            for number, first, id in found:
                at = self._reported_before(number)
                merged += problems[done:at]
                merged.append(Problem(self.where(number), f"duplicate id {id} (first: {self.where(first)})"))
                done = at
            report.problems = merged + problems[done:]
        if self.labels is not None:  # --against looks each id's first record up
            self._ids, self._first = ids[~repeat], order[~repeat]

    def check_against(self, items: Sequence[LstItem], name: str, report: Report) -> None:
        """Every list entry has a record with its labels (the first record of its id), and every
        record id is listed; after :meth:`check_duplicates`."""
        labels = self.labels
        if labels is None:
            raise RuntimeError("imgprep bug: the ledger kept no labels")
        fits = np.fromiter((0 <= item.index < _U64 for item in items), dtype=bool, count=len(items))
        wanted = np.fromiter((item.index if 0 <= item.index < _U64 else 0 for item in items), dtype=np.uint64,
                             count=len(items))
        at = np.searchsorted(self._ids, wanted)
        fits &= at < len(self._ids)
        np.minimum(at, max(len(self._ids) - 1, 0), out=at)
        if len(self._ids):
            fits &= self._ids[at] == wanted
        for line, item in enumerate(items, 1):
            where = f"{name} entry {line} (id {item.index}, {item.path})"
            if not fits[line - 1]:
                report.add(where, "has no record")
                continue
            got = labels.get(int(self._first[at[line - 1]]))
            if got != tuple(item.labels[: len(got)]) or (len(got) > 1 and len(got) != len(item.labels)):
                report.add(where, f"has labels {_fmt(item.labels)} but its record holds {_fmt(got)}")
        listed = np.unique(wanted[fits])
        for id in self._ids[~np.isin(self._ids, listed, assume_unique=True)]:
            report.add(f"record id {int(id)}", f"is not in {name}")


_U64 = 1 << 64


def _fmt(labels: Iterable[float]) -> str:
    return "(" + ", ".join(str(int(x)) if float(x).is_integer() else repr(x) for x in labels) + ")"
