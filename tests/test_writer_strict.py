"""The writing side tells readers what they need, and checks what it is given (issue 28, writer side):
num_classes in every dataset record, verify holds hyperparameter values to their types, merge
checks its inputs' checksums before publishing, a rerun never loses both datasets, cleanup of a
bucket root."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from s3servers import S3Server, seaweed_fixture  # noqa: F401 - fixtures

from imgprep.api import verify
from imgprep.errors import FormatError
from imgprep.formats.dataset import from_json


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three classes of 6 images, prepared at --resize 40 into train/val."""
    import imgfactory
    from conftest import run_imgprep

    base = tmp_path_factory.mktemp("prepared")
    imgfactory.class_tree(base / "photos", ["ant", "bee", "cow"], 6)
    run_imgprep("prepare", "folders", base / "photos", "-o", base / "out", "--split", "train=0.5,val=0.5",
                "--dedup", "off", "--resize", "40", "-q")
    return base / "out"


@pytest.fixture
def out(prepared: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(prepared, copy)
    return copy


# --------------------------------------------------------------------------- 28.6 verify checks values


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("num_training_samples", "abc", "num_training_samples 'abc' is not a count of images: set it to 9"),
    ("num_training_samples", None, "num_training_samples is missing (the training channel needs it): set it to 9"),
    ("num_training_samples", "9.0", "num_training_samples '9.0' is not a count of images"),
    ("num_classes", "twenty", "num_classes 'twenty' is not a positive integer"),
    ("multi_label", "yes", "multi_label 'yes' must be 0 or 1"),
    ("image_shape", "3,0,0", "image_shape 3,0,0 must have positive height and width"),
    ("image_shape", "1,40,40", "image_shape 1,40,40 has 1 channel(s), the records hold 3-channel images"),
])
def test_verify_refuses_malformed_hyperparameter_values(out: Path, imgprep_cli, key: str, value: str | None,
                                                        expected: str) -> None:
    hyper = json.loads((out / "hyperparameters.json").read_text())
    assert verify(str(out / "train.rec"), progress=False).ok
    if value is None:
        del hyper[key]
    else:
        hyper[key] = value
    (out / "hyperparameters.json").write_text(json.dumps(hyper))
    proc = imgprep_cli("verify", out / "train.rec", check=False)
    assert proc.returncode == 1, proc.stdout
    [line] = [line for line in proc.stdout.splitlines() if "hyperparameters.json:" in line]
    assert expected in line, proc.stdout
    assert "FAILED: 1 problem" in proc.stdout


def test_verify_of_the_validation_channel_does_not_need_a_sample_count(out: Path) -> None:
    hyper = json.loads((out / "hyperparameters.json").read_text())
    del hyper["num_training_samples"]
    (out / "hyperparameters.json").write_text(json.dumps(hyper))
    report = verify(str(out / "val.rec"), progress=False)
    assert report.ok, [str(p) for p in report.problems]


# --------------------------------------------------------------------------- 28.7 cleanup of a bucket root


def test_cleanup_of_a_bucket_root_aborts_a_dead_writers_upload(seaweed: S3Server, imgprep_cli) -> None:
    from imgprep.storage.s3_cleanup import marker_key

    bucket = f"root{os.getpid()}-{random.randrange(1 << 30)}"
    client = seaweed.client()
    client.create_bucket(Bucket=bucket)
    upload = client.create_multipart_upload(Bucket=bucket, Key="train.rec")["UploadId"]
    client.put_object(Bucket=bucket, Key=marker_key("train.rec", upload), Body=b"",
                      Metadata={"imgprep-host": "gone.example", "imgprep-pid": "1"})
    done = imgprep_cli("cleanup", f"s3://{bucket}/", "--min-age", "0", "--endpoint-url", seaweed.endpoint_url,
                       check=False)
    assert done.returncode == 0, done.stderr
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == [], keys


# --------------------------------------------------------------------------- 28.7 merge checks its inputs


