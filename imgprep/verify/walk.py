"""Read every record of one shard, keeping on after damage, and check what each record says.

The walk does not trust the ``.idx``: it follows the framing from byte 0, and where the framing
breaks (no magic, a part out of order) it resynchronises at the next record start, so one bad
record never hides the rest.  The ``.idx`` is then compared with what the walk found
(:mod:`imgprep.verify.index`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from imgprep.errors import FormatError
from imgprep.formats.recordio import RecordReader, unpack_image_record
from imgprep.verify.report import Report, record_at
from imgprep.verify.target import Expectations


@dataclass(frozen=True)
class Record:
    ordinal: int
    offset: int
    id: int
    labels: tuple[float, ...]
    flag: int
    image: bytes
    where: str


def records(stream: BinaryIO, shard: str, report: Report) -> Iterator[tuple[int, int, bytes]]:
    """``(ordinal, offset, payload)`` of every readable record; framing damage goes to ``report``
    (:meth:`RecordReader.salvage`, the report-and-continue reader)."""
    reader = RecordReader(stream)
    reader.path = shard

    def damaged(ordinal: int, offset: int, message: str, resync: int | None) -> None:
        report.add(record_at(shard, ordinal, offset), message)
        if resync is not None:
            report.add(shard, f"bytes {offset}..{resync} are not whole records; reading on from byte {resync}")

    return reader.salvage(stream.seek(0, 2), damaged)


def check_record(ordinal: int, offset: int, payload: bytes, shard: str, expect: Expectations,
                 width: list[int], report: Report) -> Record | None:
    """The record's header and labels against ``expect``; None when the header is unreadable.

    ``width`` holds the label width of the first record when nothing declared one, so every
    later record is held to it.
    """
    try:
        header, labels, image = unpack_image_record(payload)
    except FormatError as exc:
        report.add(record_at(shard, ordinal, offset), exc.message)
        return None
    where = record_at(shard, ordinal, offset, header.id)
    stored = max(header.flag, 1)
    if not width:
        width.append(expect.label_width or stored)
    if stored != width[0]:
        kind = "multi-label vector" if width[0] > 1 else "single label"
        report.add(where, f"holds {stored} label(s) where this dataset's records hold a {kind} of width {width[0]}")
    else:
        for problem in _label_problems(labels, expect):
            report.add(where, problem)
    return Record(ordinal, offset, header.id, labels, header.flag, image, where)


def _label_problems(labels: tuple[float, ...], expect: Expectations) -> Iterator[str]:
    n = expect.num_classes
    if expect.multi_hot:
        bad = [x for x in labels if x not in (0.0, 1.0)]
        if bad:
            yield f"multi-hot label vector holds {_num(bad[0])} (only 0 and 1 are allowed)"
        return
    for value in labels:
        if not math.isfinite(value) or not float(value).is_integer():
            yield f"label {_num(value)} is not an integer class index"
        elif value < 0 or (n is not None and value >= n):
            yield f"label {_num(value)} is outside [0, {n if n is not None else 'inf'})"


def _num(value: float) -> str:
    return str(int(value)) if math.isfinite(value) and float(value).is_integer() else repr(value)
