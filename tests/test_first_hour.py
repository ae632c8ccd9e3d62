"""What a new user meets in the first hour: messages that say what happened and what to do."""

from __future__ import annotations

import json
import unicodedata

import pytest

from imgprep.errors import FormatError, SourceError
from imgprep.formats.lst import parse_lines
from imgprep.formats.names import look_alikes, suggest
from imgprep.sources.coco import load_coco
from imgprep.sources.folders import load_folders


def test_a_missing_folder_is_not_called_not_a_directory(tmp_path):
    with pytest.raises(SourceError, match=r"photos: does not exist \(expected the folder holding one folder per"):
        load_folders(str(tmp_path / "photos"))
    (tmp_path / "file.jpg").write_bytes(b"x")
    with pytest.raises(SourceError, match=r"file.jpg: is a file, not a folder"):
        load_folders(str(tmp_path / "file.jpg"))


def test_nested_tree_read_as_coarse_classes_is_said(tmp_path, imgfactory):
    for top, leaves in {"Fruit": ["Apple", "Pear"], "Veg": ["Kale", "Leek"]}.items():
        for leaf in leaves:
            imgfactory.class_tree(tmp_path / "shop" / top, [leaf], 2)
    coarse = load_folders(str(tmp_path / "shop"))
    assert coarse.num_classes == 2
    assert any("read as 2 coarse class(es); --leaf-classes makes each of the 4 folders" in n for n in coarse.notes)
    fine = load_folders(str(tmp_path / "shop"), leaf_classes=True)
    assert fine.num_classes == 4 and not any("coarse" in n for n in fine.notes)


def test_identical_looking_class_names_are_warned(tmp_path, imgfactory):
    nfc, nfd = unicodedata.normalize("NFC", "Café"), unicodedata.normalize("NFD", "Café")
    imgfactory.class_tree(tmp_path / "c", [nfc, nfd, "dog", "Dog", "emu"], 1)
    data = load_folders(str(tmp_path / "c"))
    note = next(n for n in data.notes if "look identical" in n)
    assert note.startswith("2 group(s) of class names look identical") and "'Cafe\\u0301' = 'Caf\\xe9'" in note
    assert "'Dog' = 'dog'" in note
    assert look_alikes(["a", "b"]) == []


def test_misspelt_class_and_category_get_suggestions(tmp_path, imgfactory):
    imgfactory.class_tree(tmp_path / "c", ["person", "bicycle"], 1)
    with pytest.raises(SourceError, match=r"class 'persn' from --classes has no images \(did you mean 'person'\?\)"):
        load_folders(str(tmp_path / "c"), classes=["persn"])
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 9, "height": 9}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 1, "bbox": [0, 0, 1, 1]}],
           "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "motorcycle"}]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SourceError, match=r"no category named or numbered 'persn' \(did you mean 'person'\?\)"):
        load_coco(str(path), categories=["persn"])
    assert suggest("zzz", ["person"]) == ""


def test_space_separated_lst_gets_the_spaces_hint():
    with pytest.raises(FormatError, match=r"got 1 tab-separated column\(s\) — this line separates its columns with "
                                          r"spaces"):
        list(parse_lines(["0 1 cat/a.jpg\n"], path="train.lst"))
    with pytest.raises(FormatError) as caught:
        list(parse_lines(["0\tcat/a.jpg\n"], path="train.lst"))
    assert "spaces" not in str(caught.value)


SCRIPT = """
import threading, time
import imgprep
from imgprep.formats.lst import LstItem
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()  # a host application's thread
print("script body runs", flush=True)
items = [LstItem(i, (float(i % 2),), f"{'ab'[i % 2]}/img_{i // 2:03d}.jpg") for i in range(8)]
summary = imgprep.pack(items, ROOT, OUT, num_workers=2, native=False)
print("packed", summary.records, flush=True)
"""


def test_a_script_without_a_main_guard_runs_once(tmp_path, imgfactory):
    """The Pillow path would use worker processes; with threads running they would start through
    forkserver, which imports the (unguarded) script again in every worker."""
    import subprocess
    import sys

    imgfactory.class_tree(tmp_path / "img", ["a", "b"], 4)
    script = tmp_path / "train.py"
    script.write_text(SCRIPT.replace("ROOT", repr(str(tmp_path / "img"))).replace("OUT", repr(str(tmp_path / "out"))))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == ["script body runs", "packed 8"]


def test_convert_mnist_says_where_it_wrote_the_images(tmp_path, imgprep_cli):
    from test_sources_mnist import write_mnist

    write_mnist(tmp_path / "in", n_train=6, n_test=4)
    out = imgprep_cli("convert", "mnist", tmp_path / "in", "-o", tmp_path / "out", "--dedup", "off").stdout
    assert f"wrote 10 PNG images under {tmp_path / 'out' / 'images'} (give `--root {tmp_path / 'out' / 'images'}`" \
        in out
    assert "does not read the images" not in out


def test_the_processing_image_installs_the_repaired_wheel():
    """The runtime stage has no system libturbojpeg: the wheel auditwheel repaired carries it, and
    the build fails unless the native core loads from it."""
    from pathlib import Path

    text = (Path(__file__).parents[1] / "Dockerfile").read_text()
    build, runtime = text.split("\nFROM ", 2)[1:]
    assert "auditwheel repair -w /wheels" in build
    assert "libturbojpeg" not in runtime.split("RUN", 1)[0] and "apt-get" not in runtime
    assert "! ldconfig -p | grep -q libturbojpeg" in runtime and "imgprep._native" in runtime
