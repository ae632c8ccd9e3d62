"""S3 inputs and outputs through the real packer: S3 → S3 packs give the bytes a local pack gives."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import imgfactory
import pytest
from faultproxy import FaultProxy
from packhelp import PackOptions, pack
from s3servers import S3Server, seaweed_fixture  # noqa: F401 - fixture

import imgprep
from imgprep.api import write_lst
from imgprep.errors import ImageError
from imgprep.formats.lst import LstItem
from imgprep.storage import Storage
from imgprep.storage.s3 import S3Tuning

pytestmark = pytest.mark.s3
CLASSES = ["cat", "dog", "emu"]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[LstItem]]:
    root = tmp_path_factory.mktemp("images")
    files = imgfactory.class_tree(root, CLASSES, 10, png_every=4)
    items = [
        LstItem(10 + i, (float(CLASSES.index(f.parent.name)),), str(f.relative_to(root))) for i, f in enumerate(files)
    ]
    return root, items


@pytest.fixture(scope="module")
def s3_images(seaweed: S3Server, images: tuple[Path, list[LstItem]], tmp_path_factory: pytest.TempPathFactory) -> str:
    """The same images and list uploaded to s3://packsrc/data/ (list at s3://packsrc/lists/all.lst)."""
    root, items = images
    client = seaweed.client()
    client.create_bucket(Bucket="packsrc")
    for item in items:
        client.put_object(Bucket="packsrc", Key=f"data/{item.path}", Body=(root / item.path).read_bytes())
    lst = tmp_path_factory.mktemp("lst") / "all.lst"
    write_lst(lst, items)
    client.put_object(Bucket="packsrc", Key="lists/all.lst", Body=lst.read_bytes())
    return "s3://packsrc/data"


def s3_opts(server: S3Server) -> dict[str, Any]:
    return {"endpoint_url": server.endpoint_url, "tuning": S3Tuning(retry_max_backoff=0.05)}


def download(server: S3Server, uri: str, dest: Path) -> Path:
    dest.write_bytes(Storage.from_options(**s3_opts(server)).read_bytes(uri))
    return dest


# --------------------------------------------------------------------------- the image source


def test_source_yields_in_list_order_with_errors_in_place(
    seaweed: S3Server, images: tuple[Path, list[LstItem]], s3_images: str
) -> None:
    root, items = images
    missing = LstItem(999, (0.0,), "cat/missing.jpg")
    order = [*items[:5], missing, *items[5:]]
    source = Storage.from_options(prefetch=4, fetch_workers=3, **s3_opts(seaweed)).image_source(s3_images)
    try:
        got = list(source.iter_fetch(order))
        assert source.local_path(items[0]) is None
        assert source.describe(missing) == "s3://packsrc/data/cat/missing.jpg"
        with pytest.raises(ImageError, match=r"^s3://packsrc/data/cat/missing\.jpg: no such image"):
            source.fetch(missing)
    finally:
        source.close()
    assert isinstance(got[5], ImageError) and "missing.jpg" in str(got[5])
    expected = [(root / i.path).read_bytes() for i in order if i is not missing]
    assert [g for g in got if not isinstance(g, ImageError)] == expected


@pytest.mark.parametrize("secret", ["right", "wrong"])
def test_source_takes_credentials_from_a_profile_as_boto3_does(
    seaweed: S3Server, images: tuple[Path, list[LstItem]], s3_images: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, secret: str,
) -> None:
    """No keys in the environment: the shared credentials file and AWS_PROFILE, through botocore's chain.

    Wrong keys are a storage failure of the whole run (one line naming the object), not a skipped image.
    """
    from s3servers import ACCESS_KEY, SECRET_KEY

    from imgprep.errors import StorageError

    root, items = images
    credentials = tmp_path / "credentials"
    key = SECRET_KEY if secret == "right" else "not-the-secret"
    credentials.write_text(f"[imgtest]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {key}\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_PROFILE", "imgtest")
    source = Storage.from_options(**s3_opts(seaweed), max_attempts=1).image_source(s3_images)
    try:
        if secret == "right":
            assert source.fetch(items[0]) == (root / items[0].path).read_bytes()
        else:
            with pytest.raises(StorageError, match=rf"^{s3_images}/{items[0].path}: image download failed") as info:
                source.fetch(items[0])
            assert "\n" not in str(info.value)
    finally:
        source.close()


def test_source_prefetch_is_bounded(seaweed: S3Server, images: tuple[Path, list[LstItem]], s3_images: str) -> None:
    _, items = images
    with FaultProxy(seaweed.endpoint_url) as proxy:
        source = Storage.from_options(prefetch=5, fetch_workers=2, endpoint_url=proxy.url).image_source(s3_images)
        stream = source.iter_fetch(items)
        next(stream)
        deadline = time.monotonic() + 10
        while proxy.seen["GetObject"] < 6 and time.monotonic() < deadline:
            time.sleep(0.01)  # let read-ahead run as far as it can
        time.sleep(0.2)
        assert proxy.seen["GetObject"] == 6  # the one consumed + a window of 5, never more
        stream.close()
        source.close()


