"""storage.ranged.RangedReader: a seekable stream over ranged reads, one block held at a time."""

from __future__ import annotations

import hashlib
import io
import random

import pytest

from imgprep.storage.ranged import RangedReader

DATA = random.Random(7).randbytes(50_000)


def reader(block: int = 4096) -> tuple[RangedReader, list[tuple[int, int]]]:
    calls: list[tuple[int, int]] = []

    def open_range(start: int, end: int) -> io.BytesIO:
        calls.append((start, end))
        return io.BytesIO(DATA[start:end])

    return RangedReader(open_range, len(DATA), block), calls


def test_reads_and_seeks_like_a_file() -> None:
    ranged, calls = reader()
    ref = io.BytesIO(DATA)
    rng = random.Random(1)
    for _ in range(3000):
        op = rng.random()
        if op < 0.3:
            pos = rng.randrange(0, len(DATA) + 5000)
            assert ranged.seek(pos) == ref.seek(pos)
        elif op < 0.33:
            assert ranged.seek(-5, io.SEEK_END) == ref.seek(-5, io.SEEK_END)
        else:
            n = -1 if rng.random() < 0.02 else rng.randrange(0, 9000)
            assert ranged.read(n) == ref.read(n)
        assert ranged.tell() == ref.tell()
    assert all(end - start <= 4096 for start, end in calls)  # never more than a block asked for


def test_a_forward_walk_fetches_each_block_once_and_hashes_it() -> None:
    ranged, calls = reader()
    while ranged.read(777):
        pass
    ranged.seek(100)
    ranged.read(10)  # inside a block already passed: fetched again, the digest is not disturbed
    assert ranged.sha256() == hashlib.sha256(DATA).hexdigest()
    assert [start for start, _ in calls[:13]] == list(range(0, len(DATA), 4096))


def test_no_digest_when_blocks_were_skipped() -> None:
    ranged, _ = reader()
    ranged.seek(20_000)
    ranged.read(10)
    ranged.seek(0)
    while ranged.read(1000):
        pass
    assert ranged.sha256() is None


def test_a_short_range_is_an_error() -> None:
    ranged = RangedReader(lambda start, end: io.BytesIO(DATA[start:end - 1]), len(DATA))
    with pytest.raises(OSError, match="returned"):
        ranged.read(10)


def test_stores_without_local_files_serve_ranges(tmp_path, monkeypatch) -> None:
    """Store.open_seekable's default (S3's): blocks of ranged reads behind a buffered reader, so a
    list is read line by line and a shard is never held whole."""
    from imgprep.storage import ranged
    from imgprep.storage.base import Store
    from imgprep.storage.local import LocalStore

    monkeypatch.setattr(ranged, "BLOCK", 4096)
    lines = b"".join(b"%d\t1\timg/%06d.jpg\n" % (i, i) for i in range(2000))
    (tmp_path / "a.lst").write_bytes(lines)
    store = LocalStore()
    asked: list[tuple[int, int | None]] = []
    real = store.open_read
    monkeypatch.setattr(store, "open_read", lambda uri, start=0, end=None: asked.append((start, end)) or real(
        uri, start, end))
    stream = Store.open_seekable(store, str(tmp_path / "a.lst"))
    with stream:
        assert list(stream) == lines.splitlines(keepends=True)
        assert stream.raw.sha256() == hashlib.sha256(lines).hexdigest()
    assert all(end - start <= 4096 for start, end in asked)
    assert [start for start, _ in asked] == list(range(0, len(lines), 4096))
