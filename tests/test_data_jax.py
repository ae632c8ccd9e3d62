"""JAX: the loader's numpy batches go to a device with ``jax.device_put`` (CPU here) unchanged,
and a jitted step consumes them; labels arrive as int32 unless JAX's x64 mode is on."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import jax.numpy as jnp
import numpy as np
from data_fixture import CLASSES, payloads, write_shards

from imgprep.data import Dataset, Loader, Transform


def test_batches_into_jax_device_put_and_a_jitted_step(tmp_path: Path) -> None:
    prefix = tmp_path / "train"
    write_shards(prefix, payloads(20), per_shard=8)
    loader = Loader(Dataset(str(prefix), transform=Transform.train(16), seed=1), batch_size=8, threads=2)
    device = jax.devices("cpu")[0]

    @jax.jit
    def step(images: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = images.astype(jnp.float32) / 255.0
        return x.mean(axis=(1, 2, 3)), jax.nn.one_hot(labels, CLASSES).sum(axis=0)

    seen = 0
    for batch in loader:
        images, labels = jax.device_put((batch.images, batch.labels), device)
        assert images.shape == batch.images.shape and images.dtype == jnp.uint8
        assert np.array_equal(np.asarray(images), batch.images)
        assert labels.dtype == (jnp.int64 if jax.config.jax_enable_x64 else jnp.int32)
        assert np.array_equal(np.asarray(labels), batch.labels)
        means, counts = step(images, labels)
        assert np.allclose(np.asarray(means), batch.images.reshape(len(batch.images), -1).mean(axis=1) / 255.0,
                           atol=1e-5)
        assert int(counts.sum()) == len(batch.labels)
        seen += len(batch.labels)
    assert seen == 20
