"""imgprep.data on S3 (the loopback SeaweedFS): ranged GETs of single records, never a whole shard."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from data_fixture import digest, payloads, write_shards
from s3servers import S3Server, seaweed_fixture  # noqa: F401 - fixture

from imgprep.data import Dataset, Loader, Transform
from imgprep.storage.stores import Storage

pytestmark = pytest.mark.s3


class CountingStorage(Storage):
    """Storage that remembers every ranged read."""

    def __init__(self, **options: object) -> None:
        base = Storage.from_options(**options)
        super().__init__(base._s3_config, local=base.local)
        self.reads: list[tuple[str, int, int | None]] = []

    def open_read(self, uri: str, start: int = 0, end: int | None = None, *, version: str | None = None):
        self.reads.append((uri, start, end))
        return super().open_read(uri, start, end, version=version)


@pytest.fixture(scope="module")
def remote(seaweed: S3Server, tmp_path_factory) -> tuple[str, Path]:
    local = tmp_path_factory.mktemp("s3data") / "train"
    write_shards(local, payloads(40), per_shard=16)
    client = seaweed.client()
    client.create_bucket(Bucket="reader")
    for path in sorted(local.parent.iterdir()):
        client.put_object(Bucket="reader", Key=f"data/{path.name}", Body=path.read_bytes())
    return "s3://reader/data/train", local


def test_s3_reads_records_by_range_and_matches_local(seaweed: S3Server, remote: tuple[str, Path]) -> None:
    uri, local = remote
    storage = CountingStorage(endpoint_url=seaweed.endpoint_url)
    ds = Dataset(uri, transform=Transform.train(24), seed=2, storage=storage)
    assert len(ds) == 40
    loader = Loader(ds, batch_size=8, threads=2, prefetch=1, coalesce=0)
    first = next(iter(loader))
    # By the first batch, only its own reads were under way (nothing competes with it): ranged GETs
    # of records (coalescing off but for touching records), nothing like a whole shard, and none
    # through the store's botocore open_read.
    assert loader.stats.records == 8 and loader.stats.requests <= loader.stats.records
    assert loader.stats.bytes < loader.stats.records * 64 * 1024
    assert not [r for r in storage.reads if r[0].endswith(".rec")]
    here = Loader(Dataset(str(local), transform=Transform.train(24), seed=2), batch_size=8, threads=1)
    there = Loader(ds, batch_size=8, threads=2)
    a, b = list(here), list(there)
    assert [x.ids.tolist() for x in a] == [x.ids.tolist() for x in b]
    assert [digest(x.images) for x in a] == [digest(x.images) for x in b]
    assert first.ids.tolist() == a[0].ids.tolist()


def test_an_s3_dataset_pickles_with_its_endpoint(seaweed: S3Server, remote: tuple[str, Path]) -> None:
    uri, _ = remote
    ds = Dataset(uri, transform=Transform.eval(16), storage=Storage.from_options(endpoint_url=seaweed.endpoint_url))
    copy = pickle.loads(pickle.dumps(ds))
    assert np.array_equal(copy[7][0], ds[7][0]) and copy[7][1] == ds[7][1]
