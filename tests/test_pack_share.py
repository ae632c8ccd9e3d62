"""``--executor auto`` starts a pool of worker threads only where it can make the run faster than
making every chunk on the writer's thread: not where the sequential SHA-256 sets the pace, nor
where the run has no second core (``-j 2`` slower than ``-j 1`` there).  The choice is made on the
run's own first chunks; these tests count pools and chunks, and compare bytes, not clocks."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from pathlib import Path

import imgprep._native  # noqa: F401 - pools of native pass-through chunks: without the core this file fails, never skips
import pytest

from imgprep.formats.lst import LstItem
from imgprep.imaging.spec import TransformSpec
from imgprep.packing import packer
from imgprep.packing.packer import PackOptions, pack, worth_sharing
from imgprep.storage.stores import Storage

PASS = TransformSpec(pass_through=True)


def _pools(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The worker count of every pool the packer starts."""
    started: list[int] = []
    make = packer._make_executor

    def spy(kind, workers, ctx):  # type: ignore[no-untyped-def]
        started.append(workers)
        return make(kind, workers, ctx)

    monkeypatch.setattr(packer, "_make_executor", spy)
    return started


def _jpegs(root: Path, count: int, size: int) -> list[LstItem]:
    """``count`` files that pass ``--pass-through``'s checks (JPEG signature, end marker) of
    about ``size`` bytes of noise each."""
    rng = random.Random(size)
    for i in range(count):
        (root / f"{i}.jpg").write_bytes(b"\xff\xd8\xff\xe0" + rng.randbytes(size - 6 + i % 13) + b"\xff\xd9")
    return [LstItem(i, (float(i % 4),), f"{i}.jpg") for i in range(count)]


def _files(prefix: Path) -> tuple[bytes, bytes]:
    return Path(f"{prefix}.rec").read_bytes(), Path(f"{prefix}.idx").read_bytes()


@contextlib.contextmanager
def _one_cpu() -> Iterator[None]:
    """This thread (and the threads it starts) on one CPU, as a container given one core."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def test_the_model_compares_a_pool_with_the_writers_thread_alone() -> None:
    # decoding and encoding (making ~20x the hash): a pool of 2 on 2 cores nearly halves the time
    assert worth_sharing(2e-3, 1e-4, cores=2)
    # the hash as long as all the rest: it sets the pace either way
    assert not worth_sharing(1e-3, 1e-3, cores=2) and not worth_sharing(1e-3, 1e-3, cores=16)
    # a read, a checksum and a write per record against its hash (photos passed through): a gain
    assert worth_sharing(2e-3, 1e-3, cores=2)
    # no second core: threads only take turns on it
    assert not worth_sharing(2e-3, 1e-4, cores=1)
    assert not worth_sharing(2e-3, 1e-3, cores=2, least=1.5)  # the cold probe's stricter bar
    assert worth_sharing(1e-3, 0.0, cores=2)  # nothing hashed (every record skipped): a pool, as asked


def test_two_workers_on_one_core_take_no_pool(tmp_path, monkeypatch) -> None:
    """Fails on the code that took threads whenever the native core was built: ``-j 2`` on one
    core ran 2 thread workers.  Only ``auto`` judges: ``--executor thread`` gets its pool.  The
    bytes are those of ``-j 1`` either way."""
    items = _jpegs(tmp_path, 90, 48 << 10)
    one = pack(items, tmp_path, str(tmp_path / "one"), PASS, PackOptions(num_workers=1, storage=Storage()))
    pools = _pools(monkeypatch)
    with _one_cpu():
        two = pack(items, tmp_path, str(tmp_path / "two"), PASS, PackOptions(num_workers=2, storage=Storage()))
        threads = pack(items, tmp_path, str(tmp_path / "threads"), PASS,
                       PackOptions(num_workers=2, executor="thread", storage=Storage()))
    assert (one.executor, two.executor, two.workers) == ("inline", "inline", 1)
    assert threads.executor == "thread" and pools == [2]
    assert _files(tmp_path / "one") == _files(tmp_path / "two") == _files(tmp_path / "threads")
    assert two.records == 90


def test_many_small_files_still_share_after_a_trial_on_warm_chunks(tmp_path, monkeypatch) -> None:
    """Small files cost their system calls, far more than hashing them: a pool pays.  With the
    probe's bar out of reach, the run makes its first chunks on the writer's thread, then starts
    the pool and hands it the chunks already cut (bytes as ``-j 1``'s)."""
    items = _jpegs(tmp_path, 400, 300)
    pack(items, tmp_path, str(tmp_path / "one"), PASS, PackOptions(num_workers=1, storage=Storage()))
    monkeypatch.setattr(packer, "SHARE_SURE", float("inf"))
    pools = _pools(monkeypatch)
    made_here: list[int] = []
    judge = packer.Packer._judge

    def spy(self, packed, writing):  # type: ignore[no-untyped-def]
        made_here.append(len(packed.sizes))
        return judge(self, packed, writing)

    monkeypatch.setattr(packer.Packer, "_judge", spy)
    two = pack(items, tmp_path, str(tmp_path / "two"), PASS, PackOptions(num_workers=2, storage=Storage()))
    assert len(made_here) == packer.TRIAL_CHUNKS
    if len(os.sched_getaffinity(0)) > 1:
        assert two.executor == "thread" and pools == [2]
    else:  # a one-core machine: no pool (the test above)
        assert two.executor == "inline" and pools == []
    assert _files(tmp_path / "one") == _files(tmp_path / "two") and two.records == 400


def test_a_list_that_ends_within_the_trial_says_it_ran_inline(tmp_path, monkeypatch) -> None:
    """Fails on a summary naming thread workers that never ran: the list (30 items) ends before
    the trial's chunks are made, so no pool starts and the summary says so."""
    items = _jpegs(tmp_path, 30, 300)
    monkeypatch.setattr(packer, "SHARE_SURE", float("inf"))
    pools = _pools(monkeypatch)
    summary = pack(items, tmp_path, str(tmp_path / "o"), PASS,
                   PackOptions(num_workers=2, chunk_size=8, storage=Storage()))
    assert (summary.executor, summary.workers, pools) == ("inline", 1, [])
    assert summary.records == 30
