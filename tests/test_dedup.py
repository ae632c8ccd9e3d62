"""``convert --dedup``: copies among the source images are reported, or never straddle splits."""

from __future__ import annotations

import io

import imgfactory
import numpy as np
from PIL import Image, ImageOps

from imgprep.api import convert
from imgprep.formats.lst import read_lst
from imgprep.imaging.phash import hamming, phash_pair
from imgprep.splits import dedup

COPIES = {  # copy file -> original, within the class folder "a"
    "z_exact.jpg": "img_000.jpg",
    "z_small.jpg": "img_001.jpg",
    "z_mirror.jpg": "img_002.jpg",
    "z_crop.jpg": "img_003.jpg",
}


def _tree(root):
    imgfactory.class_tree(root, ["a", "b"], 10, sizes=((160, 120),))
    for copy, original in COPIES.items():
        path = root / "a" / original
        img = Image.open(path).convert("RGB")
        if copy == "z_exact.jpg":
            (root / "a" / copy).write_bytes(path.read_bytes())
            continue
        if copy == "z_small.jpg":
            img = img.resize((128, 96), Image.BILINEAR)
        elif copy == "z_mirror.jpg":
            img = ImageOps.mirror(img)
        else:
            img = img.crop((4, 3, 156, 117))
        out = io.BytesIO()
        img.save(out, "JPEG", quality=70)
        (root / "a" / copy).write_bytes(out.getvalue())
    return root


def _groups(outdir):
    where = {item.path: name for name in ("train", "val") for item in read_lst(outdir / f"{name}.lst")}
    return [(where[f"a/{c}"], where[f"a/{o}"]) for c, o in COPIES.items()]


def test_report_finds_the_copies_and_the_leaks(tmp_path):
    lines: list[str] = []
    result = convert("folders", str(_tree(tmp_path / "src")), str(tmp_path / "out"),
                     split="train=0.5,val=0.5", echo=lines.append)
    pairs = {(result.dataset.paths[i], result.dataset.paths[j]) for i, j, _ in result.duplicates.pairs}
    assert pairs == {(f"a/{o}", f"a/{c}") for c, o in COPIES.items()}  # and no distinct photos paired
    straddling = sum(a != b for a, b in _groups(tmp_path / "out"))
    assert any(line.lstrip().startswith("duplicates: 1 exact and 3 near-duplicate pair(s)") for line in lines)
    if straddling:
        assert any(f"{straddling} pair(s) straddle splits" in line for line in lines)


def test_drop_keeps_every_group_in_one_split_and_is_deterministic(tmp_path):
    src = _tree(tmp_path / "src")
    for out in ("o1", "o2"):
        convert("folders", str(src), str(tmp_path / out), split="train=0.5,val=0.5", dedup="drop", seed=3)
        assert all(a == b for a, b in _groups(tmp_path / out))
    for name in ("train.lst", "val.lst", "classes.json"):
        assert (tmp_path / "o1" / name).read_bytes() == (tmp_path / "o2" / name).read_bytes()
    total = sum(len(read_lst(tmp_path / "o1" / f"{s}.lst")) for s in ("train", "val"))
    assert total == 24


def test_off_reads_no_image(tmp_path):
    src = _tree(tmp_path / "src")
    for path in (src / "a").iterdir():
        path.write_bytes(b"not an image")  # would be unreadable if anything looked
    result = convert("folders", str(src), str(tmp_path / "out"), dedup="off")
    assert result.duplicates is None


def test_preset_splits_regroup_copies_into_the_first_images_split():
    dups = dedup.Duplicates(group=np.array([0, 1, 0, 3, 1]), pairs=[(0, 2, 0), (1, 4, 3)])
    splits = {"train": np.array([0, 1]), "val": np.array([2, 3, 4])}
    regrouped = dedup.regroup(splits, dups)
    assert regrouped["train"].tolist() == [0, 1, 2, 4] and regrouped["val"].tolist() == [3]
    assert dedup.leaks(splits, dups) == [(0, 2, 0), (1, 4, 3)] and dedup.leaks(regrouped, dups) == []


def test_images_under_the_hash_grid_are_checked_for_exact_copies_only():
    rng = np.random.default_rng(0)
    digits = [(rng.random((28, 28)) > 0.8).astype(np.uint8) * 255 for _ in range(40)]
    digits.append(digits[7].copy())
    stroke = digits[3].copy()
    stroke[10:12, 10:12] ^= 255  # a different sample of the same shape: near in pHash, not a copy
    digits.append(stroke)
    dups = dedup.find(len(digits), lambda i: digits[i])
    assert dups.pairs == [(7, 40, 0)] and dups.identical == {(7, 40)} and dups.small == 42
    assert hamming(phash_pair(digits[3])[0], phash_pair(stroke)[0]) <= 10  # would have been paired
