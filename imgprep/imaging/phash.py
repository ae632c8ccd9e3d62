"""Perceptual hashes of decoded images: DCT pHash, 64 bits, with its mirror image's hash.

The image's luma is box-averaged to 32x32 and transformed with a 2-D DCT-II; the 8x8 lowest
frequencies are thresholded at their median (Zauner's pHash, as ``imagehash.phash`` does it).
Low frequencies survive resizing, re-encoding and small crops, so copies land a few bits apart
while different photos land near 32 bits apart.  A horizontal mirror only flips the sign of the
odd horizontal frequencies, so the mirror's hash comes from the same coefficients for free: the
search queries with both and a mirrored copy is found without decoding it twice.
"""

from __future__ import annotations

import numpy as np

SIDE = 32  # thumbnail side the DCT runs on
LOW = 8  # low-frequency block kept: LOW * LOW = 64 bits
THUMB_MIN_SIDE = 2 * SIDE  # decode reductions stop here, so the box average sees real pixels
# Below the hash grid an image has no detail for the low frequencies to tell apart: on scikit-learn's
# handwritten digits (24 px) 3,482 pairs of 1,797 distinct digits came within 10 bits.  Such
# images (MNIST's 28x28) are checked for exact copies only.
NEAR_MIN_SIDE = SIDE


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    m = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n))
    m[0] *= np.sqrt(1 / n)
    m[1:] *= np.sqrt(2 / n)
    return m


_D = _dct_matrix(SIDE)[:LOW]  # only the rows of the frequencies kept
_MIRROR = np.where(np.arange(LOW) % 2, -1.0, 1.0)[None, :]  # sign of each horizontal frequency
_WEIGHTS = (1 << np.arange(LOW * LOW - 1, -1, -1, dtype=np.uint64)).astype(np.uint64)


def box_resize(luma: np.ndarray, side: int = SIDE) -> np.ndarray:
    """Area-average a 2-D array to ``side`` x ``side`` (each output pixel averages its input cell)."""
    # Smaller than the grid (MNIST's 28x28): repeat pixels first, so every cell covers a pixel.
    luma = np.repeat(luma, -(-side // luma.shape[0]), axis=0) if luma.shape[0] < side else luma
    luma = np.repeat(luma, -(-side // luma.shape[1]), axis=1) if luma.shape[1] < side else luma
    h, w = luma.shape
    ys = (np.arange(side + 1) * h) // side
    xs = (np.arange(side + 1) * w) // side
    table = np.zeros((h + 1, w + 1))
    table[1:, 1:] = luma.astype(np.float64).cumsum(0).cumsum(1)
    area = np.outer(np.diff(ys), np.diff(xs)).clip(min=1)
    sums = table[ys[1:]][:, xs[1:]] - table[ys[:-1]][:, xs[1:]] - table[ys[1:]][:, xs[:-1]] + table[ys[:-1]][:, xs[:-1]]
    return sums / area


def _bits(block: np.ndarray) -> int:
    flat = block.ravel()
    on = flat > np.median(flat)
    return int((on.astype(np.uint64) * _WEIGHTS).sum())


def phash_pair(luma: np.ndarray) -> tuple[int, int]:
    """(hash, hash of the horizontal mirror) of a grey image given as a 2-D uint8 array."""
    if luma.shape[0] < 2 or luma.shape[1] < 2:
        luma = np.pad(luma, ((0, max(0, 2 - luma.shape[0])), (0, max(0, 2 - luma.shape[1]))), mode="edge")
    coeffs = _D @ box_resize(luma) @ _D.T
    return _bits(coeffs), _bits(coeffs * _MIRROR)


def hamming(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Bitwise distance of 64-bit hashes (element-wise for arrays)."""
    x = np.bitwise_xor(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64))
    return np.bitwise_count(x) if hasattr(np, "bitwise_count") else _popcount(x)


def _popcount(x: np.ndarray) -> np.ndarray:
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return ((x * np.uint64(0x0101010101010101)) >> np.uint64(56)).astype(np.uint8)
