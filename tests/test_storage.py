"""The Store interface, the same checks on a local folder and on S3 (SeaweedFS on loopback)."""

from __future__ import annotations

from pathlib import Path

import pytest
from s3servers import S3Server, seaweed_fixture  # noqa: F401 - fixture

from imgprep.errors import StorageError, UsageError
from imgprep.layout.concat import concatenate
from imgprep.storage import Storage
from imgprep.storage.s3 import S3Tuning


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def base(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Storage, str]:
    if request.param == "local":
        return Storage(), str(tmp_path / "store")
    seaweed: S3Server = request.getfixturevalue("seaweed")
    bucket = f"store-{request.node.name.split('[')[0].replace('_', '-')[-40:]}".lower()
    seaweed.client().create_bucket(Bucket=bucket)
    return Storage.from_options(endpoint_url=seaweed.endpoint_url, tuning=S3Tuning(retry_max_backoff=0.05)), f"s3://{bucket}/store"


def test_write_read_exists_size(base: tuple[Storage, str]) -> None:
    storage, root = base
    uri = f"{root}/a/b.txt"
    assert not storage.exists(uri)
    storage.write_text(uri, "héllo\n")
    assert storage.exists(uri)
    assert storage.read_text(uri) == "héllo\n"
    assert storage.size(uri) == len("héllo\n".encode())
    with pytest.raises(StorageError, match=rf"^{root}/a/missing: "):
        storage.size(f"{root}/a/missing")
    with pytest.raises(StorageError, match=rf"^{root}/a/missing: "):
        storage.read_bytes(f"{root}/a/missing")


def test_list_is_recursive_sorted_and_prefix_exact(base: tuple[Storage, str]) -> None:
    storage, root = base
    for name, data in [("p-1.rec", b"1"), ("p-0.rec", b"00"), ("px", b"x"), ("sub/p-2.rec", b"222"), ("q", b"")]:
        storage.write_bytes(f"{root}/{name}", data)
    assert list(storage.list(f"{root}/p-")) == [(f"{root}/p-0.rec", 2), (f"{root}/p-1.rec", 1)]
    assert [e.uri for e in storage.list(f"{root}/")] == [
        f"{root}/{n}" for n in ("p-0.rec", "p-1.rec", "px", "q", "sub/p-2.rec")
    ]
    assert list(storage.list(f"{root}/nothing-here")) == []


def test_ranged_reads(base: tuple[Storage, str]) -> None:
    storage, root = base
    uri = f"{root}/r.bin"
    data = bytes(range(256)) * 40
    storage.write_bytes(uri, data)
    with storage.open_read(uri) as fh:
        assert fh.read() == data
    with storage.open_read(uri, 100, 300) as fh:
        assert fh.read(50) + fh.read() == data[100:300]
    with storage.open_read(uri, 500) as fh:
        assert fh.read() == data[500:]
    with storage.open_read(uri, 7, 7) as fh:
        assert fh.read() == b""


def test_replace_delete_and_delete_tree(base: tuple[Storage, str]) -> None:
    storage, root = base
    storage.write_bytes(f"{root}/tmp/x.part", b"new")
    storage.write_bytes(f"{root}/x", b"old")
    storage.replace(f"{root}/tmp/x.part", f"{root}/x")
    assert storage.read_bytes(f"{root}/x") == b"new"
    assert not storage.exists(f"{root}/tmp/x.part")
    storage.delete(f"{root}/x")
    storage.delete(f"{root}/x")  # a missing file is not an error
    assert not storage.exists(f"{root}/x")
    for name in ("w/1", "w/d/2", "wx"):
        storage.write_bytes(f"{root}/{name}", b"z")
    storage.delete_tree(f"{root}/w")
    assert [e.uri for e in storage.list(f"{root}/")] == [f"{root}/wx"]


def test_concatenate_checks_sizes(base: tuple[Storage, str]) -> None:
    storage, root = base
    pieces = []
    for n in range(3):
        storage.write_bytes(f"{root}/piece{n}", bytes([n]) * (n + 1) * 10)
        pieces.append((f"{root}/piece{n}", (n + 1) * 10))
    with storage.open_output(f"{root}/all") as out:
        concatenate(storage, pieces, out)
    assert storage.read_bytes(f"{root}/all") == b"\0" * 10 + b"\1" * 20 + b"\2" * 30
    with pytest.raises(StorageError, match=rf"^{root}/piece0: "), storage.open_output(f"{root}/bad") as out:
        concatenate(storage, [(f"{root}/piece0", 11)], out)
    assert not storage.exists(f"{root}/bad")


def test_options_are_checked() -> None:
    with pytest.raises(UsageError, match=r"unknown S3 option\(s\): endpoint "):
        Storage.from_options(endpoint="http://x")
    with pytest.raises(UsageError, match="read_timeout must be positive"):
        Storage.from_options(read_timeout=0)
    with pytest.raises(UsageError, match="unsupported location 'gs://b/k'"):
        Storage().open_output("gs://b/k")
    with pytest.raises(UsageError, match="different storage"):
        Storage().replace("/tmp/a", "s3://b/a")


def test_local_output_writes_a_large_buffer_straight_to_the_file(tmp_path: Path) -> None:
    """A chunk of records (≥ 64 KiB) goes from the caller's memory to the file, not through the
    file object's 1 MiB buffer (a copy of every byte of a .rec on the packer's serial thread):
    it is in the temporary file before any flush, after the small writes before it, in order.
    Fails on the code that buffered it."""
    out = Storage().open_output(str(tmp_path / "x.rec"))
    head, chunk, tail = b"h" * 100, bytes(range(256)) * 400, memoryview(b"t" * 10)
    out.write(head)
    out.write(memoryview(chunk))
    (part,) = tmp_path.glob(".x.rec.*.part")
    assert part.read_bytes() == head + chunk
    out.write(tail)
    out.commit()
    assert (tmp_path / "x.rec").read_bytes() == head + chunk + b"t" * 10
    assert out.bytes_written == len(head) + len(chunk) + 10
