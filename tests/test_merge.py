"""merge_shards: shards (some under the 5 MiB part minimum, some over) join into exactly the file written whole."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from faultproxy import FaultProxy
from s3servers import S3Server, moto_server_fixture, seaweed_fixture  # noqa: F401 - fixtures

from imgprep.cli.s3cmds import merge
from imgprep.errors import FormatError, UsageError
from imgprep.formats.recordio import RecordReader, RecordWriter
from imgprep.layout.merge import merge_shards
from imgprep.layout.shards import find_shards
from imgprep.storage import Storage
from imgprep.storage.s3 import S3Tuning

MiB = 1024 * 1024
# Shard sizes in MiB: small ones coalesce, large ones are copied server-side (in part-sized ranges).
SHARD_MIB = [6, 1, 0.5, 12, 2, 5.5, 0.2]


def make_records(sizes_mib: list[float], seed: int = 0) -> list[list[tuple[int, bytes]]]:
    rng = random.Random(seed)
    shards, key = [], 100
    for size in sizes_mib:
        records, total = [], 0
        while total < size * MiB:
            payload = rng.randbytes(rng.randrange(1, 300_000))
            records.append((key, payload))
            key += 3
            total += len(payload) + 8
        shards.append(records)
    return shards


def write_dataset(directory: Path, shards: list[list[tuple[int, bytes]]]) -> Path:
    """Shards as ``data-0000N.rec/.idx`` and the same records written whole as ``whole.rec/.idx``."""
    directory.mkdir(parents=True, exist_ok=True)
    with RecordWriter(directory / "whole.rec", directory / "whole.idx") as whole:
        for number, records in enumerate(shards):
            with RecordWriter(directory / f"data-{number:05d}.rec", directory / f"data-{number:05d}.idx") as w:
                for key, payload in records:
                    w.write(payload, key)
                    whole.write(payload, key)
    return directory


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("shards"), make_records(SHARD_MIB))


def upload_dataset(server: S3Server, bucket: str, dataset: Path) -> None:
    client = server.client()
    client.create_bucket(Bucket=bucket)
    for path in sorted(dataset.glob("data-*")):
        client.put_object(Bucket=bucket, Key=f"shards/{path.name}", Body=path.read_bytes())


def assert_same(got_rec: bytes, got_idx: bytes, dataset: Path) -> None:
    assert got_rec == (dataset / "whole.rec").read_bytes()
    assert got_idx == (dataset / "whole.idx").read_bytes()


def test_local_merge(dataset: Path, tmp_path: Path) -> None:
    summary = merge_shards(str(dataset / "data"), str(tmp_path / "all"), Storage())
    assert summary.shards == len(SHARD_MIB)
    assert summary.copied_bytes == 0
    assert_same((tmp_path / "all.rec").read_bytes(), (tmp_path / "all.idx").read_bytes(), dataset)
    with RecordReader(tmp_path / "all.rec", tmp_path / "all.idx") as reader:
        assert len(reader.keys) == summary.records


@pytest.mark.s3
def test_s3_merge_is_server_side(seaweed: S3Server, dataset: Path) -> None:
    upload_dataset(seaweed, "merge", dataset)
    with FaultProxy(seaweed.endpoint_url) as proxy:
        summary = merge_shards("s3://merge/shards/data", "s3://merge/out/all.rec",
                               Storage.from_options(endpoint_url=proxy.url))
    assert summary.outputs == ["s3://merge/out/all.rec", "s3://merge/out/all.idx"]
    store = Storage.from_options(endpoint_url=seaweed.endpoint_url)
    assert_same(store.read_bytes("s3://merge/out/all.rec"), store.read_bytes("s3://merge/out/all.idx"), dataset)
    assert proxy.seen["UploadPartCopy"] == 2
    # The 6 and 12 MiB shards were copied by the server (less a top-up of the buffered small shards);
    # only small shards and that top-up came through here.
    assert summary.copied_bytes >= 0.5 * summary.bytes
    assert seaweed.client().list_multipart_uploads(Bucket="merge").get("Uploads", []) == []


@pytest.mark.s3
def test_s3_merge_with_tiny_parts_on_moto(moto_server: S3Server, tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "d", make_records([0.1, 0.01, 0.3, 0.002, 0.2], seed=5))
    upload_dataset(moto_server, "mergemoto", data)
    opts = {"endpoint_url": moto_server.endpoint_url, "tuning": S3Tuning(min_part_size=64 * 1024),
            "part_size": 64 * 1024}
    store = Storage.from_options(**opts)
    summary = merge_shards("s3://mergemoto/shards/data", "s3://mergemoto/all", store)
    assert summary.copied_bytes > 0
    assert_same(store.read_bytes("s3://mergemoto/all.rec"), store.read_bytes("s3://mergemoto/all.idx"), data)


@pytest.mark.s3
@pytest.mark.parametrize("direction", ["local-to-s3", "s3-to-local"])
def test_mixed_locations(seaweed: S3Server, dataset: Path, tmp_path: Path, direction: str) -> None:
    bucket = f"mixed-{direction}"
    opts: dict[str, Any] = {"endpoint_url": seaweed.endpoint_url}
    if direction == "local-to-s3":
        seaweed.client().create_bucket(Bucket=bucket)
        merge_shards(str(dataset / "data"), f"s3://{bucket}/all", Storage.from_options(**opts))
        store = Storage.from_options(**opts)
        got = store.read_bytes(f"s3://{bucket}/all.rec"), store.read_bytes(f"s3://{bucket}/all.idx")
    else:
        upload_dataset(seaweed, bucket, dataset)
        merge_shards(f"s3://{bucket}/shards/data", str(tmp_path / "all"), Storage.from_options(**opts))
        got = (tmp_path / "all.rec").read_bytes(), (tmp_path / "all.idx").read_bytes()
    assert_same(*got, dataset)


def test_cli_merge(dataset: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(merge, [str(dataset / "data"), "-o", str(tmp_path / "cli")], catch_exceptions=False)
    assert result.exit_code == 0
    assert f"merged {len(SHARD_MIB)} shards" in result.output
    assert_same((tmp_path / "cli.rec").read_bytes(), (tmp_path / "cli.idx").read_bytes(), dataset)


def test_missing_and_inconsistent_shards(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "d", make_records([0.01, 0.01, 0.01], seed=9))
    with pytest.raises(UsageError, match="no shards"):
        find_shards(str(tmp_path / "nothing"), Storage())
    (data / "data-00001.idx").unlink()
    with pytest.raises(UsageError, match=r"data-00001\.idx is missing"):
        merge_shards(str(data / "data"), str(tmp_path / "out"), Storage())
    (data / "data-00001.rec").unlink()
    with pytest.raises(UsageError, match="gaps"):
        merge_shards(str(data / "data"), str(tmp_path / "out"), Storage())

    dup = write_dataset(tmp_path / "dup", make_records([0.01, 0.01], seed=9))
    (dup / "data-00001.idx").write_text("100\t0\n")  # key 100 is shard 0's first record
    with pytest.raises(FormatError, match="key 100 also appears in an earlier shard"):
        merge_shards(str(dup / "data"), str(tmp_path / "out"), Storage())
    (dup / "data-00001.idx").write_text("7\t999999996\n")
    with pytest.raises(FormatError, match="past the end"):
        merge_shards(str(dup / "data"), str(tmp_path / "out"), Storage())
    (dup / "data-00001.idx").write_text("7\t2\n")
    with pytest.raises(FormatError, match="4-byte"):
        merge_shards(str(dup / "data"), str(tmp_path / "out"), Storage())
    assert not (tmp_path / "out.rec").exists()
