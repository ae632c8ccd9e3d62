"""S3Output against real servers on loopback: SeaweedFS (5 MiB parts, verifies checksums) and moto (tiny parts)."""

from __future__ import annotations

import os
import random
from typing import Any

import pytest
from s3servers import S3Server, bucket_fixture, moto_server_fixture, seaweed_fixture  # noqa: F401 - fixtures

from imgprep.errors import StorageError, UsageError
from imgprep.formats.recordio import RecordWriter
from imgprep.storage import Storage, s3
from imgprep.storage.local import LocalOutput
from imgprep.storage.s3 import S3Tuning
from imgprep.storage.s3_multipart import (
    DEFAULT_PART_SIZE,
    MAX_PARTS,
    MIN_PART_SIZE,
    S3Output,
    marker_key,
    part_size_for,
    plan_part_size,
)

pytestmark = pytest.mark.s3
MiB = 1024 * 1024
MOTO_PART = 64 * 1024  # moto accepts 1 KiB parts; 64 KiB keeps part counts (and test time) small


@pytest.fixture(params=["seaweed", "moto_server"])
def server(request: pytest.FixtureRequest) -> S3Server:
    return request.getfixturevalue(request.param)


def options(server: S3Server, **extra: Any) -> dict[str, Any]:
    """Storage options for ``server``: short retry delays; tiny parts on moto."""
    opts: dict[str, Any] = {"endpoint_url": server.endpoint_url, "tuning": S3Tuning(retry_max_backoff=0.05)}
    if server.part_min < MIN_PART_SIZE:
        opts.update(tuning=S3Tuning(min_part_size=server.part_min, retry_max_backoff=0.05), part_size=MOTO_PART)
    return {**opts, **extra}


def part_bytes(server: S3Server) -> int:
    return MOTO_PART if server.part_min < MIN_PART_SIZE else DEFAULT_PART_SIZE


def payload(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def uploads(server: S3Server, bucket: str) -> list[dict[str, Any]]:
    return server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def keys(server: S3Server, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in server.client().list_objects_v2(Bucket=bucket).get("Contents", []))


def write_chunked(out: Any, data: bytes, chunk: int = 70_001) -> None:
    for i in range(0, len(data), chunk):
        out.write(data[i : i + chunk])


# --------------------------------------------------------------------------- pure planning


def test_part_size_planning() -> None:
    assert plan_part_size(1, MIN_PART_SIZE, None) == MIN_PART_SIZE
    assert plan_part_size(DEFAULT_PART_SIZE, MIN_PART_SIZE, 10 * DEFAULT_PART_SIZE) == DEFAULT_PART_SIZE
    big = 200 * 1024**3  # 200 GiB needs parts of at least 20.5 MiB
    assert plan_part_size(DEFAULT_PART_SIZE, MIN_PART_SIZE, big) * MAX_PARTS >= big
    # Without a hint, sizes double every 1,000 parts: 10,000 parts hold more than S3's 5 TiB maximum.
    total = sum(part_size_for(MIN_PART_SIZE, n) for n in range(1, MAX_PARTS + 1))
    assert total >= 5 * 1024**4 * 0.97
    assert part_size_for(DEFAULT_PART_SIZE, 1000) == DEFAULT_PART_SIZE
    assert part_size_for(DEFAULT_PART_SIZE, 1001) == 2 * DEFAULT_PART_SIZE


def test_marker_key_sits_next_to_the_object() -> None:
    assert marker_key("a/b/train.rec", "U1").startswith("a/b/.imgprep-uploads/train.rec.")
    assert marker_key("train.rec", "U1").startswith(".imgprep-uploads/train.rec.")


def test_bad_uris_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="no bucket"):
        s3.parse_s3_uri("s3:///key")
    with pytest.raises(UsageError, match="object key"):
        S3Output("s3://bucket/folder/", Storage().s3)
    with pytest.raises(UsageError, match="checksum"):
        Storage.from_options(checksum="crc64")


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("size", [0, 100, "one part", "several parts"])
def test_round_trip(server: S3Server, bucket: str, size: int | str) -> None:
    n = {"one part": part_bytes(server), "several parts": 3 * part_bytes(server) + 12_345}.get(size, size)
    data = payload(int(n))
    uri = f"s3://{bucket}/dir/obj.rec"
    with Storage.from_options(**options(server)).open_output(uri) as out:
        write_chunked(out, data)
    assert out.bytes_written == len(data)
    assert Storage.from_options(**options(server)).read_bytes(uri) == data
    assert uploads(server, bucket) == []
    assert keys(server, bucket) == ["dir/obj.rec"]  # the upload marker is gone


