"""The native JPEG path against the Pillow path: same sizes, PSNR >= 40 dB at q95, same errors.

The Pillow path (imgprep.imaging.pillow) is the reference; where the native path hands an image
to it (CMYK, PNG, PNG output, ...) the bytes must be identical.
"""

from __future__ import annotations

import io
import os
import struct
import threading
from concurrent.futures import ThreadPoolExecutor

import imgfactory as fac
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from imgprep.errors import ImageError
from imgprep.formats import recordio
from imgprep.imaging import native, pillow
from imgprep.imaging.geometry import plan
from imgprep.imaging.spec import TransformSpec

if os.environ.get("IMGPREP_REQUIRE_NATIVE") == "1":
    import imgprep._native as _native  # make test builds it: a missing extension is a failure there
else:
    _native = pytest.importorskip("imgprep._native", reason="native extension not built")
pytestmark = pytest.mark.native

MIN_PSNR = 40.0  # at q95; at lower qualities both encoders' own losses dominate the difference
MIN_PSNR_LOW_QUALITY = 33.0


@pytest.fixture(autouse=True)
def _native_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMGPREP_NATIVE", raising=False)


def decode(data: bytes, mode: str = "RGB") -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG"
        return np.asarray(im.convert(mode), dtype=np.float64)


def psnr(a: bytes, b: bytes, mode: str = "RGB") -> float:
    x, y = decode(a, mode), decode(b, mode)
    assert x.shape == y.shape
    mse = float(((x - y) ** 2).mean())
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def check_parity(data: bytes, spec: TransformSpec) -> bytes:
    got = native.transform_bytes(data, spec, "img.jpg")
    want = pillow.transform_bytes(data, spec, "img.jpg")
    with Image.open(io.BytesIO(got)) as g, Image.open(io.BytesIO(want)) as w:
        assert g.size == w.size
        assert g.mode == w.mode
    assert psnr(got, want) >= (MIN_PSNR if spec.quality >= 90 else MIN_PSNR_LOW_QUALITY)
    return got


def jpeg_with(img: Image.Image, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **params)
    return buf.getvalue()


SPECS = [
    TransformSpec(resize=256),
    TransformSpec(resize=64),
    TransformSpec(resize=256, center_crop=True),
    TransformSpec(center_crop=True),
    TransformSpec(size=(224, 224)),
    TransformSpec(size=(201, 99), fit="crop"),
    TransformSpec(size=(200, 120), fit="pad"),
    TransformSpec(size=(201, 121), fit="pad", pad_color=200),
    TransformSpec(size=(90, 160), fit="pad"),
    TransformSpec(size=(150, 100), fit="stretch"),
    TransformSpec(),
    TransformSpec(resize=300),  # upscaling some inputs
    TransformSpec(resize=200, color=0),
    TransformSpec(resize=200, color=-1),
    TransformSpec(resize=128, quality=75),
]


@pytest.mark.parametrize("size", [(640, 480), (481, 333), (1600, 1201), (299, 300)])
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.describe().replace(" ", ""))
def test_parity_with_pillow(size: tuple[int, int], spec: TransformSpec) -> None:
    data = fac.jpeg(*size, quality=95, seed=size[0])
    out = check_parity(data, spec)
    p = plan(*size, spec)
    with Image.open(io.BytesIO(out)) as im:
        assert im.size == p.output_size
        assert im.mode == ("L" if spec.color == 0 else "RGB")


@settings(max_examples=80, deadline=None)
@given(
    w=st.integers(1, 70),
    h=st.integers(1, 70),
    tw=st.integers(1, 70),
    th=st.integers(1, 70),
    seed=st.integers(0, 2**16),
)
def test_resampling_of_any_small_geometry(w: int, h: int, tw: int, th: int, seed: int) -> None:
    """The resampler's edge cases against Pillow: planes narrower than a SIMD block, a last block
    that overlaps the one before, transposes of partial 16x16 tiles, and each axis shrunk,
    enlarged or kept (which decides the pass order)."""
    rng = np.random.default_rng(seed)
    ramp = np.add.outer(np.arange(h) * rng.uniform(-4, 4), np.arange(w) * rng.uniform(-4, 4))
    pixels = np.clip(128 + ramp + rng.normal(0, 20, (h, w)), 0, 255).astype(np.uint8)
    data = jpeg_with(Image.fromarray(pixels, "L"), quality=100)
    spec = TransformSpec(size=(tw, th), fit="stretch", color=0, quality=100)
    got = native.transform_bytes(data, spec, "img.jpg")
    want = pillow.transform_bytes(data, spec, "img.jpg")
    assert psnr(got, want, "L") >= MIN_PSNR


