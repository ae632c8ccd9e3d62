"""Mixtures: several datasets in one order, the same for any thread or worker count, resumable,
weights honoured (exactly per epoch: each dataset's count within one of weight × samples)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from data_fixture import CLASSES, digest, payloads, write_shards

from imgprep.data import Dataset, Loader, Mixture, Sampler, Transform
from imgprep.errors import UsageError

A, B = 30, 12  # records of the base set and of the small fine-grained set


@pytest.fixture(scope="module")
def prefixes(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("mixture")
    write_shards(root / "base", payloads(A), per_shard=16)
    write_shards(root / "fine", [(20_000 + i, (i * 3) % 4, image) for i, (_, _, image) in enumerate(payloads(B))])
    return root / "base", root / "fine"


def _open(prefixes: tuple[Path, Path], **options: object) -> Mixture:
    base, fine = (Dataset(str(p), transform=Transform.train(16), seed=3) for p in prefixes)
    return Mixture([base, fine], **{"offsets": [0, CLASSES], **options})


def _epoch(loader) -> list[tuple[int, int, int, str]]:
    return [(int(i), int(r), int(lab), d) for b in loader
            for i, r, lab, d in zip(b.indices, b.ids, b.labels, digest(b.images))]


def test_concatenation_reads_every_record_once_with_labels_apart(prefixes) -> None:
    mixture = _open(prefixes)
    got = _epoch(Loader(mixture, batch_size=5, threads=2))
    assert len(mixture) == A + B and sorted(r for _, r, _, _ in got) == \
        [10_000 + i for i in range(A)] + [20_000 + i for i in range(B)]
    labels = {r: lab for _, r, lab, _ in got}
    assert all(labels[10_000 + i] == i % CLASSES for i in range(A))
    assert all(labels[20_000 + i] == CLASSES + (i * 3) % 4 for i in range(B))  # offset past the base's classes
    with pytest.raises(UsageError, match="number of classes"):
        Mixture([Dataset(str(p)) for p in prefixes])


def test_weighted_mixture_is_the_same_for_any_thread_count_and_resumes(prefixes) -> None:
    mixture = _open(prefixes, weights=[1, 3], samples=40)
    runs = []
    for threads in (0, 1, 3):
        loader = Loader(mixture, batch_size=6, threads=threads)
        loader.set_epoch(2)
        runs.append(_epoch(loader))
    assert runs[0] == runs[1] == runs[2]
    head = Loader(mixture, batch_size=6, threads=2)
    head.set_epoch(2)
    it = iter(head)
    first = [next(it) for _ in range(3)]
    state = json.loads(json.dumps(head.state_dict()))
    rest = []
    for rank in range(2):  # and on two ranks with another batch size, from a fresh mixture
        tail = Loader(_open(prefixes, weights=[1, 3], samples=40), batch_size=4, threads=1, rank=rank, world_size=2)
        tail.load_state_dict(state)
        rest += [(int(i), int(r), int(lab), d) for b in tail
                 for i, r, lab, d, ok in zip(b.indices, b.ids, b.labels, digest(b.images), b.valid) if ok]
    assert _epoch(first) == runs[0][:18]
    assert Counter(rest) == Counter(runs[0][18:])


def test_weights_are_honoured_within_one_sample_per_epoch(prefixes) -> None:
    mixture = _open(prefixes, weights=[1, 3], samples=40)
    assert mixture.counts.tolist() == [10, 30]
    for epoch in range(3):
        loader = Loader(mixture, batch_size=8, threads=1)
        loader.set_epoch(epoch)
        ids = [r for _, r, _, _ in _epoch(loader)]
        per = Counter(r >= 20_000 for r in ids)
        assert per[False] == 10 and per[True] == 30
        fine = Counter(r for r in ids if r >= 20_000)
        assert set(fine) == {20_000 + i for i in range(B)} and set(fine.values()) <= {2, 3}  # 30 over 12: 2 or 3
        base = [r for r in ids if r < 20_000]
        assert len(set(base)) == 10  # under its size: no repeats
    odd = _open(prefixes, weights=[0.2, 0.5], samples=33)  # 33 × 2/7 = 9.43, 33 × 5/7 = 23.57
    assert odd.counts.tolist() == [9, 24]


def test_labels_mapped_by_class_name(prefixes) -> None:
    names = [["cat", "dog", "fox", "owl", "yak"], ["dog", "emu", "cat", "gnu"]]
    mixture = _open(prefixes, labels="names", class_names=names, offsets=None)
    assert mixture.classes == ["cat", "dog", "fox", "owl", "yak", "emu", "gnu"] and mixture.num_classes == 7
    got = {r: lab for _, r, lab, _ in _epoch(Loader(mixture, batch_size=7, threads=1))}
    assert all(mixture.classes[got[20_000 + i]] == names[1][(i * 3) % 4] for i in range(B))
    assert all(mixture.classes[got[10_000 + i]] == names[0][i % CLASSES] for i in range(A))
    with pytest.raises(UsageError, match="class names differ"):
        _open(prefixes, labels="same", class_names=names, offsets=None)


def test_a_mixture_under_a_dataloader_with_workers_reads_the_loaders_sequence(prefixes) -> None:
    import torch
    mixture = _open(prefixes, weights=[2, 1], samples=24)
    loader = Loader(mixture, batch_size=6, threads=1)
    ours = [(lab, d) for _, _, lab, d in _epoch(loader)]
    for workers in (0, 2):
        dl = torch.utils.data.DataLoader(mixture, batch_size=6, sampler=Sampler(mixture), num_workers=workers,
                                         multiprocessing_context="fork" if workers else None)
        theirs = [(int(lab), d) for images, labels in dl for lab, d in zip(labels, digest(images.numpy()))]
        assert theirs == ours
