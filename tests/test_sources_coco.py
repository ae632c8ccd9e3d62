"""COCO instances JSON: multi-hot labels (checked against pycocotools) and strict validation."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imgprep.errors import FormatError, SourceError, UsageError
from imgprep.sources.coco import load_coco

CATEGORIES = [
    {"id": 1, "name": "person", "supercategory": "person"},
    {"id": 2, "name": "bicycle", "supercategory": "vehicle"},
    {"id": 3, "name": "car", "supercategory": "vehicle"},
    {"id": 18, "name": "dog", "supercategory": "animal"},
    {"id": 90, "name": "toothbrush", "supercategory": "indoor"},
]


def coco_doc(n_images: int = 40, seed: int = 0) -> dict:
    """Non-contiguous category ids, crowd annotations, images without annotations."""
    rng = np.random.default_rng(seed)
    images = [
        {"id": 1000 + i, "file_name": f"{1000 + i:012d}.jpg", "width": 300 + i, "height": 200 + i}
        for i in range(n_images)
    ]
    annotations = []
    for i in range(n_images):
        if i % 7 == 3:
            continue  # no annotation at all
        for _ in range(int(rng.integers(1, 4))):
            cat = CATEGORIES[int(rng.integers(0, len(CATEGORIES)))]["id"]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": 1000 + i,
                    "category_id": cat,
                    "iscrowd": int(rng.random() < 0.15),
                    "area": float(rng.integers(10, 5000)),
                    "bbox": [0, 0, 10, 10],
                }
            )
    return {"images": images, "annotations": annotations, "categories": CATEGORIES}


def write(tmp_path, doc) -> str:
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(doc))
    return str(path)


def pycoco(path: str):
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(path)


@pytest.mark.parametrize("cats", [None, ["car", "person"], ["90", "bicycle", "18"]], ids=["all", "names", "mixed"])
def test_multi_hot_matches_pycocotools(tmp_path, cats) -> None:
    pytest.importorskip("pycocotools")
    path = write(tmp_path, coco_doc())
    data = load_coco(path, categories=cats)
    coco = pycoco(path)
    if cats is None:
        cat_ids = sorted(coco.getCatIds())
    else:
        cat_ids = [int(c) if c.isdigit() else coco.getCatIds(catNms=[c])[0] for c in cats]
    # what the notebook builds with getImgIds(catIds=[c]) per category
    rows: dict[int, list[int]] = {}
    for j, cid in enumerate(cat_ids):
        for iid in coco.getImgIds(catIds=[cid]):
            rows.setdefault(iid, [0] * len(cat_ids))[j] = 1
    expected = {coco.loadImgs(iid)[0]["file_name"]: row for iid, row in rows.items()}
    got = dict(zip(data.paths, data.labels.tolist()))
    assert got == expected
    assert data.multi_label
    assert [c.source_id for c in data.classes] == cat_ids


def test_crowd_min_area_and_empty_images(tmp_path) -> None:
    doc = coco_doc()
    path = write(tmp_path, doc)
    everything = load_coco(path, keep_empty=True)
    assert len(everything.paths) == len(doc["images"])  # images in JSON order
    assert everything.paths[3] == doc["images"][3]["file_name"]
    assert everything.labels[3].sum() == 0
    no_crowd = load_coco(path, include_crowd=False, keep_empty=True)
    big = load_coco(path, min_area=2500, keep_empty=True)
    for ann in doc["annotations"]:
        row = ann["image_id"] - 1000
        col = [c["id"] for c in CATEGORIES].index(ann["category_id"])
        assert everything.labels[row, col] == 1
    expect_no_crowd = np.zeros_like(everything.labels)
    expect_big = np.zeros_like(everything.labels)
    for ann in doc["annotations"]:
        row, col = ann["image_id"] - 1000, [c["id"] for c in CATEGORIES].index(ann["category_id"])
        if not ann["iscrowd"]:
            expect_no_crowd[row, col] = 1
        if ann["area"] >= 2500:
            expect_big[row, col] = 1
    assert np.array_equal(no_crowd.labels, expect_no_crowd)
    assert np.array_equal(big.labels, expect_big)
    dropped = load_coco(path)
    assert len(dropped.paths) == int(everything.labels.any(axis=1).sum())
    assert dropped.min_side == min(doc["images"][i]["height"] for i in range(40) if everything.labels[i].any())


def test_unknown_category_choice(tmp_path) -> None:
    path = write(tmp_path, coco_doc())
    with pytest.raises(SourceError, match="no category named or numbered 'unicorn'"):
        load_coco(path, categories=["unicorn"])
    with pytest.raises(UsageError, match="twice"):
        load_coco(path, categories=["car", "3"])


def break_doc(how: str) -> dict:
    doc = coco_doc(10)
    if how == "no-annotations":
        del doc["annotations"]
    elif how == "unknown-image":
        doc["annotations"][2]["image_id"] = 4242
    elif how == "unknown-category":
        doc["annotations"][0]["category_id"] = 7
    elif how == "image-without-file":
        del doc["images"][1]["file_name"]
    elif how == "duplicate-image":
        doc["images"][2]["id"] = doc["images"][1]["id"]
    elif how == "bad-crowd":
        doc["annotations"][1]["iscrowd"] = "yes"
    elif how == "not-object":
        return [1, 2]  # type: ignore[return-value]
    return doc


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("no-annotations", "missing key 'annotations'"),
        ("unknown-image", r"annotations\[2\] \(id 3\): image_id 4242 is not among the images"),
        ("unknown-category", r"annotations\[0\] \(id 1\): category_id 7 is not among the categories"),
        ("image-without-file", r"images\[1\] \(id 1001\): 'file_name' missing"),
        ("duplicate-image", r"images\[2\] \(id 1001\): duplicate image id"),
        ("bad-crowd", "iscrowd must be 0 or 1"),
        ("not-object", "top level must be a JSON object"),
    ],
)
def test_malformed_json_errors(tmp_path, how, message) -> None:
    path = write(tmp_path, break_doc(how))
    with pytest.raises(FormatError, match=message) as info:
        load_coco(path)
    assert str(info.value).startswith(path) and "\n" not in str(info.value)


def test_json_syntax_error_names_the_line(tmp_path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"images": [],\n "annotations": [,]}')
    with pytest.raises(FormatError, match=r"bad.json:2: invalid JSON"):
        load_coco(str(path))


def test_min_area_needs_areas(tmp_path) -> None:
    doc = coco_doc(5)
    del doc["annotations"][0]["area"]
    with pytest.raises(FormatError, match="'area' missing"):
        load_coco(write(tmp_path, doc), min_area=1)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2000) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    images=st.lists(
        st.fixed_dictionaries({"id": st.integers(0, 5) | json_values, "file_name": st.text(max_size=3) | json_values}),
        max_size=4,
    ),
    annotations=st.lists(
        st.fixed_dictionaries(
            {"image_id": st.integers(0, 5) | json_values, "category_id": st.integers(1, 3) | json_values},
            optional={"iscrowd": st.integers(0, 1) | json_values, "area": json_values},
        ),
        max_size=5,
    ),
)
def test_coco_validation_fuzz(tmp_path_factory, images, annotations) -> None:
    doc = {"images": images, "annotations": annotations, "categories": CATEGORIES[:3]}
    path = write(tmp_path_factory.mktemp("fuzz"), doc)
    try:
        data = load_coco(path, keep_empty=True)
    except (FormatError, SourceError) as exc:
        assert "\n" not in str(exc)
        return
    assert data.labels.shape == (len(images), 3)
