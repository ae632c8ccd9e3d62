"""How a pack's work is cut so that no core waits: ``--executor auto`` decides on a few images per
worker made on as many threads at once (one full chunk made alone -- a dozen phone photos --
kept the other cores waiting, about 5% of a 2-core run's wall time), and the list's last chunks
shrink so that no worker finishes a long chunk while the others are idle."""

from __future__ import annotations

import threading
from pathlib import Path

import imgfactory
import pytest

from imgprep.formats.lst import LstItem
from imgprep.imaging.spec import TransformSpec
from imgprep.packing import packer
from imgprep.packing.packer import CHUNK_PROBE, PackOptions, pack
from imgprep.storage.stores import Storage

pytest.importorskip("imgprep._native")


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(thread, items) of every chunk made before the pool was started."""
    made: list[tuple[int, int]] = []
    started: list[bool] = []
    run_chunk, make_executor = packer.run_chunk, packer._make_executor

    def spy_run(ctx, chunk):  # type: ignore[no-untyped-def]
        if not started:
            made.append((threading.get_ident(), len(chunk)))
        return run_chunk(ctx, chunk)

    def spy_make(*args):  # type: ignore[no-untyped-def]
        started.append(True)
        return make_executor(*args)

    monkeypatch.setattr(packer, "run_chunk", spy_run)
    monkeypatch.setattr(packer, "_make_executor", spy_make)
    return made


def _files(prefix: Path) -> tuple[bytes, bytes]:
    return Path(f"{prefix}.rec").read_bytes(), Path(f"{prefix}.idx").read_bytes()


def test_the_probe_makes_a_few_images_per_worker_on_every_worker_at_once(tmp_path, monkeypatch) -> None:
    """Fails on the code that made one chunk of up to 16 images on the calling thread alone."""
    for i in range(160):
        (tmp_path / f"{i}.jpg").write_bytes(imgfactory.jpeg(48 + i % 9, 40 + i % 5))
    items = [LstItem(i, (float(i % 4),), f"{i}.jpg") for i in range(160)]
    one = pack(items, tmp_path, str(tmp_path / "one"), TransformSpec(resize=16),
               PackOptions(num_workers=1, storage=Storage()))
    made = _spy(monkeypatch)
    two = pack(items, tmp_path, str(tmp_path / "two"), TransformSpec(resize=16),
               PackOptions(num_workers=2, storage=Storage()))
    assert one.executor == "inline" and two.executor == "thread"
    assert sum(n for _, n in made) <= 2 * CHUNK_PROBE, made
    assert len({thread for thread, _ in made}) == 2, made
    assert _files(tmp_path / "one") == _files(tmp_path / "two")


def test_pngs_probed_on_every_worker_still_take_processes(tmp_path, monkeypatch) -> None:
    for i in range(60):
        (tmp_path / f"{i}.png").write_bytes(imgfactory.png(20 + i % 7, 16 + i % 5, seed=i))
    items = [LstItem(i, (float(i % 3),), f"{i}.png") for i in range(60)]
    made = _spy(monkeypatch)
    summary = pack(items, tmp_path, str(tmp_path / "o"), TransformSpec(resize=12),
                   PackOptions(num_workers=3, storage=Storage()))
    assert summary.executor == "process"
    assert len(made) == 3 and sum(n for _, n in made) <= 3 * CHUNK_PROBE


def test_the_last_chunks_shrink_to_single_images(tmp_path, monkeypatch) -> None:
    """Fails on the code whose last chunk was as long as the others (25 images here)."""
    for i in range(400):
        (tmp_path / f"{i}.jpg").write_bytes(imgfactory.jpeg(24 + i % 9, 20 + i % 5))
    items = [LstItem(i, (float(i % 4),), f"{i}.jpg") for i in range(400)]
    sizes: dict[int, int] = {}
    run_chunk = packer.run_chunk

    def spy_run(ctx, chunk):  # type: ignore[no-untyped-def]
        sizes[chunk.indices[0]] = len(chunk)
        return run_chunk(ctx, chunk)

    monkeypatch.setattr(packer, "run_chunk", spy_run)
    summary = pack(items, tmp_path, str(tmp_path / "o"), TransformSpec(resize=8),
                   PackOptions(num_workers=2, storage=Storage(), executor="thread"))
    assert summary.records == 400 and sum(sizes.values()) == 400
    ordered = [sizes[k] for k in sorted(sizes)]
    assert max(ordered) > 8 and ordered[-1] == 1, ordered
    left = 400
    for size in ordered:
        assert size <= max(1, left // 4), ordered  # never more than a half-worker share of what is left
        left -= size