@pytest.fixture
def sharded(prepared: Path, tmp_path: Path, imgprep_cli) -> Path:
    out = tmp_path / "sharded"
    imgprep_cli("prepare", "folders", prepared.parent / "photos", "-o", out, "--split", "train=0.5,val=0.5",
                "--dedup", "off", "--resize", "40", "-q", "--shard-records", "4")
    return out


def _flip_inside_record(rec: Path, idx: Path, ordinal: int) -> int:
    offsets = sorted(int(line.split("\t")[1]) for line in idx.read_text().splitlines())
    at = offsets[ordinal] + 8 + 24 + 40  # past the framing and the image header: inside the JPEG's bytes
    data = bytearray(rec.read_bytes())
    data[at] ^= 0x01
    rec.write_bytes(bytes(data))
    return offsets[ordinal]


def test_merge_refuses_a_damaged_shard_naming_shard_and_record(sharded: Path, tmp_path: Path, imgprep_cli) -> None:
    offset = _flip_inside_record(sharded / "train-00001.rec", sharded / "train-00001.idx", 2)
    assert imgprep_cli("verify", sharded / "train", check=False).returncode == 1  # verify flags it
    proc = imgprep_cli("merge", sharded / "train", "-o", tmp_path / "all", check=False)
    assert proc.returncode != 0, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"imgprep: error: {sharded / 'train-00001.rec'}: record 2 (at byte {offset}): bytes "
                           "differ from the packed record"), line
    assert not list(tmp_path.glob("all*")), "a damaged merge published something"


