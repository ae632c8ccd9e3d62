"""imgprep.data on S3 (the loopback SeaweedFS) reads one generation: a republish under a reader is
an error, never new bytes through the old index."""

from __future__ import annotations

from pathlib import Path

import imgfactory as fac
import pytest
from s3servers import S3Server, seaweed_fixture  # noqa: F401 - fixture

import imgprep
from imgprep.data import Dataset, Loader, Transform
from imgprep.errors import ChangedError
from imgprep.formats.lst import LstItem
from imgprep.storage.s3 import S3Tuning
from imgprep.storage.stores import Storage

pytestmark = pytest.mark.s3


def _publish(tmp_path: Path, server: S3Server, output: str, tag: str, labels: list[int]) -> None:
    root = tmp_path / tag
    root.mkdir()
    items = []
    for key, label in enumerate(labels):
        (root / f"{key}.jpg").write_bytes(fac.jpeg(30 + key, 28, seed=len(tag) * 100 + key))
        items.append(LstItem(key, (float(label),), f"{key}.jpg"))
    imgprep.pack(items, root=str(root), output=output, num_workers=1, quiet=True, shard_records=4,
                 storage_options={"endpoint_url": server.endpoint_url, "tuning": S3Tuning(retry_max_backoff=0.05)})


def test_a_republish_on_s3_during_an_epoch_is_an_error(seaweed: S3Server, tmp_path: Path) -> None:
    seaweed.client().create_bucket(Bucket="generations")
    output = "s3://generations/data/train"
    _publish(tmp_path, seaweed, output, "old", [i % 3 for i in range(12)])
    storage = Storage.from_options(endpoint_url=seaweed.endpoint_url)
    ds = Dataset(output, transform=Transform.eval(16), storage=storage)
    assert all(v for v in ds.versions.values())  # every shard's ETag pinned
    # batches of 2: by the first, the loader has read 3 batches ahead at most, so reads remain
    it = iter(Loader(ds, batch_size=2, shuffle=False, threads=1, prefetch=1))
    assert next(it).labels.tolist() == [0, 1]
    _publish(tmp_path, seaweed, output, "new", [2 - i % 3 for i in range(12)])
    with pytest.raises(ChangedError, match=r"s3://generations/data/train-0000\d\.rec: the dataset changed while it "
                                           r"was read .*open it again \(changed since it was opened for reading"):
        for _ in it:
            pass
    assert Dataset(output, storage=storage)[0][1] == 2  # opened again: the new generation
