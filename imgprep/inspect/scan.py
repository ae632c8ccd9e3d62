"""Every image to a handful of numbers, decoded in parallel; no pixels are kept.

Per image: split, id, first label (or the number of positive labels for multi-label data),
stored size, encoded bytes, and the duplicate fingerprint ``convert --dedup`` takes too
(:func:`imgprep.splits.dedup.measure`: content digest, pHash, its crop windows) — about 110
bytes in typed arrays.  The thumbnails exist only while a worker hashes them; workers take
batches of images and the decoding releases the GIL, so every core hashes.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from imgprep.errors import FormatError, ImageError
from imgprep.inspect.collect import Image, Split
from imgprep.splits.dedup import Measured, Prints, measure

BATCH = 32


@dataclass
class Table:
    """Column arrays, one row per readable image, in the order the splits yield them."""

    split: array = field(default_factory=lambda: array("B"))
    id: array = field(default_factory=lambda: array("q"))
    label: array = field(default_factory=lambda: array("l"))  # first label (class index)
    positives: array = field(default_factory=lambda: array("H"))  # labels set (multi-hot) or 1
    width: array = field(default_factory=lambda: array("I"))
    height: array = field(default_factory=lambda: array("I"))
    channels: array = field(default_factory=lambda: array("B"))
    encoded: array = field(default_factory=lambda: array("Q"))
    labelkey: array = field(default_factory=lambda: array("q"))  # equal iff the label vectors are equal
    prints: Prints = field(default_factory=Prints)
    locator: array = field(default_factory=lambda: array("Q"))  # record offset or list position
    counts: dict[tuple[int, int], int] = field(default_factory=dict)  # (split, class) -> images
    multi_label: bool = False
    errors: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.id)

    def column(self, name: str) -> np.ndarray:
        return np.frombuffer(getattr(self, name), dtype=getattr(self, name).typecode) if len(self) else np.zeros(0)


Row = Measured


def _measure(batch: list[Image]) -> list[Row | str]:
    out: list[Row | str] = []
    for image in batch:
        try:
            out.append(measure(image.data))
        except ImageError as exc:
            out.append(exc.message)
    return out


def scan(splits: Iterable[Split], *, workers: int | None = None,
         tick: Callable[[int], object] = lambda n: None) -> Table:
    """Measure every image of ``splits`` with ``workers`` threads (native decode releases the GIL);
    splits whose fingerprints were recorded (``split.prints``, :mod:`imgprep.inspect.recorded`)
    are read, not decoded."""
    splits = list(splits)
    if splits and all(s.prints is not None for s in splits):
        return _recorded(splits, tick)
    table = Table()
    workers = workers or os.cpu_count() or 1
    pending: list[tuple[int, list[Image], Future[list[Row | str]]]] = []
    with ThreadPoolExecutor(workers) as pool:
        for number, split in enumerate(splits):
            batch: list[Image] = []
            for image in split.images():
                batch.append(image)
                if len(batch) == BATCH:
                    pending.append((number, batch, pool.submit(_measure, batch)))
                    batch = []
                    _drain(pending, table, split, 4 * workers, tick)
            if batch:
                pending.append((number, batch, pool.submit(_measure, batch)))
            _drain(pending, table, split, 0, tick)
    return table


def _recorded(splits: list[Split], tick: Callable[[int], object]) -> Table:
    """The table from the records' headers and the recorded fingerprint columns: no image decoded."""
    from imgprep.splits.prints_file import JoinedPrints

    table = Table()
    for number, split in enumerate(splits):
        sizes = {name: split.prints.column(name) for name in ("width", "height", "channels", "id")}
        row = 0
        for image in split.images():
            if image.id != int(sizes["id"][row]):
                raise FormatError(f"row {row} is record id {int(sizes['id'][row])}, the .rec holds id {image.id}",
                                  path=split.prints.uri)
            _append(table, number, image, Measured(int(sizes["width"][row]), int(sizes["height"][row]),
                                                   int(sizes["channels"][row]), 0, None), prints=False)
            row += 1
            if row % BATCH == 0:
                tick(BATCH)
        tick(row % BATCH)
    table.prints = JoinedPrints([s.prints for s in splits])  # type: ignore[assignment]
    return table


def _drain(pending: list[tuple[int, list[Image], Future[list[Row | str]]]], table: Table, split: Split,
           limit: int, tick: Callable[[int], object]) -> None:
    while len(pending) > limit:
        number, batch, future = pending.pop(0)
        for image, row in zip(batch, future.result(), strict=True):
            if isinstance(row, str):
                path = image.path or split.path_of(image.id)
                table.errors.append(f"{split.name}: id {image.id} ({path}): {row}")
                continue
            _append(table, number, image, row)
        tick(len(batch))


def _append(table: Table, number: int, image: Image, row: Row, *, prints: bool = True) -> None:
    table.split.append(number)
    table.id.append(image.id)
    if len(image.labels) > 1:
        table.multi_label = True
        classes = [k for k, x in enumerate(image.labels) if x]
        table.label.append(classes[0] if classes else -1)
    else:
        classes = [int(image.labels[0])] if image.labels else []
        table.label.append(classes[0] if classes else -1)
    table.positives.append(len(classes))
    for k in classes:
        table.counts[number, k] = table.counts.get((number, k), 0) + 1
    for column, value in (("width", row.width), ("height", row.height), ("channels", row.channels),
                          ("encoded", len(image.data)), ("labelkey", hash(tuple(float(x) for x in image.labels)))):
        getattr(table, column).append(value)
    if prints:
        table.prints.add(row)
    table.locator.append(image.locator)
