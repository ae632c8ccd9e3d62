"""imgprep.data under PyTorch's own DataLoader: worker processes (fork and spawn), order, resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch  # `make venv-test` installs a CPU build (TORCH_SPEC in the Makefile)
from data_fixture import digest, payloads, write_shards

from imgprep.data import Dataset, Loader, Sampler, Transform

COUNT = 45


@pytest.fixture(scope="module")
def prefix(tmp_path_factory) -> str:
    prefix = tmp_path_factory.mktemp("torchdata") / "train"
    write_shards(prefix, payloads(COUNT), per_shard=20)
    return str(prefix)


def _run(ds: Dataset, sampler: Sampler, workers: int, context: str | None = None, stop: int | None = None):
    loader = torch.utils.data.DataLoader(ds, batch_size=6, sampler=sampler, num_workers=workers,
                                         multiprocessing_context=context if workers else None)
    labels, hashes = [], []
    for k, (images, batch_labels) in enumerate(loader):
        assert images.dtype == torch.uint8 and images.shape[1:] == (20, 20, 3)
        labels += batch_labels.tolist()
        hashes += digest(images.numpy())
        if stop is not None and k + 1 == stop:
            break
    return labels, hashes


@pytest.mark.filterwarnings("ignore:This DataLoader will create 5 worker processes")  # on a 2-core CI box
def test_the_same_sequence_for_0_1_2_and_5_worker_processes(prefix: str) -> None:
    ds = Dataset(prefix, transform=Transform.train(20), seed=5)
    runs = []
    for workers in (0, 1, 2, 5):
        sampler = Sampler(len(ds), seed=5)
        sampler.set_epoch(2)
        runs.append(_run(ds, sampler, workers, "fork"))
    assert all(run == runs[0] for run in runs) and len(runs[0][0]) == COUNT
    # and it is the threaded Loader's sequence too
    loader = Loader(ds, batch_size=6, threads=2)
    loader.set_epoch(2)
    batches = list(loader)
    assert [h for b in batches for h in digest(b.images)] == runs[0][1]
    assert [int(x) for b in batches for x in b.labels] == runs[0][0]


def test_spawned_workers_get_the_dataset_pickled(prefix: str) -> None:
    ds = Dataset(prefix, transform=Transform.train(20), seed=5)
    expected = _run(ds, Sampler(len(ds), seed=5), 0)
    assert _run(ds, Sampler(len(ds), seed=5), 1, "spawn") == expected


_RESUME = """
import json, sys, torch
sys.path.insert(0, sys.argv[4])
from data_fixture import digest
from imgprep.data import Dataset, Sampler, Transform
ds = Dataset(sys.argv[1], transform=Transform.train(20), seed=5)
sampler = Sampler(len(ds), seed=5)
sampler.load_state_dict(json.loads(sys.argv[2]))
workers = int(sys.argv[3])
loader = torch.utils.data.DataLoader(ds, batch_size=6, sampler=sampler, num_workers=workers,
                                     multiprocessing_context="fork" if workers else None)
out = [[], []]
for images, labels in loader:
    out[0] += labels.tolist()
    out[1] += digest(images.numpy())
print(json.dumps(out))
"""


def test_resume_in_a_fresh_process_with_another_worker_count(prefix: str) -> None:
    ds = Dataset(prefix, transform=Transform.train(20), seed=5)
    whole = _run(ds, Sampler(len(ds), seed=5), 2, "fork")
    sampler = Sampler(len(ds), seed=5)
    head = _run(ds, sampler, 2, "fork", stop=3)
    state = json.dumps(sampler.state_dict(consumed=3 * 6))
    proc = subprocess.run([sys.executable, "-c", _RESUME, prefix, state, "0", str(Path(__file__).parent)],
                          capture_output=True, text=True, check=True, timeout=300)
    tail = json.loads(proc.stdout)
    assert (head[0] + tail[0], head[1] + tail[1]) == whole


def test_loader_batches_become_tensors_without_a_copy(prefix: str) -> None:
    batch = next(iter(Loader(Dataset(prefix, transform=Transform.eval(16)), batch_size=4, threads=1)))
    images, labels = batch.torch()
    assert images.data_ptr() == batch.images.ctypes.data and labels.dtype == torch.int64
    assert np.array_equal(images.numpy(), batch.images)
