"""Fail before the work: an ``s3://`` output or input that cannot be used fails the run before
any image is read, in one line naming the location and the cause (real SeaweedFS server)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from s3servers import S3Server, seaweed_fixture  # noqa: F401 - fixture

from imgprep.errors import StorageError
from imgprep.storage import Storage
from imgprep.storage.probe import check_access

pytestmark = pytest.mark.s3


def _cli(*args: object, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "from imgprep.cli.main import main; main()", *(str(a) for a in args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                          env={**os.environ, **env})


@pytest.fixture
def photos(tmp_path, imgfactory):
    imgfactory.class_tree(tmp_path / "photos", ["ant", "bee"], 4)
    return tmp_path / "photos"


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "duplicates" not in proc.stdout and "aborted upload" not in proc.stderr  # no image was read
    return lines[0]


def test_prepare_to_s3_with_wrong_credentials_fails_before_reading_an_image(photos, seaweed: S3Server):
    seaweed.client().create_bucket(Bucket="early")
    proc = _cli("prepare", "folders", photos, "-o", "s3://early/x/", "--resize", "32", "-q",
                "--endpoint-url", seaweed.endpoint_url, env={"AWS_ACCESS_KEY_ID": "nobody",
                                                             "AWS_SECRET_ACCESS_KEY": "wrong"})
    line = _one_error_line(proc)
    assert line.startswith("imgprep: error: s3://early/x/: cannot write under this location: ")
    assert "access key" in line or "access denied" in line


def test_convert_to_a_missing_bucket_names_the_bucket(photos, seaweed: S3Server):
    proc = _cli("convert", "folders", photos, "-o", "s3://no-such-bucket-23/x", "--endpoint-url",
                seaweed.endpoint_url, env={})
    line = _one_error_line(proc)
    assert line == ("imgprep: error: s3://no-such-bucket-23/x/: cannot write under this location: the bucket "
                    f"no-such-bucket-23 does not exist at {seaweed.endpoint_url} (is --endpoint-url right?)")


def test_pack_without_credentials_never_names_its_lock(photos, tmp_path, seaweed: S3Server):
    lst = tmp_path / "train.lst"
    lst.write_text("0\t0\tant/img_000.jpg\n")
    seaweed.client().create_bucket(Bucket="early2")
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
           "AWS_CONFIG_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true"}
    env = {k: v for k, v in env.items() if v}
    proc = subprocess.run(
        [sys.executable, "-c", "from imgprep.cli.main import main; main()", "pack", str(lst), "--root", str(photos),
         "-o", "s3://early2/out/train", "--endpoint-url", seaweed.endpoint_url],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
        env={k: v for k, v in {**os.environ, **env}.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
    line = _one_error_line(proc)
    assert line.startswith("imgprep: error: s3://early2/out/train: cannot write under this location: no AWS "
                           "credentials were found")
    assert ".lock" not in line


def test_probe_of_inputs_and_a_good_output(seaweed: S3Server):
    client = seaweed.client()
    client.create_bucket(Bucket="probed")
    client.put_object(Bucket="probed", Key="in/list.lst", Body=b"0\t0\ta.jpg\n")
    storage = Storage.from_options(endpoint_url=seaweed.endpoint_url)
    check_access(storage, reads=["s3://probed/in/list.lst", "s3://probed/in", None], writes=["s3://probed/out/x"])
    assert "Contents" not in client.list_objects_v2(Bucket="probed", Prefix="out/")  # the probe cleaned up
    with pytest.raises(StorageError, match=r"^s3://gone-23/in/: cannot read this location: the bucket gone-23 "):
        check_access(storage, reads=["s3://gone-23/in/"])


def test_verify_of_s3_with_wrong_credentials_is_one_line(seaweed: S3Server):
    seaweed.client().create_bucket(Bucket="early3")
    proc = _cli("verify", "s3://early3/data/train.rec", "--endpoint-url", seaweed.endpoint_url,
                env={"AWS_ACCESS_KEY_ID": "nobody", "AWS_SECRET_ACCESS_KEY": "wrong"})
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1
    assert lines[0].startswith("imgprep: error: s3://early3/data/train.rec: cannot read this location: ")


def test_merge_to_a_missing_bucket_fails_before_copying(tmp_path, seaweed: S3Server):
    from imgprep.formats import recordio

    with recordio.RecordWriter(tmp_path / "train-00000.rec", tmp_path / "train-00000.idx") as writer:
        writer.write(recordio.pack_image_record(0.0, 0, b"\xff\xd8\xff\xd9"), key=0)
    proc = _cli("merge", tmp_path / "train", "-o", "s3://no-such-bucket-23/m/train", "--endpoint-url",
                seaweed.endpoint_url, env={})
    line = _one_error_line(proc)
    assert line == ("imgprep: error: s3://no-such-bucket-23/m/train: cannot write under this location: the bucket "
                    f"no-such-bucket-23 does not exist at {seaweed.endpoint_url} (is --endpoint-url right?)")
