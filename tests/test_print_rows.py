"""The pack workers' fingerprint rows: one native call per chunk (``phash.record_rows``) must give
exactly the rows ``dedup.measure`` gives one stored image at a time, which ``inspect`` recomputes
from the packed output when it has no fingerprint file; what the native call leaves to Python
(other formats, damage, a record framed in parts) is measured there, in its place."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import struct
from array import array

import imgfactory
import numpy as np
import pytest
from PIL import Image

from imgprep.errors import ImageError, ImgprepError
from imgprep.formats.imagesize import SizeRange
from imgprep.formats.recordio import MAGIC, pack_header
from imgprep.imaging import phash
from imgprep.imaging.native import frame
from imgprep.packing import worker
from imgprep.packing.worker import Packed
from imgprep.splits import dedup
from imgprep.splits.prints_spool import PrintBlock

if os.environ.get("IMGPREP_REQUIRE_NATIVE") == "1":
    import imgprep._native  # noqa: F401 - make test builds it: a missing extension is a failure there
else:
    pytest.importorskip("imgprep._native", reason="native extension not built")
pytestmark = pytest.mark.native


@pytest.fixture(autouse=True)
def _native_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMGPREP_NATIVE", raising=False)


def _packed(images: list[bytes | None], labels: list[object] | None = None) -> Packed:
    """A chunk as a pack worker returns it: framed records back to back, None a skipped item."""
    records, sizes = [], []
    for i, image in enumerate(images):
        if image is None:
            sizes.append(0)
            continue
        label = labels[i] if labels else float(i % 3)
        records.append(frame(pack_header(label, i), image))
        sizes.append(len(records[-1]))
    return Packed(b"".join(records), sizes, array("I", bytes(4 * len(sizes))), SizeRange())


def _one_at_a_time(images: list[bytes | None]) -> PrintBlock:
    block = PrintBlock()
    for image in images:
        if image is None:
            continue
        try:
            block.add(dedup.measure(image))
        except (ImageError, ImgprepError, OSError):  # as the worker: an unreadable stored image
            block.add(None)
    return block


def _assert_same(got: PrintBlock, want: PrintBlock) -> None:
    assert len(got) == len(want)
    for f in dataclasses.fields(dedup.Prints):
        assert getattr(got.prints, f.name).tolist() == getattr(want.prints, f.name).tolist(), f.name
    for name, col in want.extras.items():
        assert got.extras[name].tolist() == col.tolist(), name


def _jpeg(img: Image.Image, **params: object) -> bytes:
    return imgfactory.encode(img, "JPEG", quality=90, **params)


def _letterboxed(seed: int) -> bytes:
    """A photo inside black bars: its reduced decode is bordered, so measure decodes it finer."""
    canvas = Image.new("RGB", (640, 480))
    canvas.paste(imgfactory.photo(640, 300, seed=seed), (0, 90))
    return _jpeg(canvas)


def _with_magic(image: bytes) -> bytes:
    """JPEG bytes with RecordIO's magic at an aligned offset after the image's end: the record is
    framed in parts, as MXNet's writer frames such a payload."""
    pad = -(len(image) + 24) % 4  # the payload is the 24-byte header, then the image
    return image + b"\0" * pad + struct.pack("<I", MAGIC) + b"tail"


def _kinds() -> list[bytes | None]:
    flat = _jpeg(Image.new("RGB", (96, 80), (120, 40, 200)))
    turned = imgfactory.photo(120, 120, seed=9).rotate(45)  # first harmonics close: alternates
    return [
        imgfactory.jpeg(96, 72, seed=1),
        imgfactory.jpeg(300, 200, seed=2),  # decoded at a DCT reduction
        imgfactory.jpeg(80, 64, mode="L", seed=3),  # grey: every chroma word unknown
        None,  # skipped by the pack: no row
        imgfactory.jpeg(24, 20, seed=4),  # under the hash grid: digest only
        flat,
        _letterboxed(5),
        _jpeg(turned),
        imgfactory.jpeg(64, 64, mode="CMYK", seed=6),  # left to Python (Pillow)
        imgfactory.png(70, 50, seed=7),  # left to Python
        imgfactory.truncated_jpeg(96, 72, seed=8),  # damaged: unreadable
        imgfactory.not_an_image(),
        _with_magic(imgfactory.jpeg(90, 70, seed=10)),  # framed in parts: left to Python
        imgfactory.jpeg(64, 96, seed=11, progressive=True),
    ]


