"""``imgprep convert`` / ``prepare`` end to end through the real entry point, under CliRunner."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from imgprep.cli.main import main
from imgprep.formats.lst import read_lst

JPEG = b"\xff\xd8\xff\xe0fake"


def run(*args: str) -> tuple[int, str, str]:
    """Run ``imgprep ARGS`` as a user would (one-line errors come from ``main``)."""
    runner = CliRunner()
    with runner.isolation() as (out, err, _):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        return code, out.getvalue().decode(), err.getvalue().decode()


def tree(root: Path, sizes: dict[str, int]) -> Path:
    for cls, n in sizes.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (root / cls / f"{i:03d}.jpg").write_bytes(JPEG)
    return root


def mnist_files(folder: Path, n_train: int = 20, n_test: int = 10) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for part, n in (("train", n_train), ("t10k", n_test)):
        pixels = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = struct.pack(">IIII", 2051, n, 28, 28) + pixels.tobytes()
        (folder / f"{part}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images, mtime=0))
        (folder / f"{part}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(struct.pack(">II", 2049, n) + labels.tobytes(), mtime=0)
        )


def test_convert_folders_writes_everything(tmp_path) -> None:
    src = tree(tmp_path / "in", {"cat": 10, "dog": 20, "emu": 5})
    out = tmp_path / "out"
    code, stdout, err = run(
        "convert", "folders", str(src), "-o", str(out), "--split", "train=0.6,val=0.2,test=0.2",
        "--manifest-prefix", "s3://bucket/pets/", "--creation-date", "2024-01-02T03:04:05Z",
    )  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        "classes.json",
        "hyperparameters.json",
        "test.lst",
        "test.manifest",
        "train.lst",
        "train.manifest",
        "val.lst",
        "val.manifest",
    ]
    train = read_lst(out / "train.lst")
    assert len(train) == 21
    classes = json.loads((out / "classes.json").read_text())
    assert classes["names"] == {"0": "cat", "1": "dog", "2": "emu"}
    assert classes["classes"][2]["counts"] == {"train": 3, "val": 1, "test": 1}
    assert json.loads((out / "hyperparameters.json").read_text()) == {
        "num_classes": "3",
        "num_training_samples": "21",
        "multi_label": "0",
    }
    first = json.loads((out / "train.manifest").read_text().splitlines()[0])
    assert first["source-ref"] == "s3://bucket/pets/" + train[0].path
    assert first["class-metadata"]["creation-date"] == "2024-01-02T03:04:05.000000"
    assert "emu" in stdout and "AttributeNames=['source-ref', 'class']" in stdout


def test_same_seed_byte_identical_outputs(tmp_path, monkeypatch) -> None:
    src = tree(tmp_path / "in", {"a": 9, "b": 13})
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    outputs = []
    for name, seed in (("one", "5"), ("two", "5"), ("three", "6")):
        out = tmp_path / name
        args = ("convert", "folders", str(src), "-o", str(out), "--seed", seed, "--manifest-prefix", "s3://b/")
        assert run(*args)[0] == 0
        outputs.append({p.name: p.read_bytes() for p in out.iterdir()})
    assert outputs[0] == outputs[1]
    assert outputs[0]["train.lst"] != outputs[2]["train.lst"]
    assert b"2023-11-14T22:13:20.000000" in outputs[0]["train.manifest"]


def test_coco_multi_label_lists_and_hyperparameters(tmp_path) -> None:
    doc = {
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 180 + i} for i in range(40)],
        "annotations": [
            {"id": k, "image_id": k % 40, "category_id": (1, 3, 44)[k % 3], "iscrowd": 0, "area": 5.0}
            for k in range(70)
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 44, "name": "bottle"}],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(doc))
    out = tmp_path / "out"
    code, _, err = run(
        "convert", "coco", str(path), "-o", str(out), "--categories", "car,person", "--split",
        "train=0.5,val=0.5", "--manifest-prefix", "s3://b/img/", "--label-format", "class-id",
    )  # fmt: skip
    assert code == 0, err
    train = read_lst(out / "train.lst")
    assert all(len(item.labels) == 2 for item in train)
    params = json.loads((out / "hyperparameters.json").read_text())
    assert params["multi_label"] == "1" and params["num_classes"] == "2"
    assert params["num_training_samples"] == str(len(train))
    assert params["image_shape"] == "3,180,180"  # smallest image side in the JSON
    assert params["use_weighted_loss"] in ("0", "1")
    line = json.loads((out / "val.manifest").read_text().splitlines()[0])
    assert isinstance(line["class"], list)
    assert line["class-metadata"]["type"] == "groundtruth/image-classification-multilabel"


def test_mnist_convert_and_prepare(tmp_path) -> None:
    mnist_files(tmp_path / "in")
    code, _, err = run("convert", "mnist", str(tmp_path / "in"), "-o", str(tmp_path / "c"), "--channels", "1", "-q")
    assert code == 0, err
    assert json.loads((tmp_path / "c" / "hyperparameters.json").read_text())["image_shape"] == "1,28,28"
    assert len(read_lst(tmp_path / "c" / "val.lst")) == 10  # t10k kept as validation
    pytest.importorskip("imgprep.packing.packer")
    code, _, err = run(
        "prepare", "mnist", str(tmp_path / "in"), "-o", str(tmp_path / "p"), "--encoding", "png",
        "--split", "train=0.7,val=0.3", "-j", "1", "-q",
    )  # fmt: skip
    assert code == 0, err
    assert {p.name for p in (tmp_path / "p").iterdir()} >= {"train.rec", "train.idx", "val.rec", "val.idx"}
    assert json.loads((tmp_path / "p" / "hyperparameters.json").read_text())["image_shape"] == "3,28,28"
    assert not (tmp_path / "p" / "images").exists()


def broken_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    idx = tmp_path / "idx"
    mnist_files(idx)
    bad_magic = tmp_path / "magic"
    mnist_files(bad_magic)
    (bad_magic / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(struct.pack(">IIII", 2050, 0, 28, 28)))
    truncated = tmp_path / "trunc"
    mnist_files(truncated)
    (truncated / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(struct.pack(">IIII", 2051, 10, 28, 28) + b"\0" * 100)
    )
    mismatch = tmp_path / "mismatch"
    mnist_files(mismatch)
    (mismatch / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(struct.pack(">II", 2049, 3) + b"\0\1\2"))
    coco_missing = tmp_path / "missing.json"
    coco_missing.write_text(json.dumps({"images": [], "categories": []}))
    coco_unknown = tmp_path / "unknown.json"
    coco_unknown.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "1.jpg"}],
                "annotations": [{"id": 5, "image_id": 2, "category_id": 1}],
                "categories": [{"id": 1, "name": "person"}],
            }
        )
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    one = tree(tmp_path / "one", {"a": 10, "b": 1})
    manifest = tmp_path / "bad.manifest"
    manifest.write_text('{"source-ref": "s3://b/1.jpg", "c": 0, "c-metadata": {"class-name": "x"}}\nnot json\n')
    return {
        "bad-idx-magic": (["mnist", str(bad_magic)], "bad IDX magic 0x00000802"),
        "truncated-idx": (["mnist", str(truncated)], "truncated IDX data"),
        "count-mismatch": (["mnist", str(mismatch)], "20 images but 3 labels"),
        "coco-missing-key": (["coco", str(coco_missing)], "missing key 'annotations'"),
        "coco-unknown-image": (["coco", str(coco_unknown)], "image_id 2 is not among the images"),
        "empty-folder": (["folders", str(empty)], "no images found"),
        "one-image-three-ways": (
            ["folders", str(one), "--split", "train=0.6,val=0.2,test=0.2"],
            "class 'b' has 1 image(s), too few for 3 splits",
        ),
        "manifest-not-json": (["manifest", str(manifest)], "bad.manifest:2: not JSON"),
        "wrong-option": (["coco", str(coco_unknown), "--leaf-classes"], "--leaf-classes cannot be used with coco"),
        "bad-split": (["folders", str(one), "--split", "train=0.9"], "shares sum to 0.9"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "bad-idx-magic",
        "truncated-idx",
        "count-mismatch",
        "coco-missing-key",
        "coco-unknown-image",
        "empty-folder",
        "one-image-three-ways",
        "manifest-not-json",
        "wrong-option",
        "bad-split",
    ],
)
def test_malformed_inputs_give_one_line(tmp_path, case) -> None:
    args, message = broken_inputs(tmp_path)[case]
    code, stdout, err = run("convert", *args, "-o", str(tmp_path / "out"))
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert message in lines[0]
    assert lines[0].startswith("imgprep: error: ")
    assert "Traceback" not in err + stdout
    assert not (tmp_path / "out").exists()


def test_prepare_coco_needs_image_root(tmp_path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}]}))
    code, _, err = run("prepare", "coco", str(path), "-o", str(tmp_path / "out"))
    assert code == 2 and "needs --image-root" in err


def test_help_lists_examples() -> None:
    code, stdout, _ = run("convert", "--help")
    assert code == 0 and "--train-per-class" in stdout and "Examples:" in stdout


@pytest.mark.parametrize("command", ["convert", "prepare", "pack", "verify", "inspect", "merge", "cleanup",
                                     "doctor", "launch", "processing", "processing pack", "processing prepare"])
def test_every_command_help_has_an_example(command: str) -> None:
    """The README sends users to each command's --help for examples; click's no-rewrap marker
    (a backspace) is dropped only when it opens a paragraph, else it reaches the text."""
    code, stdout, _ = run(*command.split(), "--help")
    assert code == 0 and f"imgprep {command.split()[0]}" in stdout
    assert "Example" in stdout and "\b" not in stdout