def test_recordwriter_into_s3_matches_local(server: S3Server, bucket: str, tmp_path: Any) -> None:
    """The same records through RecordWriter give identical .rec/.idx bytes locally and on S3."""
    rng = random.Random(7)
    records = [rng.randbytes(rng.randrange(1, 40_000)) for _ in range(300)]
    opts = options(server)
    store = Storage.from_options(**opts)
    with store.open_output(f"s3://{bucket}/p.rec") as rec, store.open_output(f"s3://{bucket}/p.idx") as idx, \
            LocalOutput(tmp_path / "p.rec") as lrec, LocalOutput(tmp_path / "p.idx") as lidx:
        for w in (RecordWriter(rec, idx), RecordWriter(lrec, lidx)):
            for i, r in enumerate(records):
                w.write(r, key=1000 + i)
    for name in ("p.rec", "p.idx"):
        assert Storage.from_options(**opts).read_bytes(f"s3://{bucket}/{name}") == (tmp_path / name).read_bytes()


@pytest.mark.parametrize("checksum", ["MD5", "SHA256", "NONE"])
def test_other_checksums(seaweed: S3Server, checksum: str) -> None:
    bucket = f"cks-{checksum.lower()}"
    seaweed.client().create_bucket(Bucket=bucket)
    data = payload(MIN_PART_SIZE + 1000, seed=3)
    uri = f"s3://{bucket}/x"
    with Storage.from_options(checksum=checksum, **options(seaweed)).open_output(uri) as out:
        write_chunked(out, data, 1 << 20)
    assert Storage.from_options(**options(seaweed)).read_bytes(uri) == data


def test_finish_then_commit(server: S3Server, bucket: str) -> None:
    """finish() uploads a small tail as a part and frees it; nothing is visible until commit()."""
    uri = f"s3://{bucket}/f.rec"
    data = payload(1000)
    out = Storage.from_options(**options(server)).open_output(uri)
    out.write(data)
    out.finish()
    with pytest.raises(StorageError, match="finished"):
        out.write(b"more")
    assert keys(server, bucket) != ["f.rec"]
    assert len(uploads(server, bucket)) == 1
    out.commit()
    assert Storage.from_options(**options(server)).read_bytes(uri) == data
    assert uploads(server, bucket) == []


# --------------------------------------------------------------------------- abort semantics


def test_abort_leaves_nothing(server: S3Server, bucket: str) -> None:
    uri = f"s3://{bucket}/a.rec"
    out = Storage.from_options(**options(server)).open_output(uri)
    write_chunked(out, payload(3 * part_bytes(server)))
    assert len(uploads(server, bucket)) == 1
    out.abort()
    out.abort()  # idempotent
    assert uploads(server, bucket) == []
    assert keys(server, bucket) == []
    with pytest.raises(StorageError, match="aborted"):
        out.write(b"x")
    with pytest.raises(StorageError, match="aborted"):
        out.commit()


def test_exception_in_with_block_aborts_and_keeps_an_older_object(server: S3Server, bucket: str) -> None:
    uri = f"s3://{bucket}/keep.rec"
    Storage.from_options(**options(server)).write_bytes(uri, b"old")
    with pytest.raises(RuntimeError), Storage.from_options(**options(server)).open_output(uri) as out:
        write_chunked(out, payload(2 * part_bytes(server)))
        raise RuntimeError("packer failed")
    assert uploads(server, bucket) == []
    assert Storage.from_options(**options(server)).read_bytes(uri) == b"old"
    assert keys(server, bucket) == ["keep.rec"]


