"""Duplicate groups: every kind of copy found, distinct photos and flat images never grouped, cost
bounded by the number of images, the search equal to brute force, and one answer in every tool."""

from __future__ import annotations

import json
import re

import dupkinds
import imgfactory
import numpy as np
import pytest
from PIL import Image

from imgprep.api import convert
from imgprep.formats.lst import read_lst
from imgprep.imaging.phash import fingerprint, hamming
from imgprep.splits import dedup, neardup

CLASSES = ("a", "b", "c")
PER_CLASS = 12


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """12 distinct photos per class, one copy of each kind (of its own original), flat and near-flat images."""
    root = tmp_path_factory.mktemp("dups") / "src"
    planted = {}
    for ci, name in enumerate(CLASSES):
        for i in range(PER_CLASS):
            img = imgfactory.photo(160, 120, seed=ci * 100 + i)
            imgfactory.write(root / name / f"img_{i:03d}.jpg", dupkinds.original(img))
    for k, kind in enumerate(dupkinds.KINDS):
        name, i = CLASSES[k % len(CLASSES)], k // len(CLASSES)
        src = root / name / f"img_{i:03d}.jpg"
        img = imgfactory.photo(160, 120, seed=CLASSES.index(name) * 100 + i)
        copy = f"{name}/z_{k:02d}.jpg"
        imgfactory.write(root / copy, dupkinds.copy(img, kind, src.read_bytes()))
        planted[kind] = (f"{name}/img_{i:03d}.jpg", copy)
    rng = np.random.default_rng(0)
    for i in range(8):  # blank frames and swatches: all share one pHash, none is a copy of another
        flat = np.full((90, 120, 3), (30 * i, 250 - 20 * i, 100), np.uint8) + rng.integers(0, 3, (90, 120, 3), np.uint8)
        imgfactory.write(root / "b" / f"flat_{i}.png", imgfactory.encode(Image.fromarray(flat), "PNG"))
    imgfactory.write(root / "c" / "flat_copy.png", (root / "b" / "flat_3.png").read_bytes())
    return root, planted


def _pairs(result):
    paths = result.dataset.paths
    return {frozenset((paths[g[0]], paths[m])) for g in result.duplicates.members().values() for m in g[1:]}


def test_every_kind_of_copy_is_found_and_nothing_else(tree, tmp_path):
    root, planted = tree
    result = convert("folders", str(root), str(tmp_path / "out"), split="train=0.5,val=0.5")
    found = _pairs(result)
    expected = {frozenset(pair) for pair in planted.values()} | {frozenset(("b/flat_3.png", "c/flat_copy.png"))}
    missed = {kind for kind, pair in planted.items() if frozenset(pair) not in found}
    assert not missed, f"copies not found: {missed}"
    assert found == expected  # no distinct photo, flat image or other copy joined any group
    assert result.duplicates.count(dedup.FLAT) == 9


def test_the_copy_kinds_land_near_their_original_and_distinct_photos_far(tree):
    root, planted = tree
    prints = {p: dedup.measure((root / p).read_bytes()).print for pair in planted.values() for p in pair}
    for kind, (a, b) in planted.items():
        assert dedup.linked(prints[a], prints[b]), kind
    originals = [dedup.measure(p.read_bytes()).print for p in sorted(root.glob("*/img_*.jpg"))]
    assert not any(dedup.linked(f, o) for i, f in enumerate(originals) for o in originals[i + 1:])
    closest = min(int(hamming(h, o.hash)) for i, f in enumerate(originals) for o in originals[i + 1:]
                  for h in (f.hash, *f.alternates))
    assert closest > neardup.DEFAULT_THRESHOLD


