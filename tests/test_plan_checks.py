"""Every plan error before any image is read (issue 32.2): split feasibility, class sizes,
--train-per-class, labels outside the classes, resume compatibility — from the folder walk or the
list alone.  Each test counts the files opened under the image tree (``os.open``, the one way
imgprep's Python reads an image: storage.roots.read_inside) and wants none."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import imgfactory
import pytest

import imgprep
from imgprep.errors import ImgprepError, SplitError, UsageError


@pytest.fixture(scope="module")
def caltech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Caltech-256-style tree of three classes of 6 images (far below the 60 training images per class)."""
    root = tmp_path_factory.mktemp("caltech") / "256_ObjectCategories"
    made = imgfactory.class_tree(root, ["ant", "bee", "cow"], 6)
    for number, name in enumerate(["ant", "bee", "cow"], 1):
        (root / name).rename(root / f"{number:03d}.{name}")
    assert len(made) == 18
    return root


@pytest.fixture
def image_opens(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The image files opened while the test runs (paths ending in an image suffix)."""
    opened: list[str] = []
    real = os.open

    def counting(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(path).lower().endswith((".jpg", ".jpeg", ".png")):
            opened.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting)
    yield opened


def _prepare(kind: str, source: Path, out: Path, **kw: object) -> imgprep.PrepareResult:
    return imgprep.prepare(kind, str(source), str(out), num_workers=1, resize=24, **kw)


def test_caltech_with_classes_below_the_quota_fails_before_fingerprinting(caltech: Path, tmp_path: Path,
                                                                          image_opens: list[str]) -> None:
    with pytest.raises(SplitError) as err:
        _prepare("caltech", caltech, tmp_path / "out")  # the default: 60 per class, and the duplicate pass on
    assert image_opens == []
    assert err.value.message == ("class 'ant' has 6 image(s); --train-per-class 60 leaves none for validation "
                                 "(3 classes have 60 or fewer): use --train-per-class 5 (the smallest class less "
                                 "one) or --split (e.g. train=0.8,val=0.2)")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    _prepare("caltech", caltech, tmp_path / "out", train_per_class=5, dedup="off")  # the fix it names works


def test_a_split_with_more_splits_than_a_class_has_images_fails_before_any_read(caltech: Path, tmp_path: Path,
                                                                               image_opens: list[str]) -> None:
    small = tmp_path / "small"
    shutil.copytree(caltech, small)
    for extra in sorted((small / "002.bee").iterdir())[2:]:
        extra.unlink()
    with pytest.raises(SplitError, match=r"class '002.bee' has 2 image\(s\), too few for 3 splits"):
        _prepare("folders", small, tmp_path / "out", split="train=0.6,val=0.2,test=0.2")
    assert image_opens == []


def test_train_per_class_on_multi_label_data_is_refused_before_any_read(tmp_path: Path,
                                                                        image_opens: list[str]) -> None:
    import numpy as np

    from imgprep.splits.stratify import SplitPlan, check_feasible

    with pytest.raises(UsageError, match="needs single-label data"):
        check_feasible(np.eye(3, dtype=np.uint8), SplitPlan(train_per_class=1), ["a", "b", "c"], multi_label=True)
    with pytest.raises(SplitError, match="split 'val' would be empty"):
        check_feasible(np.zeros(1, dtype=np.int64), SplitPlan(fractions=(("train", 0.5), ("val", 0.5)),
                                                              stratify=False), ["a"], multi_label=False)


def test_prepare_resume_of_another_split_fails_before_any_read(caltech: Path, tmp_path: Path,
                                                               image_opens: list[str]) -> None:
    out = tmp_path / "out"
    _prepare("folders", caltech, out, split="train=0.5,val=0.5", seed=1, dedup="off")
    image_opens.clear()
    with pytest.raises(UsageError, match="cannot resume: the earlier prepare split the data differently"):
        _prepare("folders", caltech, out, split="train=0.5,val=0.5", seed=2, resume=True)  # duplicates on
    assert image_opens == []


def test_pack_label_outside_the_classes_fails_before_any_read(caltech: Path, tmp_path: Path,
                                                              image_opens: list[str]) -> None:
    lists = tmp_path / "lists"
    imgprep.convert("folders", str(caltech), str(lists), split="train=0.5,val=0.5", dedup="off")
    image_opens.clear()
    with pytest.raises(ImgprepError, match=r"has label 1, not a class id in 0\.\.0"):
        imgprep.pack([str(lists / "train.lst")], str(caltech), str(tmp_path / "out" / "train"), num_classes=1,
                     num_workers=1)
    assert image_opens == []


def test_an_output_name_the_folder_cannot_hold_fails_before_any_read(caltech: Path, tmp_path: Path,
                                                                     image_opens: list[str]) -> None:
    name = "t" * 240  # its temporaries (.NAME.XXXXXXXX.part) would pass the file-name limit
    with pytest.raises(UsageError, match="output name too long"):
        _prepare("folders", caltech, tmp_path / "out", split=f"train=0.5,{name}=0.5")
    assert image_opens == []


def test_prepare_refuses_a_num_classes_the_dataset_contradicts_before_any_read(caltech: Path, tmp_path: Path,
                                                                              image_opens: list[str]) -> None:
    with pytest.raises(UsageError, match="--num-classes 2: the dataset has 3 classes"):
        _prepare("folders", caltech, tmp_path / "out", num_classes=2)
    assert image_opens == []
