"""Augmented manifests: Ground Truth output in (both kinds), SageMaker manifests out."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imgprep.errors import FormatError, SourceError, UsageError
from imgprep.formats.manifest import ManifestOptions, channel_settings, parse_manifest, record
from imgprep.sources.gtmanifest import load_manifest

DATE = "2019-01-14T21:53:19.018935"


def gt_single(i: int, cls: int, names=("cat", "dog", "emu")) -> dict:
    return {
        "source-ref": f"s3://bucket/pets/img/{i:03d}.jpg",
        "animal": cls,
        "animal-metadata": {
            "confidence": 0.93,
            "job-name": "labeling-job/pets",
            "class-name": names[cls],
            "human-annotated": "yes",
            "creation-date": DATE,
            "type": "groundtruth/image-classification",
        },
    }


def gt_multi(i: int, ids: list[int], names=("person", "bicycle", "car")) -> dict:
    return {
        "source-ref": f"s3://bucket/coco/{i:03d}.jpg",
        "labels": ids,
        "labels-metadata": {
            "job-name": "labeling-job/coco",
            "class-map": {str(c): names[c] for c in ids},
            "human-annotated": "yes",
            "creation-date": DATE,
            "type": "groundtruth/image-classification-multilabel",
        },
    }


def write_lines(tmp_path, records) -> str:
    path = tmp_path / "output.manifest"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return str(path)


def test_single_label_ground_truth(tmp_path) -> None:
    path = write_lines(tmp_path, [gt_single(i, i % 3) for i in range(9)])
    data = load_manifest(path, root=str(tmp_path))
    assert not data.multi_label
    assert [c.name for c in data.classes] == ["cat", "dog", "emu"]
    assert data.paths[4] == "004.jpg"  # relative to the common prefix s3://bucket/pets/img/
    assert data.labels.tolist() == [i % 3 for i in range(9)]
    assert data.root == str(tmp_path)


def test_multi_label_ground_truth_and_root_mapping(tmp_path) -> None:
    rows = [[0], [0, 2], [], [1, 2]]
    path = write_lines(tmp_path, [gt_multi(i, ids) for i, ids in enumerate(rows)])
    data = load_manifest(path, root="s3://bucket/=/data/copy")
    assert data.multi_label
    assert [c.name for c in data.classes] == ["person", "bicycle", "car"]
    assert data.paths[1] == "coco/001.jpg"
    assert data.root == "/data/copy"
    assert data.labels.tolist() == [[1, 0, 0], [1, 0, 1], [0, 0, 0], [0, 1, 1]]
    with pytest.raises(SourceError, match="not under --root prefix s3://other/"):
        load_manifest(path, root="s3://other=/x")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"animal": 1}', "'source-ref' missing"),
        ('{"source-ref": "s3://b/x.jpg", "animal": "cat", "animal-metadata": {}}', "is not a class id"),
        ('{"source-ref": "s3://b/x.jpg", "other": 1}', "label attribute 'animal' missing"),
    ],
)
def test_bad_lines_name_the_line(tmp_path, line, message) -> None:
    path = write_lines(tmp_path, [gt_single(0, 0), gt_single(1, 1), line])
    with pytest.raises(FormatError, match=message) as info:
        load_manifest(path)
    assert str(info.value).startswith(f"{path}:3: ")
    assert "\n" not in str(info.value)


def test_conflicting_names_and_ambiguous_attribute(tmp_path) -> None:
    path = write_lines(tmp_path, [gt_single(0, 1), gt_single(1, 1, names=("a", "b", "c"))])
    with pytest.raises(FormatError, match=r"class 1 is named 'b' here but 'dog' on line 1"):
        load_manifest(path)
    rec = gt_single(0, 0) | {"other": 1, "other-metadata": {}}
    with pytest.raises(FormatError, match="pass --attribute"):
        load_manifest(write_lines(tmp_path, [rec]))
    assert load_manifest(write_lines(tmp_path, [rec]), attribute="other").labels.tolist() == [1]


def test_written_records_follow_ground_truth() -> None:
    opts = ManifestOptions(prefix="s3://b/p/", attribute="label", label_format="class-id", creation_date=DATE)
    rec = record("a/1.jpg", (1.0, 0.0, 1.0), ["person", "bicycle", "car"], multi_label=True, options=opts)
    assert rec == {
        "source-ref": "s3://b/p/a/1.jpg",
        "label": [0, 2],
        "label-metadata": {
            "class-map": {"0": "person", "2": "car"},
            "type": "groundtruth/image-classification-multilabel",
            "human-annotated": "no",
            "creation-date": DATE,
            "job-name": "labeling-job/imgprep",
        },
    }
    hot = record("x.jpg", (1.0, 0.0, 1.0), ["p", "b", "c"], multi_label=True, options=ManifestOptions(prefix="s3://b"))
    assert hot["class"] == [1, 0, 1] and hot["source-ref"] == "s3://b/x.jpg"
    single = record("x.jpg", (2.0,), ["p", "b", "c"], multi_label=False, options=opts)
    assert single["label"] == 2 and single["label-metadata"]["class-name"] == "c"
    assert channel_settings(multi_label=True, options=opts) == {
        "AttributeNames": ["source-ref", "label"],
        "ContentType": "application/x-recordio; label-format=class-id",
        "RecordWrapperType": "RecordIO",
        "S3DataType": "AugmentedManifestFile",
    }
    with pytest.raises(UsageError):
        ManifestOptions(prefix="s3://b", attribute="source-ref")


def test_round_trip_through_our_own_writer() -> None:
    names = ["a", "b", "c", "d"]
    labels = np.array([[1, 0, 0, 1], [0, 1, 1, 0], [0, 0, 0, 1]])
    for fmt in ("class-id", "multi-hot"):
        opts = ManifestOptions(prefix="s3://b/p/", label_format=fmt)
        lines = [
            json.dumps(record(f"{i}.jpg", tuple(row), names, multi_label=True, options=opts))
            for i, row in enumerate(labels)
        ]
        parsed = parse_manifest(lines, label_format=fmt)
        assert parsed.labels == [[0, 3], [1, 2], [3]]
        assert parsed.names == {0: "a", 1: "b", 2: "c", 3: "d"}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=40) | st.just('{"source-ref": "s3://b/x", "c": [1]}'), max_size=4))
def test_manifest_parser_fuzz(lines) -> None:
    try:
        parse_manifest(lines)
    except FormatError as exc:
        assert "\n" not in str(exc)
