"""The writing side tells readers what they need, and checks what it is given (issue 28, writer side):
num_classes in every dataset record, verify holds hyperparameter values to their types, merge
checks its inputs' checksums before publishing, a rerun never loses both datasets, cleanup of a
bucket root."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest
from s3servers import S3Server, seaweed_fixture  # noqa: F401 - fixtures

from imgprep.api import verify


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
