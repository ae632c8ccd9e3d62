"""Packing in chunks: the native batch, the writer's batched appends, any worker count and executor.

The records a chunk's native call makes must be the bytes the one-image path makes (which is
what every other test checks against Pillow and MXNet), and appending a chunk's records at
once must leave the same files, shards and checkpoints as appending them one at a time.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import struct
from pathlib import Path

import imgfactory
import pytest

import imgprep
from imgprep.formats.lst import LstItem
from imgprep.imaging.spec import TransformSpec
from imgprep.packing.packer import PackOptions, pack
from imgprep.packing.shards import ShardWriter
from imgprep.packing.worker import Chunk, WorkerContext, run_chunk, run_one
from imgprep.storage.stores import Storage

pytest.importorskip("imgprep._native")

MAGIC = struct.pack("<I", 0xCED7230A)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    """JPEGs the batch takes and every kind of image it leaves to Python."""
    root = tmp_path_factory.mktemp("mixed")
    images = {
        "rgb.jpg": imgfactory.jpeg(97, 61), "grey.jpg": imgfactory.jpeg(40, 30, mode="L"),
        "prog6.jpg": imgfactory.jpeg(50, 70, progressive=True, orientation=6),
        "rot3.jpg": imgfactory.jpeg(80, 33, orientation=3), "rot8.jpg": imgfactory.jpeg(33, 80, orientation=8),
        "cmyk.jpg": imgfactory.jpeg(40, 40, mode="CMYK"), "png.jpg": imgfactory.png(30, 20),
        "cut.jpg": imgfactory.truncated_jpeg(), "junk.jpg": imgfactory.not_an_image(),
        "big.jpg": imgfactory.jpeg(640, 480), "tall.jpg": imgfactory.jpeg(20, 300),
        # aligned magic words inside the payload: framed in several parts
        "magic.jpg": b"\xff\xd8\xff\xe0" + MAGIC + b"x" * 7 + MAGIC + b"\0" + MAGIC * 3 + b"\xff\xd9" + MAGIC,
    }
    for name, data in images.items():
        (root / name).write_bytes(data)
    os.symlink(root / "rgb.jpg", root / "link.jpg")
    (root / "folder.jpg").mkdir()
    return root, images


SPECS = [
    TransformSpec(), TransformSpec(resize=32), TransformSpec(resize=17, center_crop=True),
    TransformSpec(size=(40, 30), fit="pad", pad_color=7), TransformSpec(size=(40, 30), fit="crop"),
    TransformSpec(size=(41, 29), fit="stretch", quality=80), TransformSpec(color=0, resize=20),
    TransformSpec(color=-1, resize=24), TransformSpec(pass_through=True), TransformSpec(encoding="png", resize=16),
    TransformSpec(max_pixels=3000), TransformSpec(resize=300, max_pixels=40000),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.describe())
def test_native_batch_makes_the_one_image_records(mixed, spec) -> None:
    """Each item's record (or skip reason) is what run_one makes for it, with paths and with bytes."""
    root, images = mixed
    names = [*images, "link.jpg", "folder.jpg", "missing.jpg"]
    labels = [(float(i), 2.5, -1.0) if i % 2 else (float(i),) for i in range(len(names))]
    ids = [i * 1000003 + (1 << 40) for i in range(len(names))]
    for pack_label, guarded in itertools.product((False, True), (False, True)):
        ctx = WorkerContext(spec, "native", pack_label, os.path.realpath(root) if guarded else None)
        paths = [str(root / name) for name in names]
        datas = [images.get(name) for name in names]
        for chunk in (Chunk(ids, labels, paths),
                      Chunk(ids, labels, [p if d is None else None for p, d in zip(paths, datas)], datas)):
            packed = run_chunk(ctx, chunk)
            at = 0
            for i in range(len(chunk)):
                try:
                    expected = run_one(ctx, ids[i], labels[i], chunk.paths[i], datas[i])
                except imgprep.ImgprepError as exc:
                    assert packed.sizes[i] == 0 and packed.reasons[i] == exc.message
                    continue
                assert packed.records[at:at + packed.sizes[i]] == expected, names[i]
                at += packed.sizes[i]
            assert at == len(packed.records)