def test_identical_images_are_one_group_without_pairwise_work():
    prints = dedup.Prints()
    photo = dedup.measure(imgfactory.jpeg(96, 72, seed=5))
    flat = dedup.measure(imgfactory.encode(Image.new("RGB", (64, 64), (9, 9, 9)), "PNG"))
    for i in range(5000):
        prints.add(photo if i % 2 else flat)
    groups = dedup.find_groups(prints)
    members = groups.members()
    assert sorted(len(m) for m in members.values()) == [2500, 2500]
    assert groups.hits == 0  # identical hashes collapse before the search: no pair was ever looked at
    summary, found = dedup.findings(groups, np.arange(5000) // 2 % 2, np.zeros(5000))  # both groups in both splits
    assert (summary.groups, summary.grouped_images, summary.exact_groups, summary.flat) == (2, 5000, 2, 2500)
    assert summary.leaks == 2 and summary.leaked_images == 2500 and summary.conflicts == 0
    assert [len(f.drop) for f in found] == [1250, 1250]


def test_flat_images_of_every_colour_are_never_grouped_by_their_hash():
    prints = dedup.Prints()
    for i in range(2000):
        grey = np.full((48, 64), i % 256, np.uint8)
        grey[0, i // 256] = 255 - grey[0, 0]  # every image's bytes differ
        prints.add(dedup.measure(grey))
    groups = dedup.find_groups(prints)
    assert groups.count(dedup.FLAT) == 2000 and not groups.grouped


def test_objects_on_a_white_backdrop_are_told_apart():
    lumas = []
    for seed in range(30):
        img = Image.new("L", (200, 200), 255)
        thing = imgfactory.photo(60, 50, seed=seed).convert("L")
        img.paste(thing, (20 + 3 * seed, 40 + 2 * seed))
        lumas.append(np.asarray(img))
    hashes = [fingerprint(luma) for luma in lumas]
    assert not any(h.flat for h in hashes)
    assert min(int(hamming(a.hash, b.hash)) for i, a in enumerate(hashes) for b in hashes[i + 1:]) > 10


@pytest.mark.parametrize("threshold", [3, 7, 10, 11])
@pytest.mark.parametrize("path", ["native", "numpy"])
def test_search_groups_equal_brute_force(threshold, path, monkeypatch):
    if path == "numpy":
        monkeypatch.setenv("IMGPREP_NATIVE", "0")
    rng = np.random.default_rng(threshold)
    index = rng.integers(0, 2**64 - 1, 3000, dtype=np.uint64, endpoint=True)
    for k in range(300):  # planted neighbours 0..threshold+1 bits away, some chained
        flips = rng.choice(64, k % (threshold + 2), replace=False)
        index[2000 + k] = index[k % 150] ^ np.uint64(sum(1 << int(b) for b in flips))
    index = np.unique(index)
    extra = index[rng.integers(0, len(index), 500)] ^ np.uint64(0b1011)  # query-only hashes (alternates)
    queries = np.concatenate([index, extra])
    owners = np.concatenate([np.arange(len(index)), rng.integers(0, len(index), 500)]).astype(np.int32)
    windows = index[rng.integers(0, len(index), 3 * 600)] ^ np.uint64(0b110 << 20)  # 3 per row, as crop windows
    row_owner = rng.integers(-1, len(index), 600).astype(np.int32)  # -1: a row with nothing to query
    parent = np.arange(len(index), dtype=np.int32)
    identity = np.arange(len(index), dtype=np.int32)
    hits = neardup.merge(index, index, identity, parent, threshold, workers=2, symmetric=True)  # each pair once
    hits += neardup.merge(index, extra, owners[len(index):], parent, threshold, workers=2)
    hits += neardup.merge(index, windows, row_owner, parent, threshold, workers=2)
    brute = neardup.exhaustive(index, queries, owners, threshold) | neardup.exhaustive(index, windows, row_owner,
                                                                                        threshold)
    expected = np.arange(len(index), dtype=np.int32)
    for a, b in sorted(brute):
        ra, rb = neardup._find(expected, a), neardup._find(expected, b)
        expected[max(ra, rb)] = min(ra, rb)
    assert len(brute) > 100 and hits >= len(brute) // 2
    if path == "native":  # half the comparisons are only right when the queries are the index itself
        with pytest.raises(ValueError, match="symmetric"):
            neardup.merge(index, extra, owners[len(index):], parent, threshold, symmetric=True)
    assert np.array_equal(neardup.roots(parent), neardup.roots(expected))


def test_same_split_keeps_every_group_in_one_split_and_is_deterministic(tree, tmp_path):
    root, planted = tree
    for out in ("o1", "o2"):
        convert("folders", str(root), str(tmp_path / out), split="train=0.5,val=0.5", dedup="same-split", seed=3)
        where = {item.path: s for s in ("train", "val") for item in read_lst(tmp_path / out / f"{s}.lst")}
        assert all(where[a] == where[b] for a, b in planted.values())
    for name in ("train.lst", "val.lst", "classes.json"):
        assert (tmp_path / "o1" / name).read_bytes() == (tmp_path / "o2" / name).read_bytes()


def test_drop_is_the_old_name_of_same_split(tree, tmp_path, imgprep_cli):
    assert dedup.check_mode("drop") == "same-split"
    root, _ = tree
    proc = imgprep_cli("convert", "folders", root, "-o", tmp_path / "out", "--dedup", "drop")
    assert "--dedup drop is now called --dedup same-split" in proc.stderr
    assert "--dedup same-split: every duplicate group is in one split" in proc.stdout


def test_report_file_lists_every_group_with_what_to_drop(tree, tmp_path, imgprep_cli):
    root, planted = tree
    report = tmp_path / "dups.jsonl"
    out = imgprep_cli("convert", "folders", root, "-o", tmp_path / "out", "--split", "train=0.5,val=0.5",
                      "--dedup-report", report).stdout
    groups = [json.loads(line) for line in report.read_text().splitlines()]
    assert len(groups) == len(planted) + 1
    where = {item.path: s for s in ("train", "val") for item in read_lst(tmp_path / "out" / f"{s}.lst")}
    leaks = [g for g in groups if g["leak"]]
    pairs = [*planted.values(), ("b/flat_3.png", "c/flat_copy.png")]
    assert len(leaks) == sum(where[a] != where[b] for a, b in pairs) > 0
    for g in leaks:
        assert {i["split"] for i in g["images"] if i["action"] == "drop"} == {"val"}
        assert all(where[i["path"]] == i["split"] for i in g["images"])
    assert f"leaks: {len(leaks)} group(s) span splits" in out


def _numbers(text: str) -> tuple[int, ...]:
    head = re.search(r"duplicates: (\d+) group\(s\) holding (\d+) of \d+ images \((\d+) copies; (\d+) group", text)
    leaks = re.search(r"leaks: (\d+) group\(s\) span splits \((\d+) image", text)
    conflicts = re.search(r"label conflicts: (\d+) group", text)
    assert head and leaks and conflicts, text
    return tuple(int(x) for m in (head, leaks, conflicts) for x in m.groups())


def test_prepare_and_inspect_report_the_same_numbers(tree, tmp_path, imgprep_cli):
    root, planted = tree
    prepared = imgprep_cli("prepare", "folders", root, "-o", tmp_path / "out", "--split", "train=0.5,val=0.5").stdout
    inspected = imgprep_cli("inspect", tmp_path / "out").stdout
    assert _numbers(prepared) == _numbers(inspected)
    assert _numbers(prepared)[0] == len(planted) + 1


def test_off_reads_no_image(tree, tmp_path):
    root, _ = tree
    src = tmp_path / "broken"
    for path in root.glob("a/*"):
        imgfactory.write(src / "a" / path.name, b"not an image")  # would be unreadable if anything looked
        imgfactory.write(src / "b" / path.name, b"not an image")
    assert convert("folders", str(src), str(tmp_path / "out"), dedup="off").duplicates is None


def test_preset_splits_regroup_copies_into_the_first_images_split():
    groups = dedup.Groups(np.array([0, 1, 0, 3, 1]), np.zeros(5, np.uint8), np.ones(5, bool))
    splits = {"train": np.array([0, 1]), "val": np.array([2, 3, 4])}
    regrouped = dedup.regroup(splits, groups)
    assert regrouped["train"].tolist() == [0, 1, 2, 4] and regrouped["val"].tolist() == [3]
    summary, _ = dedup.findings(groups, dedup.split_of(5, list(splits.values())), np.zeros(5))
    assert summary.leaks == 2
    summary, _ = dedup.findings(groups, dedup.split_of(5, list(regrouped.values())), np.zeros(5))
    assert summary.leaks == 0


def test_images_under_the_hash_grid_are_checked_for_exact_copies_only():
    rng = np.random.default_rng(0)
    digits = [(rng.random((28, 28)) > 0.8).astype(np.uint8) * 255 for _ in range(40)]
    digits.append(digits[7].copy())
    stroke = digits[3].copy()
    stroke[10:12, 10:12] ^= 255  # a different sample of the same shape: near in pHash, not a copy
    digits.append(stroke)
    groups = dedup.find(len(digits), lambda i: digits[i])
    assert groups.members() == {7: [7, 40]} and groups.count(dedup.SMALL) == 42


def test_coco_duplicate_check_runs_from_the_cli_with_image_root(tmp_path, imgprep_cli):
    images = tmp_path / "val2017"
    for i in range(12):
        imgfactory.write(images / f"{i}.jpg", imgfactory.jpeg(96, 72, seed=i % 10))  # 10 and 11 copy 0 and 1
    doc = {
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": 96, "height": 72} for i in range(12)],
        "annotations": [{"id": i, "image_id": i, "category_id": 1 + i % 2, "iscrowd": 0, "area": 5.0}
                        for i in range(12)],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
    }
    (tmp_path / "instances.json").write_text(json.dumps(doc))
    report = tmp_path / "dups.jsonl"
    out = imgprep_cli("convert", "coco", tmp_path / "instances.json", "-o", tmp_path / "out", "--image-root", images,
                      "--dedup-report", report).stdout
    assert "duplicates: 2 group(s) holding 4 of 12 images" in out
    groups = [json.loads(line) for line in report.read_text().splitlines()]
    assert sorted(sorted(i["path"] for i in g["images"]) for g in groups) == [["0.jpg", "10.jpg"], ["1.jpg", "11.jpg"]]


def test_native_fingerprint_equals_numpy(tree, monkeypatch):
    from imgprep.imaging import native
    from imgprep.imaging.decode import decode

    root, planted = tree
    assert native.available()
    files = [root / p for pair in planted.values() for p in pair]
    lumas = [decode(f.read_bytes(), min_side=64, keep_luma=True).luma for f in files]
    lumas += [np.full((40, 50), 9, np.uint8), np.pad(lumas[0], 12)]  # flat; bordered
    fast = [fingerprint(luma) for luma in lumas]
    monkeypatch.setenv(native.ENV_SWITCH, "0")
    assert [fingerprint(luma) for luma in lumas] == fast
