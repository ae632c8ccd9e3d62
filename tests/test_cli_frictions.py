"""Small things a first-time user hits: one exit status per mistake, no silently ignored option,
one summary per split, named ignored files, an image_shape that fits the data, --version."""

from __future__ import annotations

import json
from pathlib import Path

import imgfactory
import pytest
from test_convert_cli import run

import imgprep


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    for cls in ("a", "b"):
        for i in range(2):
            imgfactory.write(tmp_path / "img" / cls / f"{i}.jpg", imgfactory.jpeg(300, 260, seed=i))
    (tmp_path / "img" / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "x.lst").write_text("0\t0\ta/0.jpg\n1\t1\tb/0.jpg\n")
    return tmp_path


def test_a_missing_image_root_is_exit_1_everywhere(photos: Path) -> None:
    missing = str(photos / "nothere")
    for args in (["pack", str(photos / "x.lst"), "--root", missing, "-o", str(photos / "o")],
                 ["convert", "folders", missing, "-o", str(photos / "o")],
                 ["prepare", "folders", missing, "-o", str(photos / "o")]):
        code, _, err = run(*args)
        assert code == 1, (args, err)
        assert err.count("\n") == 1 and missing in err


@pytest.mark.parametrize(("extra", "message"), [
    (["--fit", "pad"], "--fit applies to --size WxH only"),
    (["--pass-through", "--encoding", "png"], "--encoding cannot apply"),
    (["--pass-through", "--color", "0"], "--color cannot apply"),
    (["--pass-through", "--quality", "80"], "--quality cannot apply"),
])
def test_options_that_would_be_ignored_are_usage_errors(photos: Path, extra: list[str], message: str) -> None:
    code, _, err = run("pack", str(photos / "x.lst"), "--root", str(photos / "img"), "-o", str(photos / "o"), *extra)
    assert code == 2 and message in err
    assert not (photos / "o.rec").exists()


def test_prepare_says_one_summary_per_split_and_names_ignored_files(photos: Path) -> None:
    code, out, err = run("prepare", "folders", str(photos / "img"), "-o", str(photos / "out"),
                         "--split", "train=0.5,val=0.5", "--resize", "256")
    assert code == 0, err
    text = out + err
    assert text.count("records written") == 2
    assert "1 non-image file(s) ignored: a/notes.txt" in text
    params = json.loads((photos / "out" / "hyperparameters.json").read_text())
    assert params["image_shape"] == "3,224,224"  # every side >= 256: the algorithm's 224 crop fits


def test_image_shape_never_exceeds_the_smallest_side(photos: Path) -> None:
    code, _, err = run("prepare", "folders", str(photos / "img"), "-o", str(photos / "out"),
                       "--split", "train=0.5,val=0.5", "--resize", "100", "--quiet")
    assert code == 0, err
    assert json.loads((photos / "out" / "hyperparameters.json").read_text())["image_shape"] == "3,100,100"


def test_convert_without_sizes_says_why_there_is_no_image_shape(photos: Path) -> None:
    code, out, _ = run("convert", "folders", str(photos / "img"), "-o", str(photos / "out"),
                       "--split", "train=0.5,val=0.5")
    assert code == 0
    assert "image_shape" not in json.loads((photos / "out" / "hyperparameters.json").read_text())
    assert "no image_shape" in out


def test_version() -> None:
    code, out, _ = run("--version")
    assert code == 0 and out.strip() == f"imgprep, version {imgprep.__version__}"
