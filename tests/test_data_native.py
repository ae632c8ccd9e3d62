"""The reader's native calls (``_native.jpeg_sizes`` / ``decode_crops``) on good and damaged input.

Also run under AddressSanitizer + UBSan by ``native/check_asan.sh`` (``make asan``).
"""

from __future__ import annotations

import random

import imgfactory as fac
import numpy as np
import pytest

from imgprep import _native

GOOD = [fac.jpeg(97, 61, seed=1), fac.jpeg(40, 30, mode="L", seed=2), fac.jpeg(130, 90, progressive=True, seed=3),
        fac.jpeg(64, 64, mode="CMYK", seed=4), fac.jpeg(300, 200, seed=5, quality=70)]


def _crops(buffers, boxes, size=(16, 12), chw=False, flips=None):
    h, w = size
    out = np.full((len(buffers), 3, h, w) if chw else (len(buffers), h, w, 3), 7, np.uint8)
    flips = np.zeros(len(buffers), np.uint8) if flips is None else np.asarray(flips, np.uint8)
    return _native.decode_crops(list(buffers), np.asarray(boxes, np.float64), flips, out, chw), out


def test_sizes_and_whole_image_crops() -> None:
    assert _native.jpeg_sizes([*GOOD, b"", b"not a jpeg"]) == [(97, 61), (40, 30), (130, 90), (64, 64), (300, 200),
                                                                None, None]
    problems, out = _crops(GOOD, [(0, 0, 97, 61), (0, 0, 40, 30), (0, 0, 130, 90), (0, 0, 64, 64), (10, 10, 290, 190)])
    assert problems == [(3, "unsupported", "CMYK/YCCK JPEG")]
    assert out[[0, 1, 2, 4]].std() > 10 and (out[3] == 7).all()


def test_flip_and_planar_layout_are_the_same_pixels() -> None:
    box = [(5, 3, 90, 60)]
    _, plain = _crops(GOOD[:1], box)
    _, flipped = _crops(GOOD[:1], box, flips=[1])
    _, planar = _crops(GOOD[:1], box, chw=True)
    assert np.array_equal(flipped[0], plain[0][:, ::-1]) and np.array_equal(planar[0], plain[0].transpose(2, 0, 1))


def test_damaged_jpegs_are_reported_never_crash() -> None:
    rng = random.Random(0)
    base = GOOD[4]
    damaged = [base[:n] for n in (2, 20, 200, len(base) // 2, len(base) - 2)]
    for _ in range(60):
        data = bytearray(base)
        for _ in range(rng.randrange(1, 12)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        damaged.append(bytes(data))
    problems, _ = _crops(damaged, [(0, 0, 300, 200)] * len(damaged), size=(20, 30))
    kinds = {k for _, k, _ in problems}
    assert kinds <= {"error", "warning", "unsupported"} and {p for p, _, _ in problems} >= {0, 1, 2, 3}


def test_boxes_past_the_edge_are_clipped_and_bad_arguments_refused() -> None:
    problems, out = _crops(GOOD[:1], [(-20, -5, 500, 500)])
    assert problems == [] and out.std() > 10
    with pytest.raises(ValueError, match="empty"):
        _crops(GOOD[:1], [(50, 50, 50, 60)])
    with pytest.raises(ValueError, match="decode_crops"):
        _native.decode_crops(GOOD[:1], np.zeros((1, 3)), np.zeros(1, np.uint8), np.zeros((1, 4, 4, 3), np.uint8), 0)
    with pytest.raises(ValueError, match="decode_crops"):
        _native.decode_crops(GOOD[:1], np.zeros((1, 4)), np.zeros(1, np.uint8), np.zeros((1, 4, 4, 4), np.uint8), 0)
    with pytest.raises(TypeError):
        _native.jpeg_sizes("not a list")
