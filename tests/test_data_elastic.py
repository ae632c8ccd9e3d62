"""Elastic resume: a state saved by a job of 4 ranks continues the same epoch on 3 or 6 ranks, each
rank a fresh process with its own thread count — every remaining sample read exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from data_fixture import digest, payloads, write_shards

from imgprep.data import Dataset, Loader, Sampler, Transform
from imgprep.data.order import Order, combine
from imgprep.errors import UsageError

COUNT, BATCH, K = 50, 4, 2  # 50 records: padded for 4, 3 and 6 ranks alike


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    prefix = tmp_path_factory.mktemp("elastic") / "train"
    write_shards(prefix, payloads(COUNT), per_shard=20)
    return prefix


def _open(prefix: Path) -> Dataset:
    return Dataset(str(prefix), transform=Transform.train(16), seed=4)


def _samples(batches) -> list[tuple[int, int, bool, str]]:
    return [(int(i), int(r), bool(v), d) for b in batches
            for i, r, v, d in zip(b.indices, b.ids, b.valid, digest(b.images))]


_RANK = """
import json, sys
sys.path.insert(0, sys.argv[5])
from data_fixture import digest
from imgprep.data import Dataset, Loader, Transform
ds = Dataset(sys.argv[1], transform=Transform.train(16), seed=4)
rank, world = int(sys.argv[3]), int(sys.argv[4])
loader = Loader(ds, batch_size=3, rank=rank, world_size=world, threads=1 + rank % 3)
loader.load_state_dict(json.loads(sys.argv[2]))
out = [(int(i), int(r), bool(v), d) for b in loader for i, r, v, d in zip(b.indices, b.ids, b.valid, digest(b.images))]
print(json.dumps(out))
"""


def test_resume_from_4_ranks_on_3_and_on_6_in_fresh_processes(shards: Path) -> None:
    ds = _open(shards)
    whole = [_samples(Loader(ds, batch_size=BATCH, rank=r, world_size=4, threads=1)) for r in range(4)]
    # The uninterrupted epoch, globally: rank r's p-th sample is entry p × 4 + r of the sequence.
    sequence = sorted((p * 4 + r, s) for r in range(4) for p, s in enumerate(whole[r]))
    rest = Counter(s[:2] + s[3:] for g, s in sequence if g >= K * BATCH * 4 and s[2])
    states = []
    for rank in range(4):
        loader = Loader(ds, batch_size=BATCH, rank=rank, world_size=4, threads=2)
        it = iter(loader)
        head = [next(it) for _ in range(K)]
        assert _samples(head) == whole[rank][: K * BATCH]
        states.append(loader.state_dict())
    state = json.dumps(combine(states))
    assert combine(states) == {**states[0]} and len(state) < 300
    for world in (3, 6):
        got: list[tuple[int, int, bool, str]] = []
        lengths = set()
        for rank in range(world):
            proc = subprocess.run([sys.executable, "-c", _RANK, str(shards), state, str(rank), str(world),
                                   str(Path(__file__).parent)], capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stderr
            mine = [tuple(x) for x in json.loads(proc.stdout)]
            lengths.add(len(mine))
            got += mine
        real = Counter(s[:2] + s[3:] for s in got if s[2])
        assert real == rest and max(real.values()) == 1  # the rest of the epoch, each sample once
        left = sum(rest.values())
        assert len(lengths) == 1 and sum(not s[2] for s in got) == -(-left // world) * world - left


def test_states_of_ranks_combine_only_when_they_agree(shards: Path) -> None:
    ds = _open(shards)
    a, b = (Loader(ds, batch_size=BATCH, rank=r, world_size=2, threads=0) for r in range(2))
    next(iter(a))
    with pytest.raises(UsageError, match="disagree"):
        combine([a.state_dict(), b.state_dict()])


def test_sampler_resumes_on_another_world_size_and_at_the_end_of_an_epoch() -> None:
    samplers = [Sampler(37, seed=8, rank=r, world_size=4) for r in range(4)]
    whole = [list(s) for s in samplers]
    sequence = [whole[g % 4][g // 4][0] for g in range(40)]
    state = combine([s.state_dict(consumed=5) for s in samplers])
    resumed = []
    for rank in range(6):
        sampler = Sampler(37, seed=8, rank=rank, world_size=6)
        sampler.load_state_dict(state)
        resumed.append([i for i, _ in sampler])
    got = Counter(i for share in resumed for i in share)
    assert set(got) == set(sequence[20:37]) and sum(got.values()) == 18  # 17 left, one padding repeat
    # A state saved at the end of an epoch resumes with the next epoch, as the Loader does.
    end = Sampler(37, seed=8)
    end.load_state_dict(Sampler(37, seed=8).state_dict(consumed=37))
    assert [e for _, e in end] == [1] * 37
    assert Order(37, 8).resume(state) == (0, 20)


def test_sampler_takes_the_datasets_length_and_seed_as_the_loader_does(shards: Path) -> None:
    ds = _open(shards)  # seed 4
    loader = [int(i) for b in Loader(ds, batch_size=BATCH, threads=0) for i in b.indices]
    assert [i for i, _ in Sampler(ds)] == loader
    assert [i for i, _ in Sampler(len(ds))] != loader  # a bare count: seed 0
    assert [i for i, _ in Sampler(len(ds), seed=4)] == loader


def test_a_state_resumes_only_on_the_records_it_was_taken_on(tmp_path: Path) -> None:
    """A dataset republished from another list (same record count: another seed) would otherwise
    resume silently into a different sequence; the same list republished resumes as before."""
    import imgfactory

    import imgprep

    tree = tmp_path / "tree"
    imgfactory.class_tree(tree, ["a", "b", "c"], 6)

    def publish(seed: int) -> Dataset:
        imgprep.prepare("folders", str(tree), str(tmp_path / "out"), split="train=0.5,val=0.5", seed=seed,
                        resize=24, dedup="off", quiet=True)
        return Dataset(str(tmp_path / "out" / "train"), transform=Transform.eval(16))

    loader = Loader(publish(1), 3, seed=0)
    next(iter(loader))
    state = loader.state_dict()
    assert state["dataset"] == publish(1).identity  # the same prepare again: the same records
    Loader(publish(1), 3, seed=0).load_state_dict(state)
    other = Loader(publish(2), 3, seed=0)
    assert len(other.dataset) == len(loader.dataset)
    with pytest.raises(UsageError, match="other records"):
        other.load_state_dict(state)
    with pytest.raises(UsageError, match="other records"):
        Sampler(other.dataset, batch_size=3, seed=0).load_state_dict(state)
    unnamed = dict(state, dataset="")  # a state saved before states named their records still resumes
    other.load_state_dict(unnamed)