@pytest.mark.parametrize("subsampling", [0, 1, 2], ids=["444", "422", "420"])
@pytest.mark.parametrize("spec", [TransformSpec(resize=160), TransformSpec(size=(101, 77), fit="pad"), TransformSpec()])
def test_input_subsamplings(subsampling: int, spec: TransformSpec) -> None:
    data = jpeg_with(fac.photo(515, 387, seed=3), quality=95, subsampling=subsampling)
    check_parity(data, spec)


@pytest.mark.parametrize("color", [1, 0, -1])
@pytest.mark.parametrize("spec_kw", [{"resize": 100}, {"size": (64, 80), "fit": "pad"}, {}])
def test_grayscale_input(color: int, spec_kw: dict) -> None:
    data = fac.jpeg(333, 250, mode="L", quality=95)
    spec = TransformSpec(color=color, **spec_kw)
    got = check_parity(data, spec)
    with Image.open(io.BytesIO(got)) as im:
        assert im.mode == ("RGB" if color == 1 else "L")
    if color == 1:
        rgb = decode(got)  # neutral chroma: R == G == B up to JPEG rounding
        assert np.abs(rgb[..., 0] - rgb[..., 2]).max() <= 2


def test_gray_output_of_colour_input_is_luma() -> None:
    data = fac.jpeg(640, 480, quality=95, seed=5)
    spec = TransformSpec(resize=128, color=0)
    got = native.transform_bytes(data, spec, "x.jpg")
    want = pillow.transform_bytes(data, spec, "x.jpg")
    assert psnr(got, want, "L") >= MIN_PSNR


@pytest.mark.parametrize("progressive", [False, True])
def test_progressive(progressive: bool) -> None:
    data = fac.jpeg(800, 600, quality=95, progressive=progressive, seed=9)
    check_parity(data, TransformSpec(resize=256))
    check_parity(data, TransformSpec(size=(128, 128), fit="pad"))


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize(
    "spec", [TransformSpec(resize=120), TransformSpec(size=(101, 61), fit="pad"), TransformSpec(center_crop=True)]
)
def test_exif_orientation(orientation: int, spec: TransformSpec) -> None:
    data = fac.jpeg(641, 397, quality=95, orientation=orientation, seed=orientation)
    assert _native.probe(data)[4] == orientation
    check_parity(data, spec)


@pytest.mark.parametrize("orientation", [3, 6, 8])
@pytest.mark.parametrize("subsampling", [0, 1])
def test_orientation_with_other_subsamplings(orientation: int, subsampling: int) -> None:
    exif = Image.Exif()
    exif[fac.EXIF_ORIENTATION_TAG] = orientation
    data = jpeg_with(fac.photo(333, 211, seed=2), quality=95, subsampling=subsampling, exif=exif.tobytes())
    check_parity(data, TransformSpec(size=(97, 51), fit="pad"))


def test_probe() -> None:
    data = jpeg_with(fac.photo(123, 45), quality=90, subsampling=2)
    width, height, _subsamp, colorspace, orientation = _native.probe(data)
    assert (width, height, orientation) == (123, 45, 1)
    assert colorspace == _native.TJCS_YCbCr
    gray = fac.jpeg(20, 10, mode="L")
    assert _native.probe(gray)[2:4] == (_native.TJSAMP_GRAY, _native.TJCS_GRAY)


