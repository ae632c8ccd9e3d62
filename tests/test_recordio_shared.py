"""One ``RecordReader`` shared: by threads, across pickling, across a fork.

Before the reader read with per-call offsets, 8 threads reading through one reader got other
records back without an error (seek and read of two threads interleaved on one file position).
"""

from __future__ import annotations

import io
import multiprocessing
import pickle
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from imgprep.formats import recordio as rio


def _write(tmp_path, count: int = 300) -> tuple[str, str, dict[int, bytes]]:
    rng = random.Random(7)
    payloads = {}
    rec, idx = tmp_path / "s.rec", tmp_path / "s.idx"
    with rio.RecordWriter(rec, idx) as writer:
        for key in range(count):
            # Sizes vary and some payloads carry the magic word, so records span several parts.
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000)))
            if key % 7 == 0:
                body = body[:8] + rio.MAGIC_BYTES + body
            payloads[key] = rio.pack_image_record(key % 10, key, body)
            writer.write(payloads[key], key)
    return str(rec), str(idx), payloads


def _hammer(reader: rio.RecordReader, payloads: dict[int, bytes], threads: int = 8, reads: int = 600) -> int:
    """Read ``threads × reads`` random keys through ``reader``; return how many came back wrong."""
    def work(seed: int) -> int:
        rng = random.Random(seed)
        keys = list(payloads)
        return sum(reader.read_key(k) != payloads[k] for k in (rng.choice(keys) for _ in range(reads)))

    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(work, range(threads)))


def test_eight_threads_share_one_reader(tmp_path) -> None:
    rec, idx, payloads = _write(tmp_path)
    with rio.RecordReader(rec, idx) as reader:
        assert _hammer(reader, payloads) == 0


def test_threads_share_a_reader_over_a_file_object(tmp_path) -> None:
    rec, idx, payloads = _write(tmp_path, 100)
    with open(rec, "rb") as fh:
        reader = rio.RecordReader(fh, idx)
        assert _hammer(reader, payloads, threads=4, reads=200) == 0


def test_len_counts_records_with_and_without_an_index(tmp_path) -> None:
    rec, idx, _ = _write(tmp_path, 40)
    with rio.RecordReader(rec, idx) as indexed, rio.RecordReader(rec) as bare:
        assert len(indexed) == len(bare) == 40
    with rio.RecordReader(io.BytesIO(b"")) as empty:
        assert len(empty) == 0


def test_a_reader_on_a_path_pickles_and_the_copy_reads(tmp_path) -> None:
    rec, idx, payloads = _write(tmp_path, 30)
    with rio.RecordReader(rec, idx) as reader:
        copy = pickle.loads(pickle.dumps(reader))
    with copy:
        assert [copy.read_key(k) for k in payloads] == list(payloads.values())
        assert copy.keys == list(payloads) and len(copy) == 30


def test_a_reader_on_a_file_object_refuses_pickling(tmp_path) -> None:
    rec, _, _ = _write(tmp_path, 3)
    with open(rec, "rb") as fh, pytest.raises(TypeError, match="open it by path"):
        pickle.dumps(rio.RecordReader(fh))


def _child_reads(reader: rio.RecordReader, keys: list[int], queue) -> None:
    queue.put([reader.read_key(k) for k in keys])


def test_a_reader_keeps_working_in_forked_children(tmp_path) -> None:
    rec, idx, payloads = _write(tmp_path, 60)
    ctx = multiprocessing.get_context("fork")
    with rio.RecordReader(rec, idx) as reader:
        reader.read_key(5)  # the parent has used it before forking
        queue = ctx.Queue()
        keys = [list(payloads)[i::2] for i in range(2)]
        children = [ctx.Process(target=_child_reads, args=(reader, k, queue)) for k in keys]
        for child in children:
            child.start()
        # The parent keeps reading while the children do: no shared file position to disturb.
        assert _hammer(reader, payloads, threads=2, reads=100) == 0
        got = sorted((queue.get(timeout=60) for _ in children), key=len)
        for child in children:
            child.join(60)
            assert child.exitcode == 0
    assert sorted(p for part in got for p in part) == sorted(payloads.values())


def test_a_closed_reader_says_so(tmp_path) -> None:
    rec, idx, _ = _write(tmp_path, 3)
    reader = rio.RecordReader(rec, idx)
    reader.close()
    with pytest.raises(ValueError, match="closed"):
        reader.read_key(0)