def test_native_batch_takes_plain_jpegs_itself(mixed, monkeypatch) -> None:
    """The batch does the work (no per-image Python) for the JPEGs it can, and leaves the rest."""
    root, _ = mixed
    calls: list[str] = []
    from imgprep.packing import worker

    real = worker.run_one
    monkeypatch.setattr(worker, "run_one", lambda ctx, index, labels, path, data: calls.append(path) or real(
        ctx, index, labels, path, data))
    names = ["rgb.jpg", "grey.jpg", "prog6.jpg", "rot8.jpg", "cmyk.jpg", "link.jpg"]
    chunk = Chunk(list(range(len(names))), [(1.0,)] * len(names), [str(root / n) for n in names])
    packed = run_chunk(WorkerContext(TransformSpec(resize=24), "native", False, os.path.realpath(root)), chunk)
    assert calls == [str(root / "cmyk.jpg"), str(root / "link.jpg")]
    assert all(packed.sizes) and not packed.reasons


@pytest.fixture(scope="module")
def many(tmp_path_factory, mixed) -> tuple[Path, list[LstItem]]:
    """70 items: mostly JPEGs of varied sizes, some multi-label, bad and non-JPEG ones among them."""
    root, images = mixed
    for i in range(56):
        (root / f"p{i}.jpg").write_bytes(imgfactory.jpeg(24 + 7 * (i % 9), 20 + 5 * (i % 7), seed=i,
                                                          orientation=1 + i % 8))
    names = [f"p{i}.jpg" for i in range(56)] + [*images, "missing.jpg", "folder.jpg"]
    names = [names[(i * 37) % len(names)] for i in range(len(names))]  # bad ones spread through the list
    items = [LstItem(1000 + 3 * i, (float(i % 5), float(i % 3)), name) for i, name in enumerate(names)]
    return root, items


def _files(prefix: Path) -> dict[str, bytes]:
    return {p.name[len(prefix.name):]: p.read_bytes() for p in prefix.parent.glob(prefix.name + "*")
            if not p.name.endswith(".json")}


@pytest.mark.parametrize("spec", [TransformSpec(resize=20), TransformSpec(pass_through=True)],
                         ids=["resize", "pass-through"])
@pytest.mark.parametrize("executor", ["thread", "process"])
def test_bytes_identical_for_1_2_3_7_workers(many, tmp_path, executor, spec) -> None:
    """Shards, index, skipped report: the same bytes for any worker count, both executors, and
    the chunk sizes each worker count brings (70 items over 7 workers: chunks of one)."""
    root, items = many
    outputs = []
    for workers in (1, 2, 3, 7):
        prefix = tmp_path / f"{executor}{workers}"
        summary = pack(items, root, str(prefix), spec,
                       PackOptions(num_workers=workers, executor=executor, shard_size=6000, pack_label=True,
                                   storage=Storage()))
        assert summary.executor == ("inline" if workers == 1 else executor)
        outputs.append(_files(prefix))
    assert len(outputs[0]) > 4  # several shards, their .idx files and the skipped report
    assert outputs[0] == outputs[1] == outputs[2] == outputs[3]


def test_pillow_path_bytes_identical_for_1_3_workers(many, tmp_path) -> None:
    """The Pillow path (no native batch: every image through run_one) in chunks over processes."""
    root, items = many
    outputs = []
    for workers in (1, 3):
        prefix = tmp_path / f"pillow{workers}"
        summary = pack(items, root, str(prefix), TransformSpec(resize=20),
                       PackOptions(num_workers=workers, native=False, storage=Storage()))
        assert summary.image_path == "pillow" and summary.executor == ("inline" if workers == 1 else "process")
        outputs.append(_files(prefix))
    assert outputs[0] == outputs[1]


def test_auto_takes_processes_when_images_need_python(tmp_path) -> None:
    """PNGs on the native path go through Pillow one at a time: ``auto`` measures that on the
    first chunk and runs on processes, with the bytes of a one-worker run."""
    for i in range(120):
        (tmp_path / f"{i}.png").write_bytes(imgfactory.png(20 + i % 7, 16 + i % 5, seed=i))
    items = [LstItem(i, (float(i % 3),), f"{i}.png") for i in range(120)]
    out = {}
    for workers in (1, 2):
        summary = pack(items, tmp_path, str(tmp_path / f"o{workers}"), TransformSpec(resize=12),
                       PackOptions(num_workers=workers, storage=Storage()))
        out[workers] = (summary.executor, _files(tmp_path / f"o{workers}"))
    assert out[1][0] == "inline" and out[2][0] == "process"
    assert out[1][1] == out[2][1]


