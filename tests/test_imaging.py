"""The Pillow image path: geometry, orientation, colour modes, DCT scaling, bad input."""

from __future__ import annotations

import io

import imgfactory
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from imgprep.errors import ImageError, UsageError
from imgprep.imaging import pillow
from imgprep.imaging.geometry import Plan, dct_scale, plan
from imgprep.imaging.spec import TransformSpec


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


@pytest.mark.parametrize(
    ("src", "spec", "out"),
    [
        ((400, 300), TransformSpec(resize=256), (341, 256)),
        ((300, 400), TransformSpec(resize=256), (256, 341)),
        ((50, 40), TransformSpec(resize=80), (100, 80)),  # im2rec also enlarges
        ((400, 300), TransformSpec(center_crop=True, resize=64), (64, 64)),
        ((400, 300), TransformSpec(center_crop=True), (300, 300)),
        ((400, 300), TransformSpec(size=(348, 348)), (348, 348)),
        ((400, 300), TransformSpec(size=(348, 348), fit="pad"), (348, 348)),
        ((400, 300), TransformSpec(size=(100, 30), fit="stretch"), (100, 30)),
        ((400, 300), TransformSpec(), (400, 300)),
    ],
    ids=[
        "landscape",
        "portrait",
        "enlarge",
        "center-crop-resize",
        "center-crop",
        "fit-crop",
        "fit-pad",
        "stretch",
        "unchanged",
    ],
)
def test_output_sizes(src, spec, out) -> None:
    data = imgfactory.jpeg(*src)
    assert decode(pillow.transform_bytes(data, spec, "x.jpg")).size == out


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 5000),
    st.integers(1, 5000),
    st.integers(1, 600),
    st.integers(1, 600),
    st.sampled_from(["crop", "pad", "stretch"]),
)
def test_plan_invariants(w, h, tw, th, fit) -> None:
    p = plan(w, h, TransformSpec(size=(tw, th), fit=fit))
    left, top, right, bottom = p.box
    assert 0 <= left < right <= w and 0 <= top < bottom <= h
    assert p.output_size == (tw, th)
    if p.canvas:
        assert p.size[0] <= tw and p.size[1] <= th and (p.size[0] == tw or p.size[1] == th)
    s = dct_scale(p)
    assert s in (1, 2, 4, 8)
    if s > 1:  # DCT scaling never takes the box below its target size
        assert (right - left) >= p.size[0] * s and (bottom - top) >= p.size[1] * s


def test_dct_scale_only_when_target_stays_reached() -> None:
    assert dct_scale(Plan((0, 0, 4000, 3000), (341, 256))) == 8
    assert dct_scale(Plan((0, 0, 1000, 750), (341, 256))) == 2
    assert dct_scale(Plan((0, 0, 500, 375), (341, 256))) == 1


def test_draft_result_is_close_to_full_decode() -> None:
    data = imgfactory.jpeg(2048, 1536, seed=3, quality=95)
    fast = np.asarray(decode(pillow.transform_bytes(data, TransformSpec(resize=256), "a.jpg")), dtype=float)
    full = Image.open(io.BytesIO(data)).convert("RGB").resize((341, 256), Image.Resampling.BILINEAR)
    mse = np.mean((fast - np.asarray(full, dtype=float)) ** 2)
    assert 10 * np.log10(255**2 / mse) > 30


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation: int) -> None:
    data = imgfactory.jpeg(120, 80, orientation=orientation)
    out = decode(pillow.transform_bytes(data, TransformSpec(resize=40), "o.jpg"))
    assert out.size == ((60, 40) if orientation < 5 else (40, 60))
    assert "exif" not in out.info


def test_orientation_matches_exif_transpose() -> None:
    from PIL import ImageOps

    data = imgfactory.jpeg(90, 60, orientation=6, quality=100)
    ours = np.asarray(decode(pillow.transform_bytes(data, TransformSpec(encoding="png"), "o.jpg")), dtype=float)
    ref = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"), dtype=float)
    assert ours.shape == ref.shape and np.abs(ours - ref).max() == 0


