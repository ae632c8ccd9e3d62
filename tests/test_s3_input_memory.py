"""What a pack reading its images from ``s3://`` holds beyond a local pack: the image reader
(obstore) and a bounded window of fetched bytes -- no botocore client for the image root's probe,
no megabytes of fetched input per chunk (real SeaweedFS server)."""

from __future__ import annotations

import os
import subprocess
import sys
import weakref
from pathlib import Path

import pytest
from s3servers import S3Server, seaweed_fixture  # noqa: F401 - fixture

from imgprep.errors import StorageError
from imgprep.formats.lst import LstItem
from imgprep.imaging.spec import TransformSpec
from imgprep.packing.packer import CHUNK_INPUT, PackOptions, pack
from imgprep.storage import Storage
from imgprep.storage.images import ImageSource
from imgprep.storage.probe import check_access

pytestmark = pytest.mark.s3

PROBE_MODULES = """
import atexit, sys
atexit.register(lambda: sys.stderr.write("botocore loaded: %s\\n" % ("botocore.client" in sys.modules)))
from imgprep.cli.main import main
main(sys.argv[1:])
"""


def test_pack_from_s3_to_a_local_output_makes_no_botocore_client(tmp_path: Path, seaweed: S3Server,
                                                                  imgfactory) -> None:
    """Fails on the code that probed the image root with botocore (its import and client stayed
    resident for the whole pack)."""
    root = tmp_path / "photos"
    imgfactory.class_tree(root, ["ant", "bee"], 3)
    client = seaweed.client()
    client.create_bucket(Bucket="input32")
    lines = []
    for i, path in enumerate(sorted(root.rglob("*.jpg"))):
        rel = path.relative_to(root).as_posix()
        client.put_object(Bucket="input32", Key=f"img/{rel}", Body=path.read_bytes())
        lines.append(f"{i}\t{i % 2}\t{rel}\n")
    lst = tmp_path / "train.lst"
    lst.write_text("".join(lines))
    out = {}
    for where, image_root in (("s3", "s3://input32/img/"), ("local", str(root))):
        proc = subprocess.run(
            [sys.executable, "-c", PROBE_MODULES, "pack", str(lst), "--root", image_root, "--resize", "32",
             "-q", "-o", str(tmp_path / where / "train"), "--endpoint-url", seaweed.endpoint_url],
            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, env=dict(os.environ))
        assert proc.returncode == 0, proc.stderr
        assert "botocore loaded: False" in proc.stderr, proc.stderr
        out[where] = (tmp_path / where / "train.rec").read_bytes()
    assert out["s3"] == out["local"]


def test_the_image_root_probe_says_what_is_wrong_in_one_line(seaweed: S3Server) -> None:
    seaweed.client().create_bucket(Bucket="probed32")
    storage = Storage.from_options(endpoint_url=seaweed.endpoint_url)
    check_access(storage, images=["s3://probed32/img/", "s3://probed32/img", None])  # empty is fine: the run says
    with pytest.raises(StorageError) as probed:
        check_access(storage, images=["s3://gone-32/img/"])
    assert str(probed.value) == (f"s3://gone-32/img/: cannot read this location: the bucket gone-32 does not exist "
                                 f"at {seaweed.endpoint_url} (is --endpoint-url right?)")


def test_the_image_root_probe_with_a_wrong_key_names_the_key(seaweed: S3Server, monkeypatch) -> None:
    seaweed.client().create_bucket(Bucket="probed33")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "nobody32")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    storage = Storage.from_options(endpoint_url=seaweed.endpoint_url)
    with pytest.raises(StorageError, match=r"^s3://probed33/img/: cannot read this location: the access key is not "
                                           r"known to this endpoint"):
        check_access(storage, images=["s3://probed33/img/"])


def test_the_image_root_probe_without_credentials_says_so(seaweed: S3Server, monkeypatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    storage = Storage.from_options(endpoint_url=seaweed.endpoint_url)
    with pytest.raises(StorageError, match=r"^s3://probed34/img/: cannot read this location: no AWS credentials "
                                           r"were found \(set AWS_ACCESS_KEY_ID"):
        check_access(storage, images=["s3://probed34/img/"])


class _Fetched(bytearray):
    """A fetched image whose lifetime the source can follow (bytes cannot be weakly referenced)."""


class _CountingSource(ImageSource):
    """Images without local files, like S3's: how many fetched bytes are alive at once."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.alive = self.most = 0

    def local_path(self, item: LstItem) -> str | None:
        return None

    def describe(self, item: LstItem) -> str:
        return f"memory:{item.path}"

    def fetch(self, item: LstItem) -> bytes:
        data = _Fetched(self.payload)
        self.alive += len(data)
        self.most = max(self.most, self.alive)
        weakref.finalize(data, self._gone, len(data))
        return data  # type: ignore[return-value]

    def _gone(self, size: int) -> None:
        self.alive -= size


def _noise_jpeg(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    pixels = bytes((i * 7919 + (i >> 7) * 104729) & 0xFF for i in range(width * height * 3))
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), pixels).save(out, "JPEG", quality=95)
    return out.getvalue()


def test_fetched_input_in_flight_is_bounded_by_the_window(tmp_path: Path) -> None:
    """Small records from large fetched images (as ``--resize`` makes them): fails on the code
    where each of the window's chunks could hold 4 MiB of fetched input."""
    payload = _noise_jpeg(320, 240)
    items = [LstItem(i, (float(i % 3),), f"{i}.jpg") for i in range(1500)]
    source = _CountingSource(payload)
    options = PackOptions(num_workers=2, storage=Storage(), quiet=True, executor="thread")
    summary = pack(items, source, str(tmp_path / "train"), TransformSpec(resize=16), options)
    assert summary.records == len(items)
    window = 2 * 4  # chunks in flight at -j 2 (Packer.window), and one being cut
    assert source.most <= (window + 1) * (CHUNK_INPUT + len(payload)), (source.most, len(payload))
    assert source.most <= 8 << 20, source.most
