"""imgprep's RecordIO module on its own: framing rules, image headers, index, reader paths."""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imgprep.errors import FormatError
from imgprep.formats import recordio as rio

M = rio.MAGIC_BYTES


def parts(framed: bytes) -> list[tuple[int, int]]:
    """(cflag, length) of each part of a framed record."""
    out, pos = [], 0
    while pos < len(framed):
        magic, lrec = struct.unpack_from("<II", framed, pos)
        assert magic == rio.MAGIC
        length = lrec & ((1 << 29) - 1)
        out.append((lrec >> 29, length))
        pos += 8 + length + (-length % 4)
    return out


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", [(0, 0)]),
        (b"abc", [(0, 3)]),
        (M, [(1, 0), (3, 0)]),
        (b"1234" + M + b"5678", [(1, 4), (3, 4)]),
        (b"x" + M + b"yyy", [(0, 8)]),  # unaligned magic stays in the data
        (M + M, [(1, 0), (2, 0), (3, 0)]),
        (b"abcd" + M + b"ef", [(1, 4), (3, 2)]),
        (b"ab" + M, [(0, 6)]),
    ],
    ids=[
        "empty",
        "short",
        "only-magic",
        "dmlc-example",
        "unaligned",
        "two-magics",
        "odd-tail",
        "magic-at-unaligned-end",
    ],
)
def test_frame_splits_exactly_like_dmlc(payload: bytes, expected: list[tuple[int, int]]) -> None:
    framed = rio.frame(payload)
    assert parts(framed) == expected
    assert len(framed) % 4 == 0


def test_dmlc_example_lrec_words() -> None:
    framed = rio.frame(b"1234" + M + b"5678")
    assert struct.unpack_from("<I", framed, 4)[0] == 0x20000004
    assert struct.unpack_from("<I", framed, 16)[0] == 0x60000004


def test_padding_is_zero_bytes() -> None:
    framed = rio.frame(b"abcde")
    assert framed[8 + 5 :] == b"\0\0\0"


def _roundtrip(payloads: list[bytes]) -> tuple[list[bytes], bytes, bytes]:
    rec, idx = io.BytesIO(), io.BytesIO()
    with rio.RecordWriter(rec, idx) as writer:
        for i, p in enumerate(payloads):
            writer.write(p, key=i * 3)
    rec.seek(0)
    return list(rio.RecordReader(rec)), rec.getvalue(), idx.getvalue()


aligned_magic_payloads = st.lists(st.sampled_from([b"ab", b"abcd", M, b"\0" * 4, b"\x0a\x23"]), max_size=12).map(
    b"".join
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=64), aligned_magic_payloads), max_size=8))
def test_any_payload_round_trips(payloads: list[bytes]) -> None:
    read, _, _ = _roundtrip(payloads)
    assert read == payloads


def test_index_lines_and_random_access(tmp_path) -> None:
    payloads = [b"a", M, b"", b"12345678" + M + b"z"]
    rec, idx = tmp_path / "x.rec", tmp_path / "x.idx"
    with rio.RecordWriter(rec, idx) as writer:
        offsets = [writer.write(p, key=10 + i) for i, p in enumerate(payloads)]
    lines = idx.read_text().splitlines()
    assert lines == [f"{10 + i}\t{o}" for i, o in enumerate(offsets)]
    with rio.RecordReader(rec, idx) as reader:
        assert reader.keys == [10, 11, 12, 13]
        assert [reader.read_key(10 + i) for i in range(4)] == payloads
        assert reader.read_at(offsets[3]) == payloads[3]
        with pytest.raises(FormatError, match="key 99"):
            reader.read_key(99)


def test_scan_resynchronises_from_any_offset(tmp_path) -> None:
    payloads = [bytes([i]) * (i * 7) + (M if i % 2 else b"") + b"tail" for i in range(20)]
    rec = tmp_path / "x.rec"
    with rio.RecordWriter(rec) as writer:
        offsets = [writer.write(p) for p in payloads]
    size = rec.stat().st_size
    with rio.RecordReader(rec) as reader:
        for start in range(0, size + 1, 3):
            first = next((i for i, o in enumerate(offsets) if o >= start), None)
            got = [p for _, p in reader.scan(start)]
            assert got == (payloads[first:] if first is not None else [])