def test_merge_writes_a_dataset_record_that_verify_and_readers_use(sharded: Path, tmp_path: Path,
                                                                  imgprep_cli) -> None:
    imgprep_cli("merge", sharded / "train", "-o", tmp_path / "all", "-q")
    record = from_json((tmp_path / "all.dataset.json").read_text(), "all.dataset.json")
    source = from_json((sharded / "train.dataset.json").read_text(), "train.dataset.json")
    assert [s.rec for s in record.shards] == ["all.rec"]
    assert record.records == source.records and record.list == source.list
    assert record.num_classes == 3
    report = verify(str(tmp_path / "all.rec"), progress=False)
    assert report.ok and "checksums vs the dataset record" in " ".join(report.checks), report.problems
    data = bytearray((tmp_path / "all.rec").read_bytes())
    data[len(data) // 2] ^= 0x01
    (tmp_path / "all.rec").write_bytes(bytes(data))
    assert not verify(str(tmp_path / "all.rec"), progress=False).ok


# --------------------------------------------------------------------------- 28.1 num_classes in every record


def _record(prefix: Path):
    return from_json(prefix.with_name(prefix.name + ".dataset.json").read_text(), str(prefix))


def test_prepare_records_the_classes(prepared: Path) -> None:
    for split in ("train", "val"):
        record = _record(prepared / split)
        assert record.num_classes == 3 and record.class_names == ("ant", "bee", "cow")
        assert record.label_width == 1


def test_pack_takes_the_classes_from_the_classes_json_beside_the_list(prepared: Path, tmp_path: Path,
                                                                       imgprep_cli) -> None:
    photos = prepared.parent / "photos"
    imgprep_cli("pack", prepared / "train.lst", "--root", photos, "-o", tmp_path / "a" / "train", "-q")
    assert _record(tmp_path / "a" / "train").num_classes == 3
    assert _record(tmp_path / "a" / "train").class_names == ("ant", "bee", "cow")
    alone = tmp_path / "alone.lst"
    shutil.copyfile(prepared / "train.lst", alone)
    imgprep_cli("pack", alone, "--root", photos, "-o", tmp_path / "b" / "train", "-q")
    doc = json.loads((tmp_path / "b" / "train.dataset.json").read_text())
    assert doc["num_classes"] is None
    assert doc["num_classes_unknown"] == f"no classes.json beside {alone} and no --num-classes"
    imgprep_cli("pack", alone, "--root", photos, "-o", tmp_path / "c" / "train", "-q", "--num-classes", "5")
    assert _record(tmp_path / "c" / "train").num_classes == 5


def test_pack_refuses_a_label_outside_the_classes_before_reading_an_image(prepared: Path, tmp_path: Path,
                                                                          imgprep_cli) -> None:
    lines = (prepared / "train.lst").read_text().splitlines()
    index, _, path = lines[-1].split("\t")
    lines[-1] = f"{index}\t25.000000\t{path}"
    lst = tmp_path / "lists" / "train.lst"
    lst.parent.mkdir()
    lst.write_text("\n".join(lines) + "\n")
    shutil.copyfile(prepared / "classes.json", tmp_path / "lists" / "classes.json")
    empty = tmp_path / "no-images"  # a root without images: reading one would fail otherwise
    empty.mkdir()
    proc = imgprep_cli("pack", lst, "--root", empty, "-o", tmp_path / "out" / "train", check=False)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line == (f"imgprep: error: {lst}: entry {index} ({path}) has label 25, not a class id in 0..2 "
                    f"(3 classes, from {tmp_path / 'lists' / 'classes.json'})")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_record_without_classes_says_why_and_old_records_still_read() -> None:
    from imgprep.formats.dataset import DatasetRecord, ListRef, to_json

    record = DatasetRecord("0.1.0", ListRef("x.lst", "0" * 64, 0), ())
    doc = json.loads(to_json(record))
    assert doc["num_classes"] is None and "--num-classes" in doc["num_classes_unknown"]
    assert from_json(to_json(record), "r").num_classes_unknown == doc["num_classes_unknown"]
    del doc["num_classes_unknown"]  # as written before the field existed
    assert from_json(json.dumps(doc), "r").num_classes is None
    doc.update(num_classes=2, class_names=["a", "b", "c"])
    with pytest.raises(FormatError, match="class_names holds 3 names for num_classes 2"):
        from_json(json.dumps(doc), "r")


# --------------------------------------------------------------------------- 28.7 a rerun on a full disk


@pytest.fixture
def small_disk(tmp_path: Path):
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def _visible(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


def test_a_sharded_rerun_that_would_fill_the_disk_keeps_the_old_dataset(prepared: Path, small_disk: Path,
                                                                        imgprep_cli) -> None:
    photos, lst = prepared.parent / "photos", prepared / "train.lst"
    common = ("--root", photos, "-o", small_disk / "train", "--shard-records", "2", "-j", "1", "-q")
    imgprep_cli("pack", lst, *common, "--resize", "16")
    old = _visible(small_disk)
    stat = os.statvfs(small_disk)
    # room for the new run's first shard (and its checkpoint), not for the whole new dataset
    (small_disk / "filler").write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - 24_000))
    proc = imgprep_cli("pack", lst, *common, "--resize", "48", "--quality", "100", check=False)
    assert proc.returncode == 1, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"imgprep: error: {small_disk / 'train'}: not enough space for the new dataset: "
                           "about "), line
    assert "the old dataset is kept" in line
    files = _visible(small_disk)
    files.pop("filler")
    assert files == old  # byte for byte: the old dataset, whole and committed
    assert verify(str(small_disk / "train"), progress=False).ok


def test_a_prepare_rerun_that_would_fill_the_disk_keeps_every_split(prepared: Path, small_disk: Path,
                                                                     imgprep_cli) -> None:
    photos, out = prepared.parent / "photos", small_disk / "out"
    common = ("folders", photos, "-o", out, "--split", "train=0.5,val=0.5", "--dedup", "off", "--shard-records", "2",
              "-j", "1", "-q")
    imgprep_cli("prepare", *common, "--resize", "16")
    old = _visible(out)
    train = sum(len(v) for k, v in old.items() if k.startswith("train-"))
    stat = os.statvfs(small_disk)
    # room for the new train split where the old one is, not for train, val and the metadata together
    (small_disk / "filler").write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - 30_000))
    proc = imgprep_cli("prepare", *common, "--resize", "48", "--quality", "100", check=False)
    assert proc.returncode == 1, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert "not enough space for the new dataset" in line and "the old dataset is kept" in line, line
    assert _visible(out) == old, f"the old prepare ({train:,} bytes of train shards) was touched"