@pytest.mark.parametrize(
    ("data", "spec"),
    [
        (fac.jpeg(300, 200, mode="CMYK", quality=95), TransformSpec(resize=100)),
        (fac.jpeg(300, 200, mode="CMYK", quality=95), TransformSpec(resize=100, color=-1)),
        (fac.png(120, 90), TransformSpec(resize=64)),
        (fac.png(120, 90, mode="RGBA"), TransformSpec(resize=64)),
        (fac.jpeg(120, 90), TransformSpec(resize=64, encoding="png")),
        (fac.jpeg(120, 90), TransformSpec(pass_through=True)),
    ],
    ids=["cmyk", "cmyk-as-decoded", "png", "rgba-png", "png-output", "pass-through"],
)
def test_fallback_is_the_pillow_path(data: bytes, spec: TransformSpec) -> None:
    assert native.transform_bytes(data, spec, "x") == pillow.transform_bytes(data, spec, "x")


def test_rgb_jpeg_without_ycbcr_falls_back() -> None:
    # An Adobe-style JPEG stored as RGB (no colour transform): TurboJPEG reports TJCS_RGB.
    from PIL import JpegImagePlugin  # noqa: F401 - registers the encoder options

    img = fac.photo(100, 80, seed=4)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, keep_rgb=True)
    data = buf.getvalue()
    if _native.probe(data)[3] == _native.TJCS_YCbCr:
        pytest.skip("this Pillow cannot write RGB JPEGs")
    assert native.transform_bytes(data, TransformSpec(resize=40), "x") == pillow.transform_bytes(
        data, TransformSpec(resize=40), "x"
    )


def test_buffer_protocol_inputs() -> None:
    data = fac.jpeg(200, 150, quality=95)
    spec = TransformSpec(resize=64)
    want = native.transform_bytes(data, spec, "x")
    assert native.transform_bytes(bytearray(data), spec, "x") == want
    assert native.transform_bytes(memoryview(data), spec, "x") == want


def test_deterministic_across_threads() -> None:
    images = [fac.jpeg(320 + 17 * i, 240 + 9 * i, quality=95, seed=i) for i in range(6)]
    specs = [TransformSpec(resize=96), TransformSpec(size=(81, 64), fit="pad")]
    jobs = [(d, s) for d in images for s in specs] * 4
    serial = [native.transform_bytes(d, s, "x") for d, s in jobs]
    barrier = threading.Barrier(4)

    def run(job: tuple[bytes, TransformSpec]) -> bytes:
        return native.transform_bytes(job[0], job[1], "x")

    def warm(_: int) -> None:
        barrier.wait()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(warm, range(4)))
        parallel = list(pool.map(run, jobs))
    assert parallel == serial


def test_bad_inputs_raise_image_error() -> None:
    spec = TransformSpec(resize=32)
    good = fac.jpeg(64, 48)
    for data in (
        fac.not_an_image(),
        b"",
        b"\xff\xd8\xff",
        b"\xff\xd8\xff\xe0" + bytes(100),
        fac.truncated_jpeg(keep=0.5),
        good[: len(good) - 40],
    ):
        with pytest.raises(ImageError) as info:
            native.transform_bytes(data, spec, "bad.jpg")
        assert str(info.value).startswith("bad.jpg: ")
        assert "\n" not in str(info.value)


def test_truncated_jpeg_is_an_error_like_pillow() -> None:
    data = fac.truncated_jpeg(400, 300, keep=0.6)
    with pytest.raises(_native.DataWarning):
        _native.transform(data, 1, 1, (0.0, 0.0, 400.0, 300.0), (400, 300), (400, 300), (0, 0), False, 90, 0)
    with pytest.raises(ImageError):
        native.transform_bytes(data, TransformSpec(resize=100), "t.jpg")
    with pytest.raises(ImageError):
        pillow.transform_bytes(data, TransformSpec(resize=100), "t.jpg")


def _with_header_size(data: bytes, width: int, height: int) -> bytes:
    # Rewrite the SOF0 frame size: a small file claiming a huge image.
    at = data.index(b"\xff\xc0")
    return data[: at + 5] + struct.pack(">HH", height, width) + data[at + 9 :]


