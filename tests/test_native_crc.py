"""pack_batch's CRC-32 of each framed record is zlib's, on every length and alignment: records of
64 bytes or more are folded with carry-less multiplies (native/batch.c, crc32_fold) and only
their tail goes through the table, so a wrong constant or a slip at a block edge would change
every record's checksum in the dataset record that readers verify."""

from __future__ import annotations

import random
import zlib

import imgprep._native  # noqa: F401 - the folded CRC is the native core's: without it this file fails, never skips
import pytest

from imgprep.imaging import native
from imgprep.imaging.spec import TransformSpec

pytestmark = pytest.mark.native

# around every edge of the folding: under one step (64), whole and partial 16-byte blocks, the
# 4-lane loop's first steps, and records of the sizes photos have
LENGTHS = [*range(0, 200), 1000, 1021, 4093, 4096, 4099, 45_000, 45_017, 200_003, 1 << 20]


@pytest.mark.parametrize("offset", [0, 1, 3])
def test_each_records_crc_is_zlibs(offset: int) -> None:
    rng = random.Random(offset)
    datas = [b"\xff\xd8\xff" + rng.randbytes(n) + b"\xff\xd9" for n in LENGTHS]
    # records start at every alignment in the batch's buffer: a leading record of `offset` words
    datas.insert(0, b"\xff\xd8\xff" + bytes(4 * offset) + b"\xff\xd9")
    batch = native.pack_records(TransformSpec(pass_through=True), [None] * len(datas), datas,
                                list(range(len(datas))), [(1.0,)] * len(datas), False, False)
    at = 0
    for k, (size, crc) in enumerate(zip(batch.sizes, batch.crcs, strict=True)):
        record = batch.records[at:at + size]
        assert size and crc == zlib.crc32(record), f"record {k} of {size} bytes"
        at += size


def test_a_record_of_aligned_magic_words_too() -> None:
    """A payload full of RecordIO's magic word is framed in parts; its checksum covers them all."""
    payload = b"\xff\xd8\xff\x00" + b"\x0a\x23\xd7\xce" * 5000 + b"\xff\xd9"
    batch = native.pack_records(TransformSpec(pass_through=True), [None], [payload], [7], [(2.0,)], False, False)
    assert batch.sizes[0] > len(payload) and batch.crcs[0] == zlib.crc32(batch.records)
