"""JAX: the loader's numpy batches go to a device with ``jax.device_put`` (CPU here) unchanged,
and a jitted step consumes them; labels arrive as int32 unless JAX's x64 mode is on.

JAX runs in a child process: imported into the test process, its threads would be inherited by
the forked DataLoader workers of other tests (a deadlock JAX warns of) and its memory would count
in their children's peak RSS."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from data_fixture import payloads, write_shards

_JAX = """
import sys
import jax, jax.numpy as jnp, numpy as np
from imgprep.data import Dataset, Loader, Transform
loader = Loader(Dataset(sys.argv[1], transform=Transform.train(16), seed=1), batch_size=8, threads=2)
device = jax.devices("cpu")[0]

@jax.jit
def step(images, labels):
    x = images.astype(jnp.float32) / 255.0
    return x.mean(axis=(1, 2, 3)), jax.nn.one_hot(labels, 5).sum(axis=0)

seen = 0
for batch in loader:
    images, labels = jax.device_put((batch.images, batch.labels), device)
    assert images.shape == batch.images.shape and images.dtype == jnp.uint8
    assert np.array_equal(np.asarray(images), batch.images)
    assert labels.dtype == (jnp.int64 if jax.config.jax_enable_x64 else jnp.int32), labels.dtype
    assert np.array_equal(np.asarray(labels), batch.labels)
    means, counts = step(images, labels)
    expected = batch.images.reshape(len(batch.images), -1).mean(axis=1) / 255.0
    assert np.allclose(np.asarray(means), expected, atol=1e-5)
    assert int(counts.sum()) == len(batch.labels)
    seen += len(batch.labels)
print("SEEN", seen)
"""


def test_batches_into_jax_device_put_and_a_jitted_step(tmp_path: Path) -> None:
    prefix = tmp_path / "train"
    write_shards(prefix, payloads(20), per_shard=8)
    proc = subprocess.run([sys.executable, "-c", _JAX, str(prefix)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["SEEN", "20"]
