"""``--executor auto`` hands chunks to worker threads only where the workers' work is worth
sharing: ``--pass-through`` of photo-sized files is a read and a checksum per record, less than
the SHA-256 the writer's side spends on the same bytes, and threads only added CPU there
(``-j 2`` ran slower than ``-j 1``).  The choice is made on the run's own first chunks; these
tests count pools and chunks, and compare bytes, not clocks."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from imgprep.formats.lst import LstItem
from imgprep.imaging.spec import TransformSpec
from imgprep.packing import packer
from imgprep.packing.packer import PackOptions, pack, worth_sharing
from imgprep.storage.stores import Storage

pytest.importorskip("imgprep._native")

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


def test_the_rule_compares_the_workers_cpu_with_the_hash_of_their_records() -> None:
    assert worth_sharing(2e-3, 1e-4)  # decoding and encoding: far more than hashing the result
    assert not worth_sharing(1.2e-3, 1e-3)  # a read and a checksum: about a hash's work
    assert worth_sharing(2e-3, 1e-3) and not worth_sharing(1.99e-3, 1e-3)
    assert not worth_sharing(5e-3, 1e-3, least=8.0)  # the cold probe's stricter bar
    assert worth_sharing(1e-3, 0.0)  # nothing hashed (every record skipped): threads as asked


def test_pass_through_of_photo_sized_files_runs_without_a_pool_at_2_workers(tmp_path, monkeypatch) -> None:
    """Fails on the code that took threads whenever the native core was built (``-j 2``: 2
    thread workers); the bytes are those of ``-j 1``.  Only ``auto`` judges: ``--executor
    thread`` gets its pool, with the same bytes."""
    items = _jpegs(tmp_path, 90, 48 << 10)
    one = pack(items, tmp_path, str(tmp_path / "one"), PASS, PackOptions(num_workers=1, storage=Storage()))
    pools = _pools(monkeypatch)
    two = pack(items, tmp_path, str(tmp_path / "two"), PASS, PackOptions(num_workers=2, storage=Storage()))
    assert (one.executor, two.executor) == ("inline", "inline")
    assert two.workers == 1 and pools == []
    threads = pack(items, tmp_path, str(tmp_path / "threads"), PASS,
                   PackOptions(num_workers=2, executor="thread", storage=Storage()))
    assert threads.executor == "thread" and pools == [2]
    assert _files(tmp_path / "one") == _files(tmp_path / "two") == _files(tmp_path / "threads")
    assert two.records == 90


def test_many_small_files_still_share_after_a_trial_on_warm_chunks(tmp_path, monkeypatch) -> None:
    """Small files cost a worker its system calls, far more than hashing them: threads pay.  With
    the probe's bar out of reach, the run makes its first chunks on the writer's thread, then
    starts the pool and hands it the chunks already cut (bytes as ``-j 1``'s)."""
    items = _jpegs(tmp_path, 400, 300)
    pack(items, tmp_path, str(tmp_path / "one"), PASS, PackOptions(num_workers=1, storage=Storage()))
    monkeypatch.setattr(packer, "SHARE_SURE", float("inf"))
    pools = _pools(monkeypatch)
    made_here: list[int] = []
    judge = packer.Packer._judge

    def spy(self, packed):  # type: ignore[no-untyped-def]
        made_here.append(len(packed.sizes))
        return judge(self, packed)

    monkeypatch.setattr(packer.Packer, "_judge", spy)
    two = pack(items, tmp_path, str(tmp_path / "two"), PASS, PackOptions(num_workers=2, storage=Storage()))
    assert len(made_here) == packer.TRIAL_CHUNKS
    assert two.executor == "thread" and pools == [2]
    assert _files(tmp_path / "one") == _files(tmp_path / "two") and two.records == 400