@pytest.mark.parametrize(
    ("data", "color", "mode"),
    [
        (imgfactory.png(40, 30, mode="RGBA"), 1, "RGB"),
        (imgfactory.png(40, 30, mode="RGBA"), -1, "RGBA"),
        (imgfactory.png(40, 30, mode="P"), 1, "RGB"),
        (imgfactory.png(40, 30, mode="L"), 1, "RGB"),
        (imgfactory.png(40, 30, mode="L"), -1, "L"),
        (imgfactory.png(40, 30, mode="I;16"), 0, "L"),
        (imgfactory.jpeg(40, 30, mode="CMYK"), 1, "RGB"),
        (imgfactory.jpeg(40, 30), 0, "L"),
    ],
    ids=["rgba", "rgba-keep", "palette", "gray-to-rgb", "gray-keep", "16bit", "cmyk", "rgb-to-gray"],
)
def test_colour_modes_have_defined_results(data: bytes, color: int, mode: str) -> None:
    out = decode(pillow.transform_bytes(data, TransformSpec(color=color, encoding="png"), "m"))
    assert out.mode == mode


def test_alpha_is_composited_on_white() -> None:
    clear = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    data = imgfactory.encode(clear, "PNG")
    out = decode(pillow.transform_bytes(data, TransformSpec(encoding="png"), "a.png"))
    assert out.getpixel((3, 3)) == (255, 255, 255)


def test_16_bit_is_scaled_not_clipped() -> None:
    arr = np.full((4, 4), 0x8000, np.uint16)
    data = imgfactory.encode(Image.fromarray(arr), "PNG")
    out = decode(pillow.transform_bytes(data, TransformSpec(color=0, encoding="png"), "d.png"))
    assert out.getpixel((0, 0)) == 0x80


def test_pad_is_black_and_centred() -> None:
    data = imgfactory.encode(Image.new("RGB", (100, 50), (200, 200, 200)), "PNG")
    out = decode(pillow.transform_bytes(data, TransformSpec(size=(60, 60), fit="pad", encoding="png"), "p.png"))
    assert out.getpixel((30, 2)) == (0, 0, 0) and out.getpixel((30, 30)) == (200, 200, 200)
    assert out.getpixel((30, 57)) == (0, 0, 0)


def test_decompression_bomb_is_refused_before_decoding() -> None:
    # A header claiming 30000x30000 with almost no data: refused from the header alone.
    data = imgfactory.encode(Image.new("L", (30000, 30000)), "PNG", compress_level=9)
    with pytest.raises(ImageError, match="decompression-bomb limit"):
        pillow.transform_bytes(data, TransformSpec(), "bomb.png")
    small = imgfactory.jpeg(100, 100)
    with pytest.raises(ImageError, match=r"100x100 image exceeds the decompression-bomb limit of 9999"):
        pillow.transform_bytes(small, TransformSpec(max_pixels=9999), "big.jpg")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (imgfactory.not_an_image(), "not an image"),
        (imgfactory.truncated_jpeg(), "cannot decode image"),
        (b"", "not an image"),
    ],
    ids=["junk", "truncated", "empty"],
)
def test_bad_images_raise_image_error(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        pillow.transform_bytes(data, TransformSpec(resize=32), "bad.jpg")


def test_pass_through_keeps_bytes_and_checks_headers() -> None:
    data = imgfactory.jpeg(30, 20)
    assert pillow.transform_bytes(data, TransformSpec(pass_through=True), "p.jpg") == data
    with pytest.raises(ImageError, match="unknown file signature"):
        pillow.transform_bytes(b"hello", TransformSpec(pass_through=True), "p.jpg")
    with pytest.raises(ImageError, match="truncated JPEG"):
        pillow.transform_bytes(data[: len(data) // 2], TransformSpec(pass_through=True), "p.jpg")


def test_pixels_path_is_lossless_in_png() -> None:
    arr = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    out = decode(pillow.transform_pixels(arr, TransformSpec(encoding="png", color=0), "m0"))
    assert np.array_equal(np.asarray(out), arr)
    rgb = decode(pillow.transform_pixels(arr, TransformSpec(encoding="png", color=1), "m0"))
    assert rgb.mode == "RGB" and np.array_equal(np.asarray(rgb)[..., 1], arr)
    with pytest.raises(ImageError, match="not an 8-bit image"):
        pillow.transform_pixels(arr.astype(np.float32), TransformSpec(), "m1")


def test_output_is_deterministic() -> None:
    data = imgfactory.jpeg(300, 200, seed=5)
    spec = TransformSpec(resize=100)
    assert pillow.transform_bytes(data, spec, "a") == pillow.transform_bytes(data, spec, "a")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"resize": 10, "size": (5, 5)},
        {"quality": 0},
        {"encoding": "gif"},
        {"color": 2},
        {"fit": "zoom"},
        {"pass_through": True, "resize": 5},
        {"center_crop": True, "size": (3, 3)},
    ],
)
def test_spec_rejects_contradictions(kwargs) -> None:
    with pytest.raises(UsageError):
        TransformSpec(**kwargs)
