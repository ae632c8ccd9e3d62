"""The dataset record: round trip, canonical bytes, and one-line errors for every defect."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imgprep.errors import FormatError
from imgprep.formats import dataset as ds

SHA = "ab" * 32


def _record(**over):
    shards = (ds.ShardEntry("t-00000.rec", "t-00000.idx", 3, 300, 30, SHA, SHA),
              ds.ShardEntry("t-00001.rec", "t-00001.idx", 2, 200, 20, SHA, SHA))
    fields = dict(imgprep_version="0.1.0", list=ds.ListRef("train.lst", SHA, 5), shards=shards,
                  settings={"resize": 256, "quality": 95}, label_width=1, num_classes=10, skipped=0)
    fields.update(over)
    return ds.DatasetRecord(**fields)


def test_round_trip_and_totals():
    record = _record()
    text = ds.to_json(record)
    assert ds.from_json(text, "x.dataset.json") == record
    assert record.records == 5 and record.rec_bytes == 500
    assert ds.to_json(ds.from_json(text, "x")) == text  # canonical
    assert ds.record_name("out/train") == "out/train.dataset.json"


def test_differences_name_what_changed():
    a, b = _record(), _record(settings={"resize": 224, "quality": 95})
    assert a.differences(a) == []
    assert a.differences(b) == ["resize: 256 != 224"]
    c = _record(list=ds.ListRef("other.lst", "cd" * 32, 5))
    assert any("list train.lst" in d for d in a.differences(c))


def _mutate(doc, path, value):
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("kind",), "other", "not an imgprep dataset record"),
        (("version",), 2, "version 2 is not supported"),
        (("records",), 6, "records 6 != the sum over its shards (5)"),
        (("list", "sha256"), "XYZ", "list.sha256 must be 64 lower-case hex digits"),
        (("shards", 0, "rec"), "../evil.rec", "shards[0].rec must be a plain file name"),
        (("shards", 1, "records"), -1, "shards[1].records must be at least 0"),
        (("shards", 1, "idx"), "t-00000.idx", "t-00000.idx is listed twice"),
        (("label_width",), True, "label_width must be a int"),
        (("num_classes",), 0, "num_classes must be at least 1"),
    ],
)
def test_defects_are_one_line_errors_naming_the_file(path, value, message):
    text = _mutate(json.loads(ds.to_json(_record())), path, value)
    with pytest.raises(FormatError) as info:
        ds.from_json(text, "out/t.dataset.json")
    assert str(info.value).startswith("out/t.dataset.json: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@given(st.binary(max_size=300) | st.text(max_size=300))
def test_garbage_raises_only_format_error(blob):
    try:
        ds.from_json(blob, "fuzz")
    except FormatError:
        pass


def test_deep_nesting_is_a_format_error():
    with pytest.raises(FormatError):
        ds.from_json("[" * 100_000 + "]" * 100_000, "deep")


@given(st.lists(st.one_of(st.none(), st.lists(st.integers(0, 2**32 - 1), max_size=3000)), min_size=1, max_size=4),
       st.text(max_size=12), st.sampled_from(["plain", "\x00crc0\x00", "\x00crc1\x00", 'q"uo\\te', "日本"]))
def test_record_pieces_are_the_record_text_encoded(crcs, name, setting) -> None:
    """The dataset record written piece by piece, its checksums encoded as they go out (so that
    a large record's text is never held whole), is byte for byte the canonical text of the record
    holding them, and its size is said up front -- whatever the other fields hold, including the
    very marks the writer splices at."""
    from array import array

    from imgprep.formats import checksums

    shards = tuple(ds.ShardEntry(f"t-{k:05d}.rec", f"t-{k:05d}.idx", len(c or ()), 8, 8, SHA, SHA)
                   for k, c in enumerate(crcs))
    record = _record(shards=shards, list=ds.ListRef(name + ".lst", SHA, 5), settings={"note": setting})
    given_crcs = {s.rec: array("I", c) for s, c in zip(shards, crcs, strict=True) if c is not None}
    size, pieces = ds.json_pieces(record, given_crcs)
    written = b"".join(pieces)
    full = ds.DatasetRecord(**{**vars(record), "shards": tuple(
        ds.ShardEntry(**{**vars(s), "record_crc32": checksums.encode(given_crcs[s.rec])}) if s.rec in given_crcs else s
        for s in shards)})
    assert written == ds.to_json(full).encode()
    assert size == len(written)