def test_source_read_ahead_of_large_images_is_bounded_by_bytes(seaweed: S3Server) -> None:
    """Photos of 256 KiB with ``prefetch_bytes`` of 512 KiB: once the first image's size is known
    the window is the floor of 8 images, not ``prefetch`` (64) of them.  Fails on the code that
    held ``prefetch`` images whatever their size (all 24 were fetched)."""
    from imgprep.storage.s3_source import READ_AHEAD_FLOOR

    client = seaweed.client()
    client.create_bucket(Bucket="bigsrc")
    body = bytes(range(256)) * 1024
    items = [LstItem(i, (0.0,), f"big/{i:02d}.jpg") for i in range(24)]
    for item in items:
        client.put_object(Bucket="bigsrc", Key=item.path, Body=body)
    with FaultProxy(seaweed.endpoint_url) as proxy:
        source = Storage.from_options(prefetch=64, prefetch_bytes=512 << 10, fetch_workers=2,
                                      endpoint_url=proxy.url).image_source("s3://bigsrc")
        stream = source.iter_fetch(items)
        assert next(stream) == body
        deadline = time.monotonic() + 10
        while proxy.seen["GetObject"] < 1 + READ_AHEAD_FLOOR and time.monotonic() < deadline:
            time.sleep(0.01)  # let read-ahead run as far as it can
        time.sleep(0.2)
        assert proxy.seen["GetObject"] == 1 + READ_AHEAD_FLOOR  # the one consumed + the floor's window
        assert list(stream) == [body] * 23  # and every image still comes, in order
        stream.close()
        source.close()


def test_source_reads_small_images_further_ahead_than_the_old_window(
    seaweed: S3Server, images: tuple[Path, list[LstItem]], s3_images: str
) -> None:
    """The default read-ahead of small images goes past the 64 images it once stopped at (a slow
    GET among them no longer starves the packer), up to ``prefetch``."""
    _, items = images
    many = [LstItem(1000 + i, item.labels, item.path) for i, item in enumerate(items * 4)]  # 120 small images
    with FaultProxy(seaweed.endpoint_url) as proxy:
        source = Storage.from_options(endpoint_url=proxy.url).image_source(s3_images)
        assert source.prefetch > 64
        stream = source.iter_fetch(many)
        next(stream)
        deadline = time.monotonic() + 10
        while proxy.seen["GetObject"] < len(many) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        assert proxy.seen["GetObject"] == len(many)  # all 120 ahead: 64 + 1 before
        stream.close()
        source.close()


# --------------------------------------------------------------------------- the packer


@pytest.mark.parametrize("shard_records", [0, 7])
def test_pack_to_s3_is_byte_identical_to_local(
    seaweed: S3Server, images: tuple[Path, list[LstItem]], s3_images: str, tmp_path: Path, shard_records: int
) -> None:
    root, items = images
    spec = imgprep.TransformSpec(resize=24)
    local = pack(items, root, str(tmp_path / "train"), spec, PackOptions(num_workers=2, shard_records=shard_records))
    storage = Storage.from_options(**s3_opts(seaweed))
    remote = pack(items, s3_images, f"s3://packsrc/out{shard_records}/train", spec,
                  PackOptions(num_workers=2, shard_records=shard_records, storage=storage))
    assert remote.records == local.records == len(items)
    local_files = [o for o in local.outputs if o.endswith((".rec", ".idx"))]
    remote_files = [o for o in remote.outputs if o.endswith((".rec", ".idx"))]
    assert [Path(o).name for o in local_files] == [o.rsplit("/", 1)[1] for o in remote_files]
    for lo, ro in zip(local_files, remote_files, strict=True):
        assert Storage.from_options(**s3_opts(seaweed)).read_bytes(ro) == Path(lo).read_bytes(), ro
    assert seaweed.client().list_multipart_uploads(Bucket="packsrc").get("Uploads", []) == []


def test_cli_pack_s3_to_s3_read_by_mxnet(
    seaweed: S3Server, s3_images: str, imgprep_cli: Any, mxnet: Any, tmp_path: Path
) -> None:
    """`imgprep pack` with lists, images and output all on S3; MXNet reads the downloaded result."""
    imgprep_cli("pack", "s3://packsrc/lists/all.lst", "--root", s3_images, "-o", "s3://packsrc/cli/train",
                "--resize", "32", "--endpoint-url", seaweed.endpoint_url)
    rec = download(seaweed, "s3://packsrc/cli/train.rec", tmp_path / "train.rec")
    idx = download(seaweed, "s3://packsrc/cli/train.idx", tmp_path / "train.idx")
    got = mxnet.run("indexed", rec, idx)
    assert len(got) == 30