def test_reader_reports_corruption(tmp_path) -> None:
    rec = tmp_path / "x.rec"
    with rio.RecordWriter(rec) as writer:
        writer.write(b"hello world")
    data = rec.read_bytes()
    (tmp_path / "bad.rec").write_bytes(b"XXXX" + data[4:])
    with rio.RecordReader(tmp_path / "bad.rec") as reader, pytest.raises(FormatError, match="magic"):
        list(reader)
    (tmp_path / "short.rec").write_bytes(data[:10])
    with rio.RecordReader(tmp_path / "short.rec") as reader, pytest.raises(FormatError, match="truncated"):
        list(reader)


def test_image_record_headers() -> None:
    single = rio.pack_image_record(3, 7, b"JPEG")
    assert len(single) == 24 + 4
    header, labels, image = rio.unpack_image_record(single)
    assert header == rio.IRHeader(0, 3.0, 7, 0) and labels == (3.0,) and image == b"JPEG"
    multi = rio.pack_image_record([1, 0, 1], 9, b"PNG", id2=2)
    header, labels, image = rio.unpack_image_record(multi)
    assert header.flag == 3 and header.label == 0.0 and header.id == 9 and header.id2 == 2
    assert labels == (1.0, 0.0, 1.0) and image == b"PNG"
    with pytest.raises(FormatError, match="header says 5 labels"):
        rio.unpack_image_record(struct.pack("<IfQQ", 5, 0, 1, 0) + b"\0" * 8)
    with pytest.raises(FormatError, match="shorter than"):
        rio.unpack_image_record(b"\0" * 10)


def test_read_index_validates(tmp_path) -> None:
    bad = tmp_path / "bad.idx"
    bad.write_text("0\t0\n1\t4\n1\t8\n")
    with pytest.raises(FormatError, match=r"bad\.idx:3: duplicate key 1"):
        rio.read_index(bad)
    bad.write_text("0\t0\nx\t4\n")
    with pytest.raises(FormatError, match=r":2: expected 'key<TAB>offset'"):
        rio.read_index(bad)
    bad.write_text("0\t6\n")
    with pytest.raises(FormatError, match="aligned"):
        rio.read_index(bad)


def test_writer_closes_files_it_opened(tmp_path) -> None:
    writer = rio.RecordWriter(tmp_path / "a.rec", tmp_path / "a.idx")
    writer.write(b"x")
    writer.close()
    assert (tmp_path / "a.rec").stat().st_size == 12
    assert (tmp_path / "a.idx").read_text() == "0\t0\n"


def test_count_records(tmp_path) -> None:
    with rio.RecordWriter(tmp_path / "a.rec") as writer:
        for p in (b"", M, b"abc"):
            writer.write(p)
    assert rio.count_records(tmp_path / "a.rec") == 3


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**40), st.one_of(st.binary(max_size=40), aligned_magic_payloads)),
                min_size=1, max_size=8),
       st.integers(1, 50))
def test_record_ids_walks_any_stream_in_any_chunks(records: list[tuple[int, bytes]], chunk: int) -> None:
    # Ids whose bytes hold the magic word split the header itself across parts.
    records = [(rio.MAGIC if i == 1 else key, image) for i, (key, image) in enumerate(records)]
    stream, expected = b"", []
    for key, image in records:
        expected.append((len(stream), key))
        stream += rio.frame(rio.pack_image_record(1.0, key, image))
    chunks = [stream[i : i + chunk] for i in range(0, len(stream), chunk)]
    assert list(rio.record_ids(chunks)) == expected


def test_record_ids_reports_a_cut_or_foreign_stream() -> None:
    framed = rio.frame(rio.pack_image_record(2.0, 5, b"x" * 30))
    with pytest.raises(FormatError, match="truncated"):
        list(rio.record_ids([framed[:-4]]))
    with pytest.raises(FormatError, match="magic"):
        list(rio.record_ids([framed + b"XXXXXXXX"]))
    with pytest.raises(FormatError, match="shorter than an image record header"):
        list(rio.record_ids([rio.frame(b"tiny")]))
