"""Every parser under hypothesis: whatever the bytes, only imgprep's own errors come out.

The ``.lst``, IDX (raw and gzip), Ground Truth manifest and COCO parsers and the RecordIO
reader get inputs built from the characters and structures that matter to them (tabs,
newlines, BOMs, digits, brackets, magic numbers, plausible JSON records) as well as noise.
The two text formats imgprep writes are also checked the other way round: anything the writer
accepts reads back exactly as meant, and anything it cannot carry is refused at write time.
"""

from __future__ import annotations

import gzip
import io
import json
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from imgprep.errors import ImgprepError
from imgprep.formats import manifest as manifest_format
from imgprep.formats import recordio
from imgprep.formats.idx import encode_idx, parse_idx, read_idx
from imgprep.formats.lst import LstItem, dumps, parse_lines
from imgprep.sources.coco import load_coco

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------------- .lst

LST_ALPHABET = st.sampled_from(
    ["\t", "\n", "\r", "\r\n", "\ufeff", "0", "1", "7", "-", ".", "e", "9" * 25, "nan", "inf", "a", "/", "..",
     "\\", "C:", " ", "\x00", "\x1c", "\u2028", "\udcff", "é", "1e39", str(2**64)]
)


@FUZZ
@given(st.lists(LST_ALPHABET, max_size=40).map("".join) | st.text(max_size=120))
def test_lst_parser_raises_only_format_errors(text: str) -> None:
    try:
        items = list(parse_lines(text.splitlines(keepends=True), path="fuzz.lst"))
    except ImgprepError as exc:
        assert "\n" not in str(exc)
        return
    # whatever was accepted is written back and read again unchanged
    assert list(parse_lines(dumps(items).splitlines(keepends=True))) == items


names = st.text(st.characters(), min_size=1, max_size=16)
labels = st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=3)


@FUZZ
@given(st.lists(st.tuples(st.integers(-1, 2**65), labels, names), max_size=6, unique_by=lambda t: t[0]))
def test_lst_written_is_read_back_exactly_or_refused(rows) -> None:
    items = [LstItem(i, tuple(lab), f"d/{name}") for i, lab, name in rows]
    try:
        text = dumps(items)
    except ImgprepError:
        return  # refused at write time: nothing written through
    assert list(parse_lines(text.splitlines(keepends=True))) == items
    assert list(parse_lines(io.StringIO(text, newline=""))) == items  # as read_lst reads files


# ----------------------------------------------------------------------------------- IDX

headers = st.builds(
    lambda code, dims, body: struct.pack(">BBBB", 0, 0, code, len(dims)) + struct.pack(f">{len(dims)}I", *dims) + body,
    st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07]),
    st.lists(st.integers(0, 6) | st.integers(0, 2**32 - 1), max_size=4),
    st.binary(max_size=64),
)


@FUZZ
@given(headers | st.binary(max_size=64))
def test_idx_parser_raises_only_format_errors(data: bytes) -> None:
    try:
        array = parse_idx(data, path="fuzz")
    except ImgprepError:
        return
    assert encode_idx(array) == data


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(headers, st.integers(0, 80), st.booleans())
@example(b"\x00\x00\x08\x01\x00\x00\x00\x00", 0, True)  # once looped forever on the junk member
def test_gzip_idx_reader_raises_only_format_errors(scratch, data: bytes, cut: int, tail: bool) -> None:
    packed = gzip.compress(data, mtime=0)
    packed = packed[: len(packed) - cut] + (b"\x1f\x8b\x08junk" if tail else b"")
    path = scratch / "fuzz-idx.gz"
    path.write_bytes(packed)
    try:
        array = read_idx(path)
    except ImgprepError:
        return
    assert encode_idx(array) == data


# ------------------------------------------------------------------------------ manifests

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**13) | st.floats() | st.text(max_size=8) | st.just("²"),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
gt_records = st.fixed_dictionaries(
    {"source-ref": st.just("s3://b/p/x.jpg") | st.text(max_size=12), "label": json_values},
    optional={"label-metadata": json_values, "other": json_values},
)
manifest_lines = st.one_of(
    gt_records.map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=40),
    st.just("[" * 5000),
)


@FUZZ
@given(st.lists(manifest_lines, max_size=5), st.sampled_from(["class-id", "multi-hot"]))
def test_manifest_parser_raises_only_format_errors(lines, label_format) -> None:
    try:
        manifest_format.parse_manifest(lines, path="fuzz.manifest", label_format=label_format)
    except ImgprepError as exc:
        assert len(str(exc)) < 1000


