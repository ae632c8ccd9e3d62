"""What a pack holds per record: flat, but for the 4 bytes of each record's CRC-32 it must keep
until the dataset record is written (its text goes out in pieces, never whole)."""

from __future__ import annotations

import tracemalloc

import imgfactory

import imgprep
from imgprep.formats.lst import LstItem
from imgprep.packing.packer import PackOptions, pack


def _peak(tmp_path, records: int) -> int:
    root = tmp_path / "images"
    root.mkdir(exist_ok=True)
    (root / "t.jpg").write_bytes(imgfactory.jpeg(8, 8, seed=1))
    items = [LstItem(i, (float(i % 3),), "t.jpg") for i in range(records)]
    options = PackOptions(num_workers=1, storage=imgprep.Storage(), quiet=True, report=False)
    tracemalloc.start()
    try:
        pack(items, str(root), str(tmp_path / f"out{records}" / "train"),
             imgprep.TransformSpec(pass_through=True), options)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_what_a_pack_holds_per_record_is_its_checksum(tmp_path) -> None:
    """Between 20,000 and 200,000 records the peak of Python's memory grows by at most 10 bytes a
    record: the CRC-32 array (4, and as much again for a moment while it grows), not its base64
    text (5.3) beside the record's JSON text and its encoded copy, which the writer of the
    dataset record once held all at once (18-21 bytes a record)."""
    small, large = _peak(tmp_path, 20_000), _peak(tmp_path, 200_000)
    assert (large - small) / 180_000 <= 10, (small, large)