def _records(n: int, seed: int) -> list[bytes]:
    sizes = [8 + 4 * ((i * 7919 + seed) % 50) for i in range(n)]
    return [bytes([i % 251]) * size for i, size in enumerate(sizes)]


@pytest.mark.parametrize("options", [
    {"shard_records": 7}, {"shard_size": 500}, {"checkpoint_bytes": 300}, {"shard_size": 900, "checkpoint_bytes": 250},
    {},
], ids=str)
def test_writer_appends_runs_as_it_appends_records(tmp_path, options) -> None:
    """write() of many records at once: the shards, publications and checkpoints of one at a time."""
    records = _records(90, 3)
    runs = []
    for name, cuts in (("one", list(range(1, 90))), ("runs", [1, 5, 6, 30, 31, 33, 70, 89])):
        events: list[tuple[str, object]] = []

        def publish(rec, idx, entry, consumed, crcs, events=events) -> None:
            rec.commit()
            idx.commit()
            events.append(("publish", (entry.records, entry.rec_bytes, entry.rec_sha256, entry.idx_sha256, consumed)))

        def checkpoint(rec, idx, state, events=events) -> None:
            fields = dataclasses.asdict(state)
            events.append(("checkpoint", {k: v for k, v in fields.items() if not k.endswith("_tmp")}))

        writer = ShardWriter(str(tmp_path / name), publish, storage=Storage(), checkpoint=checkpoint,
                             skipped=lambda: 0, **options)
        for a, b in itertools.pairwise([0, *cuts, 90]):
            writer.write(b"".join(records[a:b]), [len(r) for r in records[a:b]], [10 * k for k in range(a, b)],
                         100 + a)
        writer.close(190)
        runs.append((events, _files(tmp_path / name)))
    assert runs[0][0] == runs[1][0]
    assert runs[0][1] == runs[1][1] and len(runs[0][1]) >= 2


def test_decode_all_decodes_as_decode_does(mixed) -> None:
    """verify's batch: each image's size and channels, or the error decode() raises for it."""
    from imgprep.errors import ImageError
    from imgprep.imaging.decode import decode, decode_all

    _, images = mixed
    datas = [*images.values(), b"", b"\xff\xd8\xff"]
    for found, data in zip(decode_all(datas), datas, strict=True):
        try:
            expected = decode(data)
        except ImageError as exc:
            assert isinstance(found, ImageError) and found.message == exc.message
        else:
            assert found == expected._replace(luma=None)


def test_an_interrupt_while_the_hash_thread_starts_leaves_nothing_to_join(monkeypatch) -> None:
    """SIGTERM (KeyboardInterrupt) landing in Thread.start: the abort that follows must not try to
    join a thread that never started (it raised "cannot join thread before it is started")."""
    import threading

    from imgprep.packing.shards import _Digests

    def interrupted(self: threading.Thread) -> None:
        raise KeyboardInterrupt

    digests = _Digests()
    monkeypatch.setattr(threading.Thread, "start", interrupted)
    with pytest.raises(KeyboardInterrupt):
        digests.update(b"x" * (_Digests._INLINE + 1), b"0\t0\n")
    monkeypatch.undo()
    digests.finish()  # nothing started, nothing to wait for


def test_index_lines_in_c_are_the_formatted_lines(monkeypatch) -> None:
    """The writer's .idx lines, made in C, are format_index_line's, to the last key and offset."""
    import random

    from imgprep.formats.recordio import format_index_line
    from imgprep.imaging import native

    rng = random.Random(7)
    keys = [0, 2**64 - 1, *(rng.randrange(2**64) for _ in range(200)), *range(50)]
    sizes = [rng.choice((0, 4, 28, 4096, 2**29)) for _ in keys]
    offset = 2**40 + 12
    expected, at = [], offset
    for key, size in zip(keys, sizes, strict=True):
        expected.append(format_index_line(key, at))
        at += size
    monkeypatch.setenv("IMGPREP_NATIVE", "1")
    assert native.index_lines(keys, sizes, offset) == "".join(expected).encode()
    assert native.index_lines([], [], 5) == b""
    monkeypatch.setenv("IMGPREP_NATIVE", "0")  # the Python lines, the reference
    assert native.index_lines(keys, sizes, offset) == "".join(expected).encode()