class_names = st.text(st.characters(), min_size=1, max_size=8)


@FUZZ
@given(st.lists(st.tuples(names, st.integers(0, 2)), min_size=1, max_size=5), st.lists(class_names, min_size=3,
       max_size=3, unique=True))
def test_manifest_written_is_read_back_exactly_or_refused(rows, classes) -> None:
    options = manifest_format.ManifestOptions(prefix="s3://bucket/data/", attribute="label", label_format="class-id")
    try:
        text = manifest_format.dumps(
            manifest_format.record(path, (float(c),), classes, multi_label=False, options=options) for path, c in rows
        )
        text.encode("utf-8")
        parsed = manifest_format.parse_manifest(text.splitlines(keepends=True))
    except ImgprepError:
        return  # refused: a name the format cannot carry
    except UnicodeEncodeError:
        pytest.fail("a manifest that cannot be written as UTF-8 was produced")
    assert parsed.refs == [f"s3://bucket/data/{path.lstrip('/')}" for path, _ in rows]
    assert parsed.labels == [[c] for _, c in rows]
    assert all(parsed.names[c] == classes[c] for _, c in rows)


# ----------------------------------------------------------------------------------- COCO

ids = st.integers(0, 3) | st.text(max_size=2) | st.none() | st.booleans() | st.floats(0, 3)
coco_images = st.lists(
    st.fixed_dictionaries({"id": ids}, optional={"file_name": st.text(max_size=10) | ids, "width": ids, "height": ids}),
    max_size=4,
)
coco_annotations = st.lists(
    st.fixed_dictionaries(
        {"image_id": ids, "category_id": ids}, optional={"iscrowd": ids, "area": ids | st.floats(), "id": ids}
    )
    | json_values,
    max_size=5,
)
coco_categories = st.lists(
    st.fixed_dictionaries({"id": ids, "name": st.text(max_size=4) | ids}, optional={"supercategory": json_values})
    | json_values,
    max_size=4,
)
coco_docs = st.fixed_dictionaries(
    {}, optional={"images": coco_images | json_values, "annotations": coco_annotations, "categories": coco_categories}
)


@FUZZ
@given(coco_docs | json_values, st.lists(st.text(max_size=3) | st.just("²"), max_size=2), st.floats(0, 20))
def test_coco_loader_raises_only_imgprep_errors(scratch, doc, categories, min_area) -> None:
    path = scratch / "fuzz-coco.json"
    path.write_text(json.dumps(doc))
    try:
        data = load_coco(str(path), categories=categories or None, min_area=min_area)
    except ImgprepError:
        return
    assert data.labels.shape == (len(data.paths), data.num_classes)
    assert data.labels.any(axis=1).all()


# ------------------------------------------------------------------------------- RecordIO


def valid_rec(payloads: list[bytes]) -> bytes:
    return b"".join(recordio.frame(p) for p in payloads)


def flip(data: bytes, at: int, value: int) -> bytes:
    at %= len(data)
    return data[:at] + bytes([value]) + data[at + 1 :]


valid_recs = st.lists(st.binary(max_size=40), min_size=1, max_size=4).map(valid_rec)
rec_bytes = st.one_of(
    st.binary(max_size=200),
    valid_recs,
    st.builds(flip, valid_recs, st.integers(0, 400), st.integers(0, 255)),
)


@FUZZ
@given(rec_bytes, st.integers(0, 64))
def test_recordio_reader_raises_only_format_errors(data: bytes, start: int) -> None:
    reader = recordio.RecordReader(io.BytesIO(data))
    try:
        for payload in reader:
            recordio.unpack_image_record(payload)
        for _, payload in reader.scan(start):
            recordio.unpack_image_record(payload)
    except ImgprepError:
        pass


@FUZZ
@given(st.text(st.sampled_from("0123456789\t\n -x"), max_size=60), st.lists(st.binary(max_size=30), max_size=3))
def test_recordio_index_and_keyed_reads(index_text, payloads) -> None:
    reader = recordio.RecordReader(io.BytesIO(valid_rec(payloads)))
    try:
        entries = recordio.parse_index(index_text, "fuzz.idx")
        for _, offset in entries:
            reader.read_at(offset)
    except ImgprepError:
        pass


def test_header_labels_round_trip() -> None:
    """The float32 bound the list parser applies is exactly what the record header can hold."""
    top = float(np.finfo(np.float32).max)
    header = recordio.pack_header((top, -top), 2**64 - 1)
    parsed, labels, _ = recordio.unpack_image_record(header)
    assert labels == (top, -top) and parsed.id == 2**64 - 1
