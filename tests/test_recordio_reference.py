"""imgprep's RecordIO module judged by the real readers: MXNet 1.9.1 and DALI's CPU reader.

Framing edge cases (the magic word inside payloads, aligned or not, empty payloads) are where
hand-written RecordIO code usually breaks, and a reader only notices on real data much later.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from imgprep.formats import recordio

MAGIC = struct.pack("<I", 0xCED7230A)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def words(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 4}I", data))


# ------------------------------------------------------------------------------ framing, pure

def test_magic_constant():
    assert recordio.MAGIC == 0xCED7230A


def test_frame_splits_at_aligned_magic():
    framed = recordio.frame(b"1234" + MAGIC + b"5678")
    assert words(framed) == [0xCED7230A, 0x20000004, *words(b"1234"), 0xCED7230A, 0x60000004, *words(b"5678")]


@pytest.mark.parametrize(
    ("payload", "lrecs"),
    [
        (b"", [0x00000000]),
        (MAGIC, [0x20000000, 0x60000000]),
        (b"a" + MAGIC + b"bcd", [0x00000008]),
        (MAGIC + MAGIC, [0x20000000, 0x40000000, 0x60000000]),
        (b"12345", [0x00000005]),
    ],
    ids=["empty", "only-magic", "unaligned", "two-magics", "padded"],
)
def test_frame_lrec_words(payload, lrecs):
    framed = recordio.frame(payload)
    assert len(framed) % 4 == 0
    found, pos = [], 0
    while pos < len(framed):
        magic, lrec = struct.unpack_from("<II", framed, pos)
        assert magic == recordio.MAGIC
        found.append(lrec)
        length = lrec & ((1 << 29) - 1)
        pos += 8 + length + (-length % 4)
    assert found == lrecs


# ------------------------------------------------------------------------------ payload corpus

def _long_payload(size: int, seed: int) -> bytes:
    """Random bytes with the magic planted at aligned and unaligned offsets."""
    import random

    rnd = random.Random(seed)
    data = bytearray(rnd.randbytes(size))
    for pos in (0, 4, 1000, size // 2 & ~3, size - 8):
        data[pos : pos + 4] = MAGIC
    for pos in (1, 10_003, size - 5):
        data[pos : pos + 4] = MAGIC
    return bytes(data)


EDGE_PAYLOADS = {
    "empty": b"",
    "one-byte": b"x",
    "three-bytes": b"xyz",
    "only-magic": MAGIC,
    "magic-first": MAGIC + b"tail",
    "magic-last-aligned": b"head" + MAGIC,
    "magic-last-unaligned": b"hea" + MAGIC,
    "magic-then-byte": b"1234" + MAGIC + b"5",
    "reference-example": b"1234" + MAGIC + b"5678",
    "unaligned-1": b"a" + MAGIC + b"bcd",
    "unaligned-2": b"ab" + MAGIC + b"cd",
    "unaligned-3": b"abc" + MAGIC,
    "magic-run": MAGIC * 5,
    "magic-run-unaligned": b"z" + MAGIC * 5,
    "mixed": b"1234" + MAGIC + MAGIC + b"xy" + MAGIC + b"ab" + MAGIC + b"!",
    "partial-magic-tail": b"abcd" + MAGIC[:3],
    "zeros": bytes(64),
    "long-1MiB": _long_payload(1 << 20, 1),
    "long-odd": _long_payload(100_003, 2),
}


@pytest.fixture(scope="module")
def edge_files(tmp_path_factory):
    """EDGE_PAYLOADS written by imgprep with keys 0..n-1 and by MXNet, side by side."""
    root = tmp_path_factory.mktemp("edge")
    payloads = list(EDGE_PAYLOADS.values())
    rec, idx = root / "imgprep.rec", root / "imgprep.idx"
    with recordio.RecordWriter(rec, idx) as writer:
        offsets = [writer.write(p, key=k) for k, p in enumerate(payloads)]
    return {"root": root, "rec": rec, "idx": idx, "payloads": payloads, "offsets": offsets}


def test_mxnet_reads_imgprep_edge_payloads_sequentially(mxnet, edge_files):
    got = mxnet.run("raw", edge_files["rec"])
    assert [(g["len"], g["sha256"]) for g in got] == [(len(p), sha(p)) for p in edge_files["payloads"]]


def test_mxnet_reads_imgprep_edge_payloads_by_key(mxnet, edge_files):
    got = mxnet.run("raw", edge_files["rec"], edge_files["idx"])
    payloads = edge_files["payloads"]
    assert [g["key"] for g in got] == list(range(len(payloads)))
    assert [(g["len"], g["sha256"]) for g in got] == [(len(p), sha(p)) for p in payloads]


def test_imgprep_writes_what_mxnet_writes(mxnet, edge_files):
    """Byte-identical .rec and .idx: nothing for any dmlc-based reader to disagree about."""
    root = edge_files["root"]
    payload_json = root / "payloads.json"
    payload_json.write_text(json.dumps([p.hex() for p in edge_files["payloads"]]))
    mxnet.run("write", root / "mx.rec", root / "mx.idx", payload_json)
    assert (root / "mx.rec").read_bytes() == edge_files["rec"].read_bytes()
    assert (root / "mx.idx").read_text() == edge_files["idx"].read_text()


def test_imgprep_reads_its_edge_payloads(edge_files):
    payloads, offsets = edge_files["payloads"], edge_files["offsets"]
    with recordio.RecordReader(edge_files["rec"], edge_files["idx"]) as reader:
        assert list(reader) == payloads
        assert reader.keys == list(range(len(payloads)))
        assert [reader.read_key(k) for k in reversed(reader.keys)] == payloads[::-1]
        assert [reader.read_at(o) for o in offsets] == payloads
        # Resynchronising from inside any record lands on the next record start.
        for i, off in enumerate(offsets):
            assert [o for o, _ in reader.scan(off + 1)] == offsets[i + 1 :]
            assert [p for _, p in reader.scan(off)] == payloads[i:]


# ------------------------------------------------------------------------------ image records

def _jpeg_with_magic(img: bytes, header_len: int) -> bytes:
    """Insert a JPEG comment holding the magic word at aligned record offsets (and one unaligned).

    The record then has to be split into parts by the writer and glued back by the reader, and
    the image must still decode.
    """
    com_data_at = header_len + 2 + 4  # record offset of the comment's data: after SOI, marker, length
    pad = -com_data_at % 4
    body = b"\0" * pad + MAGIC + b"...." + MAGIC + b"x" + MAGIC + b"yyy" + MAGIC
    segment = b"\xff\xfe" + struct.pack(">H", len(body) + 2) + body
    return img[:2] + segment + img[2:]


def _shape_of(data: bytes) -> tuple[int, ...]:
    """(H, W[, C]) the way cv2.imdecode(IMREAD_UNCHANGED) reports it."""
    with Image.open(io.BytesIO(data)) as im:
        channels = {"L": 1, "RGB": 3, "RGBA": 4, "CMYK": 4}[im.mode]
        return (im.height, im.width) if channels == 1 else (im.height, im.width, channels)


@pytest.fixture(scope="module")
def single_label_records(tmp_path_factory):
    import imgfactory as f

    root = tmp_path_factory.mktemp("single")
    images = [
        f.jpeg(64, 48, seed=1),
        f.jpeg(40, 72, seed=2, progressive=True),
        f.jpeg(50, 50, seed=3, mode="L"),
        f.png(36, 44, seed=4),
        f.png(33, 35, seed=5, mode="RGBA"),
        f.jpeg(130, 97, seed=6, quality=75),
    ]
    images.append(_jpeg_with_magic(f.jpeg(48, 48, seed=7), recordio.IR_SIZE))
    records = []
    for i, img in enumerate(images):
        rid = 100 + 3 * i  # ids and keys need not be 0..n-1
        label = float(i % 4) + (0.5 if i == 5 else 0.0)
        records.append({"key": rid, "id": rid, "id2": i, "label": label, "img": img})
    rec, idx = root / "single.rec", root / "single.idx"
    with recordio.RecordWriter(rec, idx) as writer:
        for r in records:
            payload = recordio.pack_image_record(r["label"], r["id"], r["img"], id2=r["id2"])
            writer.write(payload, key=r["key"])
    return rec, idx, records


def test_magic_jpeg_record_is_split(single_label_records):
    _, _, records = single_label_records
    payload = recordio.pack_image_record(0.0, 0, records[-1]["img"])
    framed = recordio.frame(payload)
    assert struct.unpack_from("<I", framed, 4)[0] >> 29 == 1, "the test record must need splitting"


@pytest.mark.parametrize("mode", ["indexed", "sequential"])
def test_mxnet_reads_single_label_records(mxnet, single_label_records, mode):
    rec, idx, records = single_label_records
    got = mxnet.run("indexed", rec, idx) if mode == "indexed" else mxnet.run("sequential", rec)
    assert len(got) == len(records)
    for g, r in zip(got, records):
        if mode == "indexed":
            assert g["key"] == r["key"]
        assert g["flag"] == 0
        assert g["labels"] == [r["label"]]
        assert (g["id"], g["id2"]) == (r["id"], r["id2"])
        assert (g["image_len"], g["sha256"]) == (len(r["img"]), sha(r["img"]))
        assert tuple(g["shape"]) == _shape_of(r["img"])


def test_dali_reads_single_label_records(dali, single_label_records):
    rec, idx, records = single_label_records
    got = dali.read(rec, idx, decode=True, batch_size=4)
    assert len(got) == len(records)
    for g, r in zip(got, records):
        assert g["labels"] == [r["label"]]
        assert (g["len"], g["sha256"]) == (len(r["img"]), sha(r["img"]))
        assert g["shape"] == [*_shape_of(r["img"])[:2], 3]


@pytest.fixture(scope="module")
def multi_label_records(tmp_path_factory):
    import imgfactory as f

    root = tmp_path_factory.mktemp("multi")
    width = 5
    records = []
    for i in range(9):
        hot = [float((i >> b) & 1) for b in range(width)]
        img = f.jpeg(40 + 4 * i, 36 + 2 * i, seed=10 + i)
        if i == 4:
            img = _jpeg_with_magic(img, recordio.IR_SIZE + 4 * width)
        records.append({"id": i, "labels": hot, "img": img})
    rec, idx = root / "multi.rec", root / "multi.idx"
    with recordio.RecordWriter(rec, idx) as writer:
        for r in records:
            writer.write(recordio.pack_image_record(r["labels"], r["id"], r["img"]), key=r["id"])
    return rec, idx, records, width


def test_unpack_image_record_round_trip(multi_label_records):
    rec, idx, records, width = multi_label_records
    with recordio.RecordReader(rec, idx) as reader:
        for r in records:
            header, labels, img = recordio.unpack_image_record(reader.read_key(r["id"]))
            assert header.flag == width and header.label == 0.0 and header.id == r["id"]
            assert list(labels) == r["labels"]
            assert img == r["img"]


def test_mxnet_reads_multi_label_records(mxnet, multi_label_records):
    rec, idx, records, width = multi_label_records
    for got in (mxnet.run("indexed", rec, idx), mxnet.run("sequential", rec)):
        assert [g["flag"] for g in got] == [width] * len(records)
        assert [g["labels"] for g in got] == [r["labels"] for r in records]
        assert [g["id"] for g in got] == [r["id"] for r in records]
        assert [g["sha256"] for g in got] == [sha(r["img"]) for r in records]
        assert [tuple(g["shape"]) for g in got] == [_shape_of(r["img"]) for r in records]


def test_mxnet_image_record_iter_reads_multi_label(mxnet, multi_label_records):
    rec, idx, records, width = multi_label_records
    got = mxnet.run("iter", rec, idx, "--data-shape", "3,32,32", "--label-width", width, "--batch-size", 4)
    assert got["data_shape"] == [3, 32, 32]
    assert [s["labels"] for s in got["samples"]] == [r["labels"] for r in records]


def test_dali_reads_multi_label_records(dali, multi_label_records):
    rec, idx, records, _ = multi_label_records
    got = dali.read(rec, idx, decode=True, batch_size=4)
    assert [g["labels"] for g in got] == [r["labels"] for r in records]
    assert [g["sha256"] for g in got] == [sha(r["img"]) for r in records]
    assert [g["shape"] for g in got] == [[*_shape_of(r["img"])[:2], 3] for r in records]


# ------------------------------------------------------------------------------ MXNet writes, imgprep reads

_pieces = st.sampled_from([MAGIC, MAGIC[:1], MAGIC[1:], MAGIC[:3], b"\x00", b"abcd", b"\xff\xfe"])
payload_strategy = st.one_of(
    st.binary(max_size=40),
    st.lists(st.one_of(_pieces, st.binary(max_size=5)), max_size=12).map(b"".join),
    st.binary(min_size=1000, max_size=5000),
)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=st.lists(payload_strategy, min_size=1, max_size=40), data=st.data())
def test_imgprep_reads_what_mxnet_writes(mxnet, batch, data):
    """One MXNet subprocess per example, each writing a whole batch of payloads."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "p.json").write_text(json.dumps([p.hex() for p in batch]))
        mxnet.run("write", root / "mx.rec", root / "mx.idx", root / "p.json")
        offsets = [int(line.split("\t")[1]) for line in (root / "mx.idx").read_text().splitlines()]
        with recordio.RecordReader(root / "mx.rec", root / "mx.idx") as reader:
            assert list(reader) == batch
            assert reader.keys == list(range(len(batch)))
            assert [reader.read_key(k) for k in reader.keys] == batch
            assert [reader.read_at(o) for o in offsets] == batch
            start = data.draw(st.integers(0, (root / "mx.rec").stat().st_size), label="scan start")
            assert [o for o, _ in reader.scan(start)] == [o for o in offsets if o >= start]
        assert b"".join(recordio.frame(p) for p in batch) == (root / "mx.rec").read_bytes()
