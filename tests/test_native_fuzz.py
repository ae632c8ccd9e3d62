"""Hostile input for the native path: it must never crash, only return a JPEG or raise.

Run under AddressSanitizer with ``native/check_asan.sh``.
"""

from __future__ import annotations

import io
import os

import imgfactory as fac
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from imgprep.errors import ImageError
from imgprep.imaging import native
from imgprep.imaging.spec import TransformSpec

if os.environ.get("IMGPREP_REQUIRE_NATIVE") == "1":
    import imgprep._native as _native  # make test builds it: a missing extension is a failure there
else:
    _native = pytest.importorskip("imgprep._native", reason="native extension not built")
pytestmark = pytest.mark.native

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
SPECS = [
    TransformSpec(resize=24),
    TransformSpec(size=(17, 11), fit="pad"),
    TransformSpec(center_crop=True, color=0),
    TransformSpec(),
]
SEEDS = [
    fac.jpeg(64, 48, quality=90, seed=1),
    fac.jpeg(61, 47, quality=80, progressive=True, seed=2, orientation=6),
    fac.jpeg(40, 30, mode="L", seed=3),
]


@pytest.fixture(autouse=True)
def _native_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMGPREP_NATIVE", raising=False)


def assert_jpeg_or_image_error(data: bytes, spec: TransformSpec) -> None:
    try:
        out = native.transform_bytes(data, spec, "fuzz.jpg")
    except ImageError as exc:
        assert "\n" not in str(exc)
        return
    with Image.open(io.BytesIO(out)) as im:
        assert im.format == "JPEG"
        im.load()


def raw_call(data: bytes) -> None:
    """The C entry points directly, with no Pillow fallback in between."""
    try:
        _native.probe(data)
    except _native.Error:
        return
    for scale in (1, 8):
        try:
            _native.transform(data, scale, 7, (0.0, 0.0, 1.0, 1.0), (3, 2), (5, 4), (1, 1), False, 90, 0)
        except (_native.Error, ValueError):
            pass
    for min_side in (1, 16):  # verify's and inspect's decode-only call
        try:
            width, height, _, sw, sh, luma = _native.decode_luma(data, min_side)
        except (_native.Error, ValueError):
            continue
        assert len(luma) == sw * sh and 0 < sw <= width and 0 < sh <= height


@FUZZ
@given(st.binary(max_size=600), st.sampled_from(SPECS))
def test_random_bytes_after_jpeg_signature(tail: bytes, spec: TransformSpec) -> None:
    data = b"\xff\xd8\xff" + tail
    assert_jpeg_or_image_error(data, spec)
    raw_call(data)


@FUZZ
@given(st.sampled_from(SEEDS), st.floats(0.0, 1.0), st.sampled_from(SPECS))
def test_truncated(seed: bytes, keep: float, spec: TransformSpec) -> None:
    data = seed[: int(len(seed) * keep)]
    assert_jpeg_or_image_error(data, spec)
    raw_call(data)


@FUZZ
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 7)), min_size=1, max_size=8),
    st.sampled_from(SPECS),
)
def test_bit_flips(seed: bytes, flips: list[tuple[float, int]], spec: TransformSpec) -> None:
    data = bytearray(seed)
    for where, bit in flips:
        data[int(where * len(data))] ^= 1 << bit
    assert_jpeg_or_image_error(bytes(data), spec)
    raw_call(bytes(data))


@FUZZ
@given(
    st.integers(1, 8),
    st.sampled_from([1, 2, 4, 8]),
    st.tuples(st.floats(0, 70), st.floats(0, 70), st.floats(0, 70), st.floats(0, 70)),
    st.tuples(st.integers(1, 90), st.integers(1, 90)),
    st.tuples(st.integers(0, 9), st.integers(0, 9)),
    st.booleans(),
)
def test_arbitrary_geometry(
    orientation: int,
    scale: int,
    box: tuple[float, float, float, float],
    size: tuple[int, int],
    pad: tuple[int, int],
    gray: bool,
) -> None:
    """Any box, size, canvas and orientation either works or is refused with ValueError."""
    canvas = (size[0] + pad[0], size[1] + pad[1])
    offset = (pad[0] // 2, pad[1] // 2)
    for seed in SEEDS:
        try:
            out = _native.transform(seed, scale, orientation, box, size, canvas, offset, gray, 90, 17)
        except ValueError:
            continue
        with Image.open(io.BytesIO(out)) as im:
            assert im.size == canvas


@FUZZ
@given(st.binary(max_size=300), st.integers(0, 3))
def test_exif_segment_garbage(payload: bytes, where: int) -> None:
    """Random APP1 Exif payloads: the orientation parser must stay inside the segment."""
    seed = SEEDS[where % len(SEEDS)]
    segment = b"Exif\x00\x00" + (b"MM\x00*" if where % 2 else b"II*\x00") + payload
    data = seed[:2] + b"\xff\xe1" + (len(segment) + 2).to_bytes(2, "big") + segment + seed[2:]
    assert 1 <= _native.probe(data)[4] <= 8
    assert_jpeg_or_image_error(data, SPECS[0])


SIGNATURES = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"RIFF\x00\x00\x00\x00WEBPVP8 ",
              b"RIFF\x00\x00\x00\x00WEBPVP8L", b"RIFF\x00\x00\x00\x00WEBPVP8X", b"II*\x00"]


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(SIGNATURES), st.binary(max_size=48)), min_size=1, max_size=12),
       st.booleans())
def test_batch_notes_image_sizes_and_crcs_as_python_does(images: list[tuple[bytes, bytes]], labelled: bool) -> None:
    """What pack_batch reports beside the records -- each record's CRC-32 and the packed images'
    sizes -- is what the writer's Python would find in the records (imagesize.dimensions,
    zlib.crc32), on any header: a size read out of bounds or a JPEG segment walk that differs
    would change ``prepare``'s image_shape or the dataset record."""
    import zlib

    from imgprep.formats.imagesize import SizeRange

    datas = [sig + tail + (b"\xff\xd9" if sig[0] == 0xFF else b"") for sig, tail in images]
    labels = [(1.0, 2.0) if labelled else (3.0,)] * len(datas)
    batch = native.pack_records(TransformSpec(pass_through=True), [None] * len(datas), datas,
                                list(range(len(datas))), labels, labelled, False)
    expected, at = SizeRange(), 0
    for size, crc in zip(batch.sizes, batch.crcs, strict=True):
        assert size, "every signature here passes through"
        record = batch.records[at:at + size]
        expected.note_framed(record)
        assert crc == zlib.crc32(record)
        at += size
    assert batch.images == expected
