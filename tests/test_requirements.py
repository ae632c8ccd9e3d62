"""A missing library is one line, up front, before any image is read — never a skipped image,
never a traceback, never after the work.  The CLI runs in a subprocess whose import system
refuses the named modules, as on a ``pip install --no-deps`` machine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import imgfactory
import pytest

BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}")
sys.meta_path.insert(0, Block())
from imgprep.cli.main import main
main()
"""


def imgprep_without(blocked: set[str], *args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = BLOCKER.format(blocked=blocked)
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120, stdin=subprocess.DEVNULL)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    for cls in ("a", "b"):
        imgfactory.write(tmp_path / "img" / cls / "1.jpg", imgfactory.jpeg(64, 48))
        imgfactory.write(tmp_path / "img" / cls / "2.png", imgfactory.png(64, 48))
    (tmp_path / "x.lst").write_text("0\t0\ta/1.jpg\n1\t1\tb/2.png\n")
    return tmp_path


@pytest.mark.parametrize("native", ["0", "1"])
def test_no_pillow_fails_up_front_in_one_line(photos: Path, native: str, monkeypatch) -> None:
    monkeypatch.setenv("IMGPREP_NATIVE", native)
    proc = imgprep_without({"PIL"}, "pack", "x.lst", "--root", "img", "-o", "out/x", "--resize", 32, cwd=photos)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "imgprep: error: PIL is not installed; it is needed for decoding PNG, GIF, BMP, TIFF and WebP images, "
        "and the Pillow image path: pip install Pillow (or Pillow-SIMD: see the README)"
    ]
    assert not (photos / "out").exists()


def test_pass_through_needs_no_pillow(photos: Path) -> None:
    proc = imgprep_without({"PIL"}, "pack", "x.lst", "--root", "img", "-o", "out/x", "--pass-through", cwd=photos)
    assert proc.returncode == 0, proc.stderr
    assert (photos / "out" / "x.idx").read_text().count("\n") == 2


def test_no_boto3_fails_before_any_image_is_read(photos: Path) -> None:
    proc = imgprep_without({"boto3", "botocore"}, "pack", "x.lst", "--root", "img", "-o", "s3://bucket/x",
                           "--resize", 32, cwd=photos)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "imgprep: error: boto3 is not installed; it is needed for s3:// inputs and outputs: pip install boto3"
    ]


def test_lists_need_neither(photos: Path) -> None:
    proc = imgprep_without({"PIL", "boto3"}, "convert", "folders", "img", "-o", "lists",
                           "--split", "train=0.5,val=0.5", cwd=photos)
    assert proc.returncode == 0, proc.stderr


def test_dedup_without_pillow_is_a_note_unless_drop_is_asked(photos: Path) -> None:
    args = ("convert", "folders", "img", "-o", "lists", "--split", "train=0.5,val=0.5")
    proc = imgprep_without({"PIL"}, *args, cwd=photos)
    assert proc.returncode == 0 and "duplicates: not checked (PIL is not installed;" in proc.stderr + proc.stdout
    proc = imgprep_without({"PIL"}, *args, "--dedup", "same-split", cwd=photos)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "imgprep: error: PIL is not installed; it is needed for decoding PNG, GIF, BMP, TIFF and WebP images, "
        "and the Pillow image path: pip install Pillow (or Pillow-SIMD: see the README)"
    ]
