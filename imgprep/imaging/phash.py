"""Perceptual fingerprints of decoded images: DCT pHash, 64 bits, made crop-, pad- and turn-proof.

The hash is Zauner's pHash (``imagehash.phash``): luma box-averaged to 32x32, 2-D DCT-II, the
8x8 lowest frequencies thresholded at their median.  Low frequencies survive resizing,
re-encoding, grayscale and light edits, so copies land a few bits apart while different photos
land near 32 bits apart.  Around it, a fingerprint adds what pHash alone misses:

- **Borders**: uniform bars along the edges (letterboxing, padding to square, a flat studio
  backdrop) are trimmed before hashing, so a padded copy hashes its content like the original.
- **Turns and flips**: the eight rotations/flips of an image permute and negate the DCT
  coefficients (a transpose swaps the axes, a flip negates the odd frequencies of its axis),
  so each hash is taken in a *canonical* orientation read off the coefficients themselves: the
  larger first harmonic horizontal, both first harmonics positive.  An image whose first
  harmonics are too close to call for a choice also gives the hashes of the other choices
  (``alternates``), queried but never indexed.  EXIF orientation, 90/180/270-degree turns and
  mirrors all land on the same canonical hash.
- **Crops**: the hashes of five 90% windows (centre and the four corners), each canonical on its
  own, are queried against the other images' whole-image hashes: a copy cropped by up to 10% of
  each side, centred or from a corner, is one of them.
- **Low information**: a (trimmed) image whose thumbnail is flat has no detail for its hash to
  describe: every flat image would share it.  Such images are flagged ``flat`` and compared by
  content digest only.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

SIDE = 32  # thumbnail side the DCT runs on
LOW = 8  # low-frequency block kept: LOW * LOW = 64 bits
THUMB_MIN_SIDE = 2 * SIDE  # decode reductions stop here, so the box average sees real pixels
# Below the hash grid an image has no detail for the low frequencies to tell apart: on scikit-learn's
# handwritten digits (24 px) 3,482 pairs of 1,797 distinct digits came within 10 bits.  Such
# images (MNIST's 28x28) are checked for exact copies only.
NEAR_MIN_SIDE = SIDE
WINDOWS = (0.9, 0.95)  # crop windows keep 90% of each side (centre, corners), 95% (corners)
PEELS = 3  # rounds of border trimming: bars of one colour, then flat edges of another
BORDER_TOLERANCE = 12  # grey levels a bar's row may vary by (JPEG noise) and still be a bar
FLAT_STD = 5.0  # thumbnail standard deviation (grey levels) under which an image is low-information
MIN_CONTENT = 8  # a trimmed image smaller than this (pixels) is low-information
AMBIGUOUS = 0.15  # first harmonics closer than this fraction of the AC energy: both choices are hashed


class Fingerprint(NamedTuple):
    """``hash`` is indexed; ``alternates`` and ``windows`` are only queried; ``flat``: digest only."""

    hash: int
    alternates: tuple[int, ...]
    windows: tuple[int, ...]
    flat: bool


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    m = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n))
    m[0] *= np.sqrt(1 / n)
    m[1:] *= np.sqrt(2 / n)
    return m


_D = _dct_matrix(SIDE)[:LOW]  # only the rows of the frequencies kept
_ODD = np.where(np.arange(LOW) % 2, -1.0, 1.0)  # sign each frequency takes under a flip of its axis
_WEIGHTS = (1 << np.arange(LOW * LOW - 1, -1, -1, dtype=np.uint64)).astype(np.uint64)


def _integral(luma: np.ndarray) -> np.ndarray:
    table = np.zeros((luma.shape[0] + 1, luma.shape[1] + 1))
    table[1:, 1:] = luma.astype(np.float64).cumsum(0).cumsum(1)
    return table


def _edges(lo: int, hi: int, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell bounds along one axis; a span shorter than ``side`` repeats pixels (each cell >= 1 px)."""
    span = hi - lo
    start = lo + (np.arange(side) * span) // side
    stop = np.maximum(start + 1, lo + (np.arange(1, side + 1) * span) // side)
    return start, stop


def _cells(table: np.ndarray, box: tuple[int, int, int, int], side: int = SIDE) -> np.ndarray:
    """Area average of ``box`` = (top, bottom, left, right) to ``side`` x ``side``, from an integral image."""
    y0, y1 = _edges(box[0], box[1], side)
    x0, x1 = _edges(box[2], box[3], side)
    sums = table[y1][:, x1] - table[y0][:, x1] - table[y1][:, x0] + table[y0][:, x0]
    return sums / np.outer(y1 - y0, x1 - x0)


def box_resize(luma: np.ndarray, side: int = SIDE) -> np.ndarray:
    """Area-average a 2-D array to ``side`` x ``side`` (each output pixel averages its input cell)."""
    return _cells(_integral(luma), (0, luma.shape[0], 0, luma.shape[1]), side)


def _run(flat: np.ndarray) -> int:
    """Length of the leading run of True."""
    off = np.flatnonzero(~flat)
    return int(off[0]) if len(off) else len(flat)


def content_box(luma: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) inside uniform bars along the edges (letterbox, padding, backdrop)."""
    img = luma.astype(np.int16)
    h, w = img.shape

    def bars(lines: np.ndarray) -> tuple[int, int]:
        spread = lines.max(1) - lines.min(1)
        means = lines.mean(1)
        first = (spread <= BORDER_TOLERANCE) & (np.abs(means - means[0]) <= BORDER_TOLERANCE)
        last = (spread <= BORDER_TOLERANCE) & (np.abs(means - means[-1]) <= BORDER_TOLERANCE)
        return _run(first), _run(last[::-1])

    top = bottom = left = right = 0
    for _ in range(PEELS):  # a bar, then a flat sky or floor of the photo under it: peel both
        t, b = bars(img[top:h - bottom, left:w - right])
        if top + t + bottom + b >= h:
            return 0, 0, 0, 0
        top, bottom = top + t, bottom + b
        lft, rgt = bars(img[top:h - bottom, left:w - right].T)
        if left + lft + right + rgt >= w:
            return 0, 0, 0, 0
        left, right = left + lft, right + rgt
        if not (t or b or lft or rgt):
            break
    return top, h - bottom, left, w - right


def _bits(block: np.ndarray) -> int:
    flat = block.ravel()
    on = flat > np.median(flat)
    return int((on.astype(np.uint64) * _WEIGHTS).sum())


def _orientations(coeffs: np.ndarray, alternates: bool) -> list[int]:
    """Hashes of the canonical orientation first, then (if asked) of the choices too close to call."""
    ac = coeffs.copy()
    ac[0, 0] = 0
    margin = AMBIGUOUS * float(np.sqrt((ac * ac).sum() / (LOW * LOW - 1)))
    out: list[int] = []
    h1, v1 = coeffs[0, 1], coeffs[1, 0]  # first horizontal and vertical harmonics
    transposes = [abs(v1) > abs(h1)]
    if alternates and abs(abs(v1) - abs(h1)) < margin:
        transposes.append(not transposes[0])
    for transpose in transposes:
        block = coeffs.T if transpose else coeffs
        h, v = block[0, 1], block[1, 0]
        hflips = [h < 0] + ([h >= 0] if alternates and abs(h) < margin else [])
        vflips = [v < 0] + ([v >= 0] if alternates and abs(v) < margin else [])
        for hflip in hflips:
            for vflip in vflips:
                signs = np.outer(_ODD if vflip else 1.0, _ODD if hflip else 1.0)
                value = _bits(block * signs)
                if value not in out:
                    out.append(value)
    return out


def _coefficients(thumb: np.ndarray) -> np.ndarray:
    return _D @ thumb @ _D.T


def fingerprint(luma: np.ndarray) -> Fingerprint:
    """The fingerprint of a grey image given as a 2-D uint8 array (any size; >= 32 px to be near-matched)."""
    top, bottom, left, right = content_box(luma)
    if bottom - top < MIN_CONTENT or right - left < MIN_CONTENT:
        return Fingerprint(0, (), (), True)
    table = _integral(luma)
    thumb = _cells(table, (top, bottom, left, right))
    if float(thumb.std()) < FLAT_STD:
        return Fingerprint(0, (), (), True)
    main, *alternates = _orientations(_coefficients(thumb), alternates=True)
    h, w = bottom - top, right - left
    boxes = []
    for keep in WINDOWS:
        dh, dw = round(h * (1 - keep)), round(w * (1 - keep))
        if keep == WINDOWS[0]:
            boxes.append((top + dh // 2, bottom - (dh - dh // 2), left + dw // 2, right - (dw - dw // 2)))
        boxes += [(top + y, bottom - dh + y, left + x, right - dw + x) for y in (0, dh) for x in (0, dw)]
    windows = tuple(_orientations(_coefficients(_cells(table, box)), alternates=False)[0] for box in boxes)
    return Fingerprint(main, tuple(alternates), windows, False)


def hamming(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Bitwise distance of 64-bit hashes (element-wise for arrays)."""
    x = np.bitwise_xor(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64))
    return np.bitwise_count(x) if hasattr(np, "bitwise_count") else _popcount(x)


def _popcount(x: np.ndarray) -> np.ndarray:
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return ((x * np.uint64(0x0101010101010101)) >> np.uint64(56)).astype(np.uint8)