def test_commit_failure_removes_the_partial_object_we_created(moto_server: S3Server) -> None:
    """A missing bucket fails cleanly, with the s3:// URI in the one-line message."""
    uri = "s3://no-such-bucket-here/x.rec"
    with pytest.raises(StorageError, match=r"^s3://no-such-bucket-here/x\.rec: .*NoSuchBucket"):
        Storage.from_options(**options(moto_server)).write_bytes(uri, b"data")


# --------------------------------------------------------------------------- reads and endpoints


def test_read_helpers_and_endpoint_from_environment(
    server: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"s3://{bucket}/lists/train.lst"
    Storage.from_options(**options(server)).write_bytes(uri, b"0\t1.000000\ta.jpg\n")
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint_url)
    assert Storage.from_options().read_text(uri) == "0\t1.000000\ta.jpg\n"
    assert list(Storage().list(f"s3://{bucket}/lists/")) == [(f"s3://{bucket}/lists/train.lst", 17)]
    with pytest.raises(StorageError, match=rf"^s3://{bucket}/lists/missing\.lst: no such object"):
        Storage.from_options().read_bytes(f"s3://{bucket}/lists/missing.lst")


def test_boto3_is_not_imported_for_local_outputs(tmp_path: Any) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from imgprep.storage import Storage; "
        f"Storage.from_options().write_bytes({str(tmp_path / 'x')!r}, b'1'); print('boto3' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_output_uses_less_memory_than_the_object(seaweed: S3Server) -> None:
    """In-flight data is bounded: (max_concurrency + 1) parts, whatever the object's size."""
    import subprocess
    import sys

    seaweed.client().create_bucket(Bucket="memory")
    code = f"""
import resource, sys
from imgprep.storage import Storage
chunk = bytes(range(256)) * 4096  # 1 MiB
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
store = Storage.from_options(endpoint_url={seaweed.endpoint_url!r}, part_size=5 << 20, max_concurrency=2)
with store.open_output("s3://memory/big") as out:
    for _ in range(100):
        out.write(chunk)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    grown_kib = int(out.stdout.split()[-1])
    assert grown_kib < 80 * 1024  # 100 MiB written; ~3 parts of 5 MiB (+ botocore copies) held at most
    head = seaweed.client().head_object(Bucket="memory", Key="big")
    assert head["ContentLength"] == 100 * MiB


# --------------------------------------------------------------------------- one upload budget per store


def test_outputs_share_one_upload_budget(server: S3Server, bucket: str) -> None:
    """Every part buffer of every open output comes out of the store's one budget."""
    part = part_bytes(server)
    store = Storage.from_options(**options(server, upload_memory=2 * part, max_concurrency=4)).s3
    data = [payload(5 * part + 100, seed=n) for n in range(3)]
    with store.open_output(f"s3://{bucket}/one.rec") as out:
        write_chunked(out, data[0], part // 3)
    assert part <= store.budget.peak <= 2 * part  # 4 parts in flight + 1 filling without it

    store.budget.peak = 0
    outs = [store.open_output(f"s3://{bucket}/many-{n}.rec") for n in range(3)]
    step = part // 3
    for offset in range(0, len(data[0]), step):  # round robin, as interleaved writers would
        for out, d in zip(outs, data, strict=True):
            out.write(d[offset : offset + step])
    for out in outs:
        out.finish()
    for out in outs:
        out.commit()
    assert store.budget.peak <= 2 * part + 2 * part  # the budget, plus one part per further output
    assert store.budget.used == 0
    for n, d in enumerate(data):
        assert store.read_bytes(f"s3://{bucket}/many-{n}.rec") == d

    aborted = store.open_output(f"s3://{bucket}/aborted.rec")
    write_chunked(aborted, payload(3 * part))
    aborted.abort()
    assert store.budget.used == 0

    store.budget.peak = 0
    store.write_bytes(f"s3://{bucket}/small.idx", b"0\t0\n" * 25)
    assert store.budget.peak == 100  # a buffer no larger than the object it is told about
