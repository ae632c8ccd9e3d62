"""Per-record checksums beside the shards: verify names the record a flipped byte hit, a reader
checks records as it reads, and the ``.rec``/``.idx`` stay what MXNet and DALI read."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest

import imgprep
from imgprep.api import verify
from imgprep.errors import FormatError
from imgprep.formats import checksums, recordio
from imgprep.formats import dataset as ds
from imgprep.formats.lst import LstItem

N = 10


@pytest.fixture
def packed(tmp_path, imgfactory):
    for i in range(N):
        imgfactory.write(tmp_path / "img" / f"{i}.jpg", imgfactory.jpeg(60 + i, 50, seed=i))
    items = [LstItem(i, (float(i % 2),), f"{i}.jpg") for i in range(N)]
    imgprep.pack(items, tmp_path / "img", tmp_path / "out" / "train", num_workers=1)
    return tmp_path / "out" / "train"


def _record(prefix) -> ds.DatasetRecord:
    path = Path(str(prefix) + ds.SUFFIX)
    return ds.from_json(path.read_bytes(), str(path))


def test_dataset_record_keeps_one_crc_per_framed_record(packed):
    entry = _record(packed).shards[0]
    crcs = checksums.decode(entry.record_crc32, entry.records)
    rec = packed.with_suffix(".rec").read_bytes()
    offsets = [o for _, o in recordio.read_index(packed.with_suffix(".idx"))]
    ends = [*offsets[1:], len(rec)]
    assert list(crcs) == [zlib.crc32(rec[a:b]) for a, b in zip(offsets, ends, strict=True)]
    # a reader holding the payload (MXRecordIO.read) checks it the same way
    with recordio.RecordReader(packed.with_suffix(".rec"), packed.with_suffix(".idx")) as reader:
        checksums.check_record(reader.read_at(offsets[3]), crcs[3], framed=False)
    assert list(checksums.spans([rec[:100], rec[100:]])) == list(zip(offsets, crcs, strict=True))


def test_a_flipped_byte_is_named_to_its_record_even_where_the_image_still_decodes(packed):
    rec = packed.with_suffix(".rec")
    offsets = dict(recordio.read_index(packed.with_suffix(".idx")))
    data = bytearray(rec.read_bytes())
    data[offsets[6] + 8 + 24 + 30] ^= 0x01  # inside record 6's JPEG header: still decodes
    rec.write_bytes(bytes(data))
    problems = [str(p) for p in verify(str(rec), progress=False, num_workers=1).problems]
    assert problems[0].startswith(f"train.rec record #6 (id 6, byte {offsets[6]}): bytes differ from the packed "
                                  "record (CRC-32 ")
    assert problems[-1].startswith("train.rec: SHA-256") and "(1 damaged record(s) named above)" in problems[-1]
    assert len(problems) == 2
    entry = _record(packed).shards[0]
    crcs = checksums.decode(entry.record_crc32, entry.records)
    framed = bytes(data[offsets[6]:offsets[7]])
    with pytest.raises(checksums.RecordChecksumError, match=r"record 6: CRC-32 .* differs from the packed"):
        checksums.check_record(framed, checksums.by_offset(crcs, offsets.values())[offsets[6]], where="record 6")


def test_checksums_survive_sharding_and_resume(tmp_path, imgfactory):
    for i in range(N):
        imgfactory.write(tmp_path / "img" / f"{i}.jpg", imgfactory.jpeg(40, 40, seed=i))
    items = [LstItem(i, (0.0,), f"{i}.jpg") for i in range(N)]
    out = tmp_path / "out" / "train"
    imgprep.pack(items, tmp_path / "img", out, shard_records=3, num_workers=1)
    record = _record(out)
    assert len(record.shards) == 4 and all(s.record_crc32 for s in record.shards)
    # a resumed run reads back the shards an earlier run published: same record, byte for byte
    whole = Path(str(out) + ds.SUFFIX)
    first = whole.read_text()
    progress = Path(ds.progress_name(str(out)))
    done = json.loads(first)
    for shard in done["shards"]:
        del shard["record_crc32"]
    kept = {"kind": "imgprep.progress", "record": done, "consumed": [3, 6, 9, 10], "skipped_through": [0, 0, 0, 0],
            "skipped": [], "open": None}
    kept["record"]["shards"] = kept["record"]["shards"][:2]
    kept["consumed"], kept["skipped_through"] = [3, 6], [0, 0]
    kept["record"]["records"] = 6
    (tmp_path / "out" / "train.dataset.json").unlink()
    progress.write_text(json.dumps(kept))
    imgprep.pack(items, tmp_path / "img", out, shard_records=3, num_workers=1, resume=True)
    assert whole.read_text() == first


def test_malformed_checksums_are_refused_naming_the_field(packed):
    path = str(packed) + ds.SUFFIX
    doc = json.loads(Path(path).read_text())
    doc["shards"][0]["record_crc32"] = "AAAA"
    with pytest.raises(FormatError, match=r"shards\[0\]\.record_crc32 holds 0 checksums for 10 records"):
        ds.from_json(json.dumps(doc), path)

