"""``imgprep inspect``: statistics per split, planted duplicates and leaks found, distinct photos not."""

from __future__ import annotations

import json

import inspect_fixture
import numpy as np
import pytest

from imgprep.formats import recordio
from imgprep.imaging import native
from imgprep.imaging.decode import decode
from imgprep.imaging.phash import fingerprint, hamming
from imgprep.inspect.analyse import analyse
from imgprep.inspect.collect import collect
from imgprep.inspect.scan import scan


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return inspect_fixture.build(tmp_path_factory.mktemp("inspect"))


@pytest.fixture(scope="module")
def findings(dataset):
    collection = collect(str(dataset))
    return analyse(collection, scan(collection.splits, workers=2))


def test_planted_copies_are_leaks_and_nothing_else_is_flagged(findings):
    doc = findings.to_json()
    found = {tuple(r["id"] for r in g["images"]): g for g in doc["duplicate_groups"]}
    planted = {(src, val) for val, (src, _) in inspect_fixture.PLANTED.items()}
    assert set(found) == planted  # distinct photos of the same class are never grouped
    assert [g["exact"] for g in found.values()].count(True) == 1 and found[3, 1000]["exact"]
    for g in found.values():
        assert g["leak"] and not g["conflict"] and g["splits"] == ["train", "val"]
        assert [(r["split"], r["drop"]) for r in g["images"]] == [("train", False), ("val", True)]
    assert found[7, 1004]["images"][0]["path"] == "dog/0007.jpg"
    assert doc["summary"]["leaks"] == len(planted) == doc["summary"]["duplicate_groups"]
    assert doc["summary"]["leaked_images"] == len(planted) and doc["summary"]["label_conflicts"] == 0


def test_split_statistics(findings):
    train, val = findings.to_json()["splits"]
    assert [c["name"] for c in train["classes"]] == list(inspect_fixture.CLASSES)
    assert [c["count"] for c in train["classes"]] == [8, 8, 8]
    assert val["images"] == inspect_fixture.VAL + len(inspect_fixture.PLANTED)
    assert train["common_sizes"] == [{"width": 160, "height": 120, "images": 24}]
    assert train["encoded_bytes"]["total"] > 0 and train["warnings"] == []


def test_cli_text_and_json(dataset, imgprep_cli):
    text = imgprep_cli("inspect", dataset).stdout
    assert "LEAK identical x2: train id 3 (cat/0003.jpg)  ~  val id 1000 (cat/1000.jpg)" in text
    assert f"leaks: {len(inspect_fixture.PLANTED)} group(s) span splits" in text
    doc = json.loads(imgprep_cli("inspect", dataset / "val.rec", "--json").stdout)
    assert doc["summary"]["images"] == 14 and doc["summary"]["leaks"] == 0  # one split: no leak possible


def test_lst_input_with_root_and_imbalance_warning(tmp_path, imgfactory, imgprep_cli):
    lines = []
    for i in range(12):
        label = 0 if i < 11 else 1
        imgfactory.write(tmp_path / "img" / f"{i}.jpg", imgfactory.jpeg(80, 60, seed=i % 10))
        lines.append(f"{i}\t{label}\timg/{i}.jpg\n")
    (tmp_path / "all.lst").write_text("".join(lines))
    doc = json.loads(imgprep_cli("inspect", tmp_path / "all.lst", "--json").stdout)
    groups = sorted([r["path"] for r in g["images"]] for g in doc["duplicate_groups"])
    assert groups == [["img/0.jpg", "img/10.jpg"], ["img/1.jpg", "img/11.jpg"]]
    conflict = [g for g in doc["duplicate_groups"] if g["conflict"]]  # img/1 is class 0, img/11 class 1
    assert [[r["path"] for r in g["images"]] for g in conflict] == [["img/1.jpg", "img/11.jpg"]]
    assert any("imbalanced: '0' has 11 images, '1' only 1" in w for w in doc["splits"][0]["warnings"])


def test_multi_label_cardinality(tmp_path, imgfactory):
    with recordio.RecordWriter(tmp_path / "m.rec") as writer:
        for i, labels in enumerate([[1, 0, 1], [0, 1, 0], [1, 1, 1], [0, 0, 1]]):
            writer.write(recordio.pack_image_record([float(x) for x in labels], i, imgfactory.jpeg(64, 64, seed=i)))
    collection = collect(str(tmp_path / "m.rec"))
    split = analyse(collection, scan(collection.splits)).to_json()["splits"][0]
    assert [c["count"] for c in split["classes"]] == [2, 2, 3]
    assert split["label_cardinality"] == {"mean": 1.75, "histogram": {"1": 2, "2": 1, "3": 1}}


def test_native_thumbnail_matches_pillow_on_odd_sizes(imgfactory, monkeypatch):
    assert native.available()
    data = imgfactory.jpeg(203, 157, seed=3)
    fast = decode(data, min_side=64, keep_luma=True)
    monkeypatch.setenv(native.ENV_SWITCH, "0")
    slow = decode(data, min_side=64, keep_luma=True)
    assert (fast.width, fast.height, fast.channels) == (slow.width, slow.height, slow.channels) == (203, 157, 3)
    assert fast.luma.shape == slow.luma.shape
    assert np.abs(fast.luma.astype(int) - slow.luma.astype(int)).mean() < 2
    assert hamming(fingerprint(fast.luma).hash, fingerprint(slow.luma).hash) <= 2


def test_ground_truth_manifest_input(tmp_path, imgfactory):
    rows = []
    for i in range(6):
        imgfactory.write(tmp_path / "copy" / f"{i}.jpg", imgfactory.jpeg(72, 64, seed=i % 5))
        meta = {"class-name": ["cat", "dog"][i % 2], "type": "groundtruth/image-classification",
                "job-name": "labeling-job/pets", "human-annotated": "yes", "creation-date": "2024-01-01T00:00:00"}
        rows.append(json.dumps({"source-ref": f"s3://bucket/pets/{i}.jpg", "animal": i % 2, "animal-metadata": meta}))
    (tmp_path / "output.manifest").write_text("\n".join(rows) + "\n")
    collection = collect(str(tmp_path / "output.manifest"), root=f"s3://bucket/pets/={tmp_path / 'copy'}")
    doc = analyse(collection, scan(collection.splits)).to_json()
    assert doc["classes"] == ["cat", "dog"] and doc["splits"][0]["images"] == 6
    assert [[r["path"] for r in g["images"]] for g in doc["duplicate_groups"]] == [["0.jpg", "5.jpg"]]