def test_decompression_bomb_refused_from_header() -> None:
    data = _with_header_size(fac.jpeg(64, 48), 60000, 60000)
    with pytest.raises(ImageError, match="decompression-bomb"):
        native.transform_bytes(data, TransformSpec(resize=64), "bomb.jpg")
    with pytest.raises(ImageError, match="decompression-bomb"):
        native.transform_bytes(fac.jpeg(64, 48), TransformSpec(resize=8, max_pixels=1000), "b.jpg")


def test_switch_off_with_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert native.available()
    assert native.status().startswith("native")
    data = fac.jpeg(200, 150, quality=95)
    spec = TransformSpec(resize=64)
    monkeypatch.setenv("IMGPREP_NATIVE", "0")
    assert not native.available()
    assert "IMGPREP_NATIVE=0" in native.status()
    assert native.transform_bytes(data, spec, "x") == pillow.transform_bytes(data, spec, "x")


def test_preferred_executor() -> None:
    assert native.PREFERRED_EXECUTOR in ("thread", "process")


def test_invalid_arguments_are_value_errors() -> None:
    data = fac.jpeg(64, 48)
    ok = (data, 1, 1, (0.0, 0.0, 64.0, 48.0), (32, 24), (32, 24), (0, 0), False, 90, 0)
    assert isinstance(_native.transform(*ok), bytes)
    bad = [
        {1: 3},
        {2: 9},
        {3: (0.0, 0.0, 65.0, 48.0)},
        {3: (10.0, 0.0, 10.0, 48.0)},
        {5: (16, 24)},
        {6: (20, 0)},
        {8: 0},
        {9: 300},
    ]
    for change in bad:
        args = list(ok)
        for k, v in change.items():
            args[k] = v
        with pytest.raises(ValueError):
            _native.transform(*args)


@pytest.mark.parametrize(
    ("shape", "color"), [((28, 28), 0), ((28, 28), -1), ((20, 30, 3), 1)], ids=["gray", "keep", "rgb"]
)
def test_encode_pixels_matches_pillow(shape, color) -> None:
    rng = np.random.default_rng(7)
    arr = rng.integers(0, 256, shape, dtype=np.uint8)
    spec = TransformSpec(encoding="jpg", color=color)
    ours = native.transform_pixels(arr, spec, "a")
    ref = pillow.transform_pixels(arr, spec, "a")
    if arr.ndim == 2:  # same quantisation tables and DCT: the decoded pixels are identical
        assert np.array_equal(decode(ours, "L"), decode(ref, "L"))
    else:
        assert psnr(ours, ref) >= MIN_PSNR


def test_encode_pixels_rejects_bad_buffers() -> None:
    with pytest.raises(ValueError, match="does not match"):
        _native.encode_pixels(b"\0" * 10, 4, 4, 1, 95)
    with pytest.raises(ValueError, match="does not match"):
        _native.encode_pixels(b"\0" * 16, 4, 4, 2, 95)


MAGIC = recordio.MAGIC_BYTES
payload_pieces = st.sampled_from([b"", b"a", b"ab", b"abc", b"abcd", MAGIC, b"\x0a\x23\xd7"])


@settings(max_examples=400, deadline=None)
@given(st.lists(payload_pieces, max_size=6).map(b"".join), st.lists(payload_pieces, max_size=20).map(b"".join))
def test_c_framing_matches_recordio(head: bytes, body: bytes) -> None:
    assert _native.frame(head, body) == recordio.frame(head + body)


def test_c_framing_of_a_large_payload() -> None:
    body = bytes(range(256)) * 4096 + MAGIC + b"tail"
    assert _native.frame(b"h" * 24, body) == recordio.frame(b"h" * 24 + body)


def test_keep_heap() -> None:
    import platform

    # glibc takes the settings; AddressSanitizer's allocator (make asan) replaces glibc's and refuses
    tunable = platform.libc_ver()[0] == "glibc" and "libasan" not in os.environ.get("LD_PRELOAD", "")
    assert _native.keep_heap(16 << 20) is tunable
    assert native.keep_heap() is tunable
    with pytest.raises(ValueError):
        _native.keep_heap(-1)
