"""Fault injection between boto3 and real servers: every run succeeds with identical bytes or fails cleanly.

"Cleanly" means: a one-line StorageError naming the s3:// URI, no incomplete multipart upload
(ListMultipartUploads is empty), no object under the final key and no upload marker left.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from faultproxy import FaultProxy
from s3servers import S3Server, bucket_fixture, moto_server_fixture, seaweed_fixture  # noqa: F401 - fixtures

from imgprep.errors import StorageError
from imgprep.storage import Storage
from imgprep.storage.s3 import S3Tuning
from imgprep.storage.s3_multipart import DEFAULT_PART_SIZE, MIN_PART_SIZE

pytestmark = pytest.mark.s3
MOTO_PART = 64 * 1024


@pytest.fixture(params=["seaweed", "moto_server"])
def server(request: pytest.FixtureRequest) -> S3Server:
    return request.getfixturevalue(request.param)


@pytest.fixture
def proxy(server: S3Server) -> Iterator[FaultProxy]:
    with FaultProxy(server.endpoint_url) as p:
        yield p


def options(server: S3Server, proxy: FaultProxy, **extra: Any) -> dict[str, Any]:
    opts: dict[str, Any] = {"endpoint_url": proxy.url, "tuning": S3Tuning(retry_max_backoff=0.02), "max_attempts": 4,
                            "read_timeout": 20}
    if server.part_min < MIN_PART_SIZE:
        opts.update(tuning=S3Tuning(min_part_size=server.part_min, retry_max_backoff=0.02), part_size=MOTO_PART)
    return {**opts, **extra}


def object_size(server: S3Server, parts: float) -> int:
    return int(parts * (MOTO_PART if server.part_min < MIN_PART_SIZE else DEFAULT_PART_SIZE))


def upload(uri: str, data: bytes, **opts: Any) -> None:
    with Storage.from_options(**opts).open_output(uri) as out:
        for i in range(0, len(data), 1 << 20):
            out.write(data[i : i + (1 << 20)])


def assert_clean(server: S3Server, bucket: str, expected_keys: list[str]) -> None:
    client = server.client()
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    found = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))
    assert found == expected_keys


RECOVERABLE = [
    ("UploadPart", ["drop"]),
    ("UploadPart", ["slowdown", "slowdown"]),
    ("UploadPart", ["error500"] * 3),
    ("CreateMultipartUpload", ["slowdown"]),
    ("CompleteMultipartUpload", ["error500"]),
    ("CompleteMultipartUpload", ["error200"]),
    ("CompleteMultipartUpload", ["lose_reply"]),
    ("CompleteMultipartUpload", ["lose_reply", "nosuchupload"]),  # applied, reply lost, retry: NoSuchUpload
]


@pytest.mark.parametrize(("op", "faults"), RECOVERABLE, ids=[f"{o}-{'+'.join(f)}" for o, f in RECOVERABLE])
def test_recovers_with_identical_bytes(
    server: S3Server, proxy: FaultProxy, bucket: str, op: str, faults: list[str]
) -> None:
    data = random.Random(1).randbytes(object_size(server, 2.5))
    uri = f"s3://{bucket}/out/train.rec"
    proxy.inject(op, *faults)
    upload(uri, data, **options(server, proxy))
    assert sum(proxy.injected.values()) == len(faults), proxy.injected  # every fault was actually hit
    assert Storage.from_options(endpoint_url=server.endpoint_url).read_bytes(uri) == data
    assert_clean(server, bucket, ["out/train.rec"])


def test_small_object_survives_a_dropped_put(server: S3Server, proxy: FaultProxy, bucket: str) -> None:
    proxy.inject("PutObject", "drop", "error500")
    upload(f"s3://{bucket}/small.idx", b"0\t0\n" * 1000, **options(server, proxy))
    store = Storage.from_options(endpoint_url=server.endpoint_url)
    assert store.read_bytes(f"s3://{bucket}/small.idx") == b"0\t0\n" * 1000
    assert_clean(server, bucket, ["small.idx"])


def test_corrupted_part_is_caught_by_the_checksum(seaweed: S3Server) -> None:
    """SeaweedFS verifies the CRC32 botocore sends: a flipped byte is rejected and the part re-sent."""
    seaweed.client().create_bucket(Bucket="corrupt")
    data = random.Random(2).randbytes(2 * MIN_PART_SIZE + 99)
    with FaultProxy(seaweed.endpoint_url) as proxy:
        proxy.inject("UploadPart", "corrupt")
        upload("s3://corrupt/x.rec", data, **options(seaweed, proxy, part_size=MIN_PART_SIZE))
        assert proxy.injected["UploadPart:corrupt"] == 1
        assert proxy.seen["UploadPart"] == 4  # 3 parts + the rejected one again
    assert Storage.from_options(endpoint_url=seaweed.endpoint_url).read_bytes("s3://corrupt/x.rec") == data
    assert_clean(seaweed, "corrupt", ["x.rec"])


def test_corrupted_put_without_checksum_would_pass(seaweed: S3Server) -> None:
    """Control for the test above: with checksums off the corruption is stored (the size check still passes)."""
    seaweed.client().create_bucket(Bucket="nocheck")
    data = random.Random(3).randbytes(1000)
    with FaultProxy(seaweed.endpoint_url) as proxy:
        proxy.inject("PutObject", "corrupt")
        upload("s3://nocheck/x", data, **options(seaweed, proxy, checksum="NONE"))
    assert Storage.from_options(endpoint_url=seaweed.endpoint_url).read_bytes("s3://nocheck/x") != data


FATAL = [
    ("UploadPart", ["error500"] * 100, "uploading part"),
    ("UploadPart", ["drop"] * 100, "uploading part"),
    ("CompleteMultipartUpload", ["nosuchupload"] * 100, "NoSuchUpload"),
    ("CompleteMultipartUpload", ["error500"] * 100, "CompleteMultipartUpload"),
]


@pytest.mark.parametrize(("op", "faults", "message"), FATAL, ids=[f"{o}-{f[0]}" for o, f, _ in FATAL])
def test_unrecoverable_errors_fail_cleanly(
    server: S3Server, proxy: FaultProxy, bucket: str, op: str, faults: list[str], message: str
) -> None:
    uri = f"s3://{bucket}/out/train.rec"
    proxy.inject(op, *faults)
    proxy.inject("AbortMultipartUpload", "error500")  # even the first abort attempt fails
    with pytest.raises(StorageError, match=rf"^{uri}: .*{message}") as info:
        upload(uri, random.Random(4).randbytes(object_size(server, 2.5)), **options(server, proxy, part_retries=1))
    assert "\n" not in str(info.value)
    assert_clean(server, bucket, [])


def test_failed_run_keeps_the_previous_object(server: S3Server, proxy: FaultProxy, bucket: str) -> None:
    uri = f"s3://{bucket}/train.rec"
    upload(uri, b"previous", endpoint_url=server.endpoint_url)
    proxy.inject("UploadPart", *["error500"] * 100)
    with pytest.raises(StorageError):
        upload(uri, b"x" * object_size(server, 2), **options(server, proxy, part_retries=0))
    assert Storage.from_options(endpoint_url=server.endpoint_url).read_bytes(uri) == b"previous"
    assert_clean(server, bucket, ["train.rec"])


def test_background_part_failure_surfaces_at_commit(server: S3Server, proxy: FaultProxy, bucket: str) -> None:
    """finish() does not wait; a part that then fails makes commit() fail and leaves nothing behind."""
    proxy.inject("UploadPart", *["error500"] * 100)
    uri = f"s3://{bucket}/shard-00000.rec"
    out = Storage.from_options(**options(server, proxy, part_retries=0, max_attempts=2)).open_output(uri)
    out.write(b"x" * 1000)
    out.finish()
    with pytest.raises(StorageError, match=rf"^{uri}: .*uploading part 1"):
        out.commit()
    assert_clean(server, bucket, [])


def test_many_finished_outputs_keep_few_parts_in_flight(server: S3Server, bucket: str) -> None:
    outs = []
    small = {"tuning": S3Tuning(min_part_size=1024), "part_size": MOTO_PART} if server.part_min < MIN_PART_SIZE else {}
    store = Storage.from_options(endpoint_url=server.endpoint_url, max_concurrency=2, **small).s3
    for n in range(6):
        out = store.open_output(f"s3://{bucket}/s-{n:05d}.rec")
        out.write(bytes([n]) * 5000)
        out.finish()
        with store.background_lock:
            in_flight = [f for o in store.background for f in o._parts if not f.done()]
        assert len(in_flight) <= 2
        outs.append(out)
    for n, out in enumerate(outs):
        out.commit()
        assert Storage.from_options(endpoint_url=server.endpoint_url).read_bytes(out.uri) == bytes([n]) * 5000
    assert_clean(server, bucket, [f"s-{n:05d}.rec" for n in range(6)])