def test_one_native_call_gives_the_rows_measure_gives_one_image_at_a_time():
    images = _kinds()
    got = worker.fingerprints(_packed(images))
    _assert_same(got, _one_at_a_time(images))
    kinds = got.prints.kind.tolist()
    assert {dedup.OK, dedup.FLAT, dedup.SMALL, dedup.UNREADABLE} <= set(kinds)  # every kind of row met
    assert len(got.prints.alt_hash) > 0  # and the alternates' columns


def test_records_the_native_call_cannot_read_are_left_to_python_in_their_place():
    images = [img for img in _kinds() if img is not None]
    rows = phash.record_rows(_packed(images).records, _packed(images).sizes)
    left = np.flatnonzero(rows["outcome"] == phash.ROW_PYTHON).tolist()
    assert left == [7, 8, 9, 10, 11]  # CMYK, PNG, truncated, not an image, framed in parts


def test_without_the_batch_the_worker_measures_each_record_and_gets_the_same_rows(monkeypatch):
    images = _kinds()
    native = worker.fingerprints(_packed(images))
    monkeypatch.setattr(phash, "record_rows", lambda records, sizes: None)
    _assert_same(worker.fingerprints(_packed(images)), native)


def test_multi_label_headers_are_skipped_to_the_image():
    images = [imgfactory.jpeg(96, 72, seed=s) for s in range(4)]
    labels = [(1.0, 2.0), (3.0,), (0.0, 1.0, 2.0, 3.0, 4.0), 7.0]
    _assert_same(worker.fingerprints(_packed(images, labels)), _one_at_a_time(images))


def test_the_digest_is_blake2b_of_the_stored_image_at_every_length():
    rng = np.random.default_rng(0)
    lengths = [*range(0, 300), 383, 384, 385, 1023, 1024, 1025, 100_003]
    images = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in lengths]
    packed = _packed(images)
    rows = phash.record_rows(packed.records, packed.sizes)
    want = [dedup.digest_of(image) for image in images]
    assert rows["digest"].tolist() == want
    assert want[0] == int.from_bytes(hashlib.blake2b(b"", digest_size=8).digest(), "little")


def test_sizes_that_do_not_fit_the_records_are_refused():
    packed = _packed([imgfactory.jpeg(64, 64)])
    with pytest.raises(ValueError, match="sizes"):
        phash.record_rows(packed.records, [packed.sizes[0] + 4])
    with pytest.raises(ValueError, match="sizes"):
        phash.record_rows(packed.records, [-1])


def test_damaged_frames_never_crash_and_go_to_python():
    """Records cut, bit-flipped or with lying lengths: the native call reads none outside its buffer."""
    rng = np.random.default_rng(1)
    good = _packed([imgfactory.jpeg(80, 60, seed=s) for s in range(3)])
    for _ in range(300):
        data = bytearray(good.records)
        for at in rng.integers(0, len(data), int(rng.integers(1, 6))):
            data[at] = int(rng.integers(0, 256))
        tail = int(rng.integers(0, good.sizes[-1]))  # bytes cut off the end of the last record
        sizes = [*good.sizes[:-1], good.sizes[-1] - tail]
        rows = phash.record_rows(bytes(data[: sum(sizes)]), sizes)
        assert len(rows) == 3
        assert set(rows["outcome"].tolist()) <= {phash.ROW_OK, phash.ROW_FLAT, phash.ROW_SMALL, phash.ROW_PYTHON}
