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
- **Crops**: the hashes of fourteen crop windows, each canonical on its own, are queried against
  the other images' whole-image hashes: 5% and 10% off every side (centred) and off two adjacent
  sides (the corners), 7.5% off one side.  A copy cropped by up to 10% from one side, two adjacent
  sides or all four (down to 80% of width and height) is within 2.5% of one of them.
- **Confirmation**: every hash (whole, alternates, windows) comes with a *check* hash, the same
  median bits over the DCT of the thumbnail folded twice about its mean (``||t - m| - m'|``: its
  level sets, each fold doubling the frequencies the hash sees), in the same orientation.  Two images are
  linked only when both agree: smooth, low-detail images (sky, gradients, colour fields) crowd the
  pHash space, and their check bits tell most of them apart.  Folded once, the check let through
  many times as many strangers whose hashes met (smooth random fields) for few more copies found;
  folded three times it loses more copies than strangers (docs/check-hash.md has the figures).
  What it lets through are images whose grey levels look alike at 32 x 32 in every view tried:
  colour tells them apart, grey levels cannot.
- **Colour**: every hash also comes with a *chroma* word, 16 bits per colour channel (Cb high,
  Cr low): the 4x4 lowest frequencies of the channel's 8x8 area average over the same box,
  turned and flipped exactly as the luma block was (so a crop window of one image compares with
  the whole of another spatially aligned), DC above neutral grey, then the 15 others above their
  median.  A channel with no colour to describe (grey images, grey copies of colour photos,
  near-neutral photos: the box's chroma thumbnail deviates less than ``CHROMA_FLAT``) reads
  ``0xFFFF``, *unknown* (a median split never sets all 15 bits), and is not compared (one known
  channel on both sides must agree as closely per bit as two).  Grey-level
  look-alikes of different colours, what the check lets through, mostly differ there.
- **Detail**: the share of the whole image's thumbnail AC energy (Parseval: the sum of its squared
  deviations) that lies outside the 8x8 block the hash keeps.  Smooth images (colour fields, sky,
  gradients) have almost none: they look alike at 32 x 32 in every view the fingerprint takes, so
  a match between two of them cannot tell a copy from a look-alike; ``low_detail`` says so.
- **Low information**: a (trimmed) image whose thumbnail is flat has no detail for its hash to
  describe: every flat image would share it.  Such images are flagged ``flat`` and compared by
  content digest only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from imgprep.imaging import native

# The fingerprint's definition, named in every fingerprint file: a change to anything that moves
# its bits (thumbnail, windows, check view, orientation rule) must change this name, so stored
# rows of an older definition are refused rather than compared with new ones.
KIND = "phash64-dct32-w14-fold2-chroma32-share8"
SIDE = 32  # thumbnail side the DCT runs on
LOW = 8  # low-frequency block kept: LOW * LOW = 64 bits
THUMB_MIN_SIDE = 2 * SIDE  # decode reductions stop here, so the box average sees real pixels
# Below the hash grid an image has no detail for the low frequencies to tell apart: on scikit-learn's
# handwritten digits (24 px) 3,482 pairs of 1,797 distinct digits came within 10 bits.  Such
# images (MNIST's 28x28) are checked for exact copies only.
NEAR_MIN_SIDE = SIDE
CUTS = (0.05, 0.1)  # centred and corner windows cut these fractions off the sides they cut
SIDE_CUT = 0.075  # one-side windows: every one-side cut from 5% to 10% is within 2.5% of it
WINDOW_COUNT = 2 * 5 + 4  # windows per fingerprint: 2 centred, 8 corners, 4 sides
PEELS = 3  # rounds of border trimming: bars of one colour, then flat edges of another
BORDER_TOLERANCE = 12  # grey levels a bar's row may vary by (JPEG noise) and still be a bar
CLIP = 1  # percent of the darkest and of the brightest pixels clipped before hashing
FLAT_STD = 5.0  # thumbnail standard deviation (grey levels) under which an image is low-information
MIN_CONTENT = 8  # a trimmed image smaller than this (pixels) is low-information
AMBIGUOUS = 0.15  # first harmonics closer than this fraction of the AC energy: both choices are hashed
CHROMA_SIDE = 8  # a colour channel's thumbnail side: its DCT keeps the CHROMA_LOW x CHROMA_LOW lowest
CHROMA_LOW = 4
NEUTRAL = 128  # Cb/Cr of grey
CHROMA_FLAT = 2.0  # spread (levels) of a chroma block's AC coefficients under which a channel is unknown
UNKNOWN = 0xFFFF  # a channel's half when it has no colour to compare (never a median split's bits)
NO_CHROMA = (UNKNOWN << 16) | UNKNOWN  # both channels unknown: a grey image
# Share of the thumbnail's AC energy outside the hash's 8x8 block under which an image is low-detail:
# nothing beyond the thumbnail tells a copy from a look-alike (docs/duplicates.md has the distributions).
LOW_DETAIL = 0.03
# The share is kept (fingerprint files, the search's columns) as floor(share x DETAIL_SCALE) in a byte,
# clipped: the line can move without another fingerprint kind, and every judge compares the same byte.
DETAIL_SCALE = 1000
NO_DETAIL_LEVEL = 255  # the level of a row without a share (flat, small, unreadable): never low-detail


def detail_level(share: float) -> int:
    """The byte a detail share is kept as: floor(share x DETAIL_SCALE), at most 255."""
    return min(NO_DETAIL_LEVEL, int(share * DETAIL_SCALE))


LOW_DETAIL_LEVEL = detail_level(LOW_DETAIL)


class Fingerprint(NamedTuple):
    """``hash`` is indexed; ``alternates`` and ``windows`` are only queried; ``flat``: digest only.
    ``checks``: the confirming hash of ``hash``, then of each alternate, then of each window."""

    hash: int
    alternates: tuple[int, ...]
    windows: tuple[int, ...]
    flat: bool
    checks: tuple[int, ...] = ()
    chromas: tuple[int, ...] = ()  # the chroma word of each, in the order of ``checks``
    detail: float = 1.0  # share of the whole image's thumbnail AC energy outside the 8x8 block hashed

    @property
    def check(self) -> int:
        return self.checks[0] if self.checks else 0

    @property
    def low_detail(self) -> bool:
        """No detail beyond what the hash keeps: a copy cannot be told from a similar image."""
        return not self.flat and detail_level(self.detail) < LOW_DETAIL_LEVEL


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    m = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n))
    m[0] *= np.sqrt(1 / n)
    m[1:] *= np.sqrt(2 / n)
    return m


_D = _dct_matrix(SIDE)[:LOW]  # only the rows of the frequencies kept
_D32 = _D.astype(np.float32)  # the blocks are single precision: the median bits need no more
_D_BYTES = np.ascontiguousarray(_D32).tobytes()  # the native core's copy of it
_DC = _dct_matrix(CHROMA_SIDE)[:CHROMA_LOW].astype(np.float32)  # the chroma thumbnails' DCT rows
_DC_BYTES = np.ascontiguousarray(_DC).tobytes()
_ODD = np.where(np.arange(LOW) % 2, -1.0, 1.0)  # sign each frequency takes under a flip of its axis
_WEIGHTS = (1 << np.arange(LOW * LOW - 1, -1, -1, dtype=np.uint64)).astype(np.uint64)
_PARAMS = (BORDER_TOLERANCE, PEELS, MIN_CONTENT, float(CLIP), FLAT_STD, AMBIGUOUS, CUTS, SIDE_CUT)  # the native core's


# One row of the native core's ``phash_records`` (native/phash_batch.c's print_row, field for field):
# what :func:`imgprep.splits.dedup.measure` gives for one stored image, without a Python object.
_ALTS = 8  # native/phash.h MAX_ALTS: alternate orientations a row holds at most
ROW = np.dtype([("digest", "<u8"), ("hash", "<u8"), ("check", "<u8"), ("area", "<u8"),
                ("windows", "<u8", (WINDOW_COUNT,)), ("window_check", "<u8", (WINDOW_COUNT,)),
                ("alt_hash", "<u8", (_ALTS,)), ("alt_check", "<u8", (_ALTS,)),
                ("chroma", "<u4"), ("window_chroma", "<u4", (WINDOW_COUNT,)), ("alt_chroma", "<u4", (_ALTS,)),
                ("width", "<u4"), ("height", "<u4"),
                ("outcome", "u1"), ("detail", "u1"), ("channels", "u1"), ("alts", "u1")], align=True)
ROW_OK, ROW_FLAT, ROW_SMALL, ROW_PYTHON = range(4)  # a row's outcome; ROW_PYTHON: measure it in Python


def record_rows(records: bytes | memoryview, sizes: Sequence[int]) -> np.ndarray | None:
    """The fingerprint row (:data:`ROW`) of each record of non-zero size in ``records`` (framed image
    records back to back, ``sizes`` their framed sizes), in one native call without the GIL: the
    stored image's digest, decode and fingerprint as ``measure`` takes them.  None without the core."""
    core = _native_core()
    if core is None or not hasattr(core, "phash_records"):
        return None
    if ROW.itemsize != core.PHASH_ROW_SIZE:
        raise RuntimeError(f"imgprep bug: native rows of {core.PHASH_ROW_SIZE} bytes, ROW has {ROW.itemsize}")
    found = core.phash_records(records, np.asarray(sizes, np.int64), _D_BYTES, _PARAMS, _DC_BYTES, CHROMA_FLAT,
                               (THUMB_MIN_SIDE, NEAR_MIN_SIDE, float(DETAIL_SCALE), NO_DETAIL_LEVEL))
    return np.frombuffer(found, ROW)


def _edges(lo: np.ndarray, hi: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell bounds along one axis per box (k x 1 arrays); a span shorter than ``side`` repeats pixels."""
    span = hi - lo
    start = lo + (np.arange(side) * span) // side
    stop = np.maximum(start + 1, lo + (np.arange(1, side + 1) * span) // side)
    return start, stop


def _integral(luma: np.ndarray) -> np.ndarray:
    table = np.zeros((luma.shape[0] + 1, luma.shape[1] + 1))
    table[1:, 1:] = luma.astype(np.float64).cumsum(0).cumsum(1)
    return table


def _cells(table: np.ndarray, boxes: np.ndarray, side: int = SIDE) -> np.ndarray:
    """Area averages of ``boxes`` (k x (top, bottom, left, right)) to k x ``side`` x ``side`` from an
    integral image: four gathers for all boxes at once.  Each exact integer sum is multiplied by the
    reciprocals of its cell's height and width, as the native core does (a division per cell costs
    it more than the rest of the cell)."""
    y0, y1 = _edges(boxes[:, 0:1], boxes[:, 1:2], side)
    x0, x1 = _edges(boxes[:, 2:3], boxes[:, 3:4], side)
    a, b = y0[:, :, None], y1[:, :, None]
    c, d = x0[:, None, :], x1[:, None, :]
    return (table[b, d] - table[a, d] - table[b, c] + table[a, c]) * ((1 / (b - a)) * (1 / (d - c)))


def _sum(values: np.ndarray) -> np.ndarray:
    """Sums over the last axis, left to right: the native core's order, so both paths agree to the bit."""
    return np.cumsum(values, axis=-1)[..., -1]


def _dct(thumbs: np.ndarray) -> np.ndarray:
    """The 8x8 DCT block of each 32x32 thumbnail, in the native core's order of operations (no BLAS:
    its order differs, and a coefficient near its block's median would flip a bit)."""
    half = _stage(thumbs.astype(np.float32).transpose(0, 2, 1))  # k x 32 (columns) x 8: stage one, down the rows
    return _stage(half.transpose(0, 2, 1))  # k x 8 x 8: stage two, across the columns


def _stage(x: np.ndarray) -> np.ndarray:
    """out[..., u] = sum over i of D[u, i] * x[..., i], left to right.  A DCT row is symmetric (even
    u) or antisymmetric (odd u) about the middle, so the mirrored halves of x are added (subtracted)
    first: half the products."""
    head, tail = x[..., :SIDE // 2], x[..., ::-1][..., :SIDE // 2]
    picked = np.stack([head + tail, head - tail])[np.arange(LOW) % 2]  # LOW x ... x 16
    rows = _D32[:, :SIDE // 2].reshape((LOW,) + (1,) * (x.ndim - 1) + (SIDE // 2,))
    out = rows[..., 0] * picked[..., 0]
    for i in range(1, SIDE // 2):
        out = out + rows[..., i] * picked[..., i]
    return np.moveaxis(out, 0, -1)


def _total(thumbs: np.ndarray) -> np.ndarray:
    """Per thumbnail (k x 32 x 32), its values summed down each column, then across the column sums."""
    return _sum(np.cumsum(thumbs, axis=1)[:, -1, :])


def _thumbnails(luma: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(the 8x8 DCT block of every box's 32x32 area average, the same of the average folded twice
    about its mean, the first box's sum of squared deviations: its AC energy)."""
    thumbs = _cells(_integral(luma), boxes)
    deviation = thumbs - (_total(thumbs) / (SIDE * SIDE))[:, None, None]
    energy = float(_total(deviation[:1] * deviation[:1])[0])
    once = np.abs(deviation)
    twice = np.abs(once - (_total(once) / (SIDE * SIDE))[:, None, None])
    return _dct(thumbs), _dct(twice), energy


def box_resize(luma: np.ndarray, side: int = SIDE) -> np.ndarray:
    """Area-average a 2-D array to ``side`` x ``side`` (each output pixel averages its input cell)."""
    return _cells(_integral(luma), np.array([[0, luma.shape[0], 0, luma.shape[1]]]), side)[0]


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


def _bits(blocks: np.ndarray) -> np.ndarray:
    """One 64-bit hash per 8x8 block: each coefficient above its block's median."""
    flat = blocks.reshape(len(blocks), -1)
    middle = np.partition(flat, (31, 32), axis=1)[:, 31:33].mean(axis=1, keepdims=True)  # the median of 64
    on = flat > middle
    return (on.astype(np.uint64) * _WEIGHTS).sum(axis=1, dtype=np.uint64)


def _canonical(coeffs: np.ndarray, *others: np.ndarray, chroma: np.ndarray | None = None) -> list[np.ndarray]:
    """Each block turned and flipped into its canonical orientation: the larger first harmonic
    horizontal, both first harmonics positive; ``others`` (the check blocks) turned the same way,
    and ``chroma`` (k x 2 x 4 x 4: each box's colour blocks) too, appended last when given."""
    transpose = np.abs(coeffs[:, 1, 0]) > np.abs(coeffs[:, 0, 1])
    turned = [np.where(transpose[:, None, None], c.transpose(0, 2, 1), c) for c in (coeffs, *others)]
    out = turned[0]
    hflip = np.where(out[:, 0, 1] < 0, -1.0, 1.0)[:, None] ** np.arange(LOW)  # negate odd horizontal frequencies
    vflip = np.where(out[:, 1, 0] < 0, -1.0, 1.0)[:, None] ** np.arange(LOW)
    done = [(c * vflip[:, :, None] * hflip[:, None, :]).astype(c.dtype) for c in turned]  # signs only: exact
    if chroma is not None:
        low = chroma.shape[-1]
        colour = np.where(transpose[:, None, None, None], chroma.swapaxes(-1, -2), chroma)
        done.append((colour * vflip[:, None, :low, None] * hflip[:, None, None, :low]).astype(chroma.dtype))
    return done


def _alternates(coeffs: np.ndarray, check: np.ndarray,
                chroma: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The orientations of one block (with its check block and its 2 x 4 x 4 colour blocks) to hash
    besides the canonical one: those whose choice was too close to call (none for most images)."""
    ac = coeffs.ravel()[1:]
    margin = AMBIGUOUS * float(np.sqrt(float(_sum(ac * ac)) / (LOW * LOW - 1)))
    h1, v1 = coeffs[0, 1], coeffs[1, 0]
    if min(abs(h1), abs(v1), abs(abs(v1) - abs(h1))) >= margin:
        return []
    out = []
    low = chroma.shape[-1]
    for transpose in [abs(v1) > abs(h1)] + ([abs(v1) <= abs(h1)] if abs(abs(v1) - abs(h1)) < margin else []):
        block, other = (coeffs.T, check.T) if transpose else (coeffs, check)
        colour = chroma.swapaxes(-1, -2) if transpose else chroma
        h, v = block[0, 1], block[1, 0]
        for hflip in [h < 0] + ([h >= 0] if abs(h) < margin else []):
            for vflip in [v < 0] + ([v >= 0] if abs(v) < margin else []):
                signs = np.outer(_ODD if vflip else 1.0, _ODD if hflip else 1.0)
                out.append(((block * signs).astype(block.dtype), (other * signs).astype(other.dtype),
                            (colour * signs[:low, :low]).astype(colour.dtype)))
    return out


def _boxes(top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """The content box, then the crop windows inside it: 5% and 10% off every side (centred) and off
    two adjacent sides (the four corners), 7.5% off one side (the four sides)."""
    h, w = bottom - top, right - left
    boxes = [(top, bottom, left, right)]
    for cut in CUTS:
        dh, dw = round(h * cut), round(w * cut)
        boxes.append((top + dh, bottom - dh, left + dw, right - dw))
        boxes += [(top + y, bottom - dh + y, left + x, right - dw + x) for y in (0, dh) for x in (0, dw)]
    dh, dw = round(h * SIDE_CUT), round(w * SIDE_CUT)
    boxes += [(top + dh, bottom, left, right), (top, bottom - dh, left, right),
              (top, bottom, left + dw, right), (top, bottom, left, right - dw)]
    return np.array(boxes)


def _native_core() -> Any:
    core = native._native
    return core if core is not None and native.available() and hasattr(core, "phash_print") else None


def bordered_box(luma: np.ndarray) -> tuple[int, int, int, int]:
    """:func:`content_box`, from the native core when it is built."""
    core = _native_core()
    if core is None:
        return content_box(luma)
    luma = np.ascontiguousarray(luma, dtype=np.uint8)
    return tuple(core.phash_box(luma, luma.shape[0], luma.shape[1], BORDER_TOLERANCE, PEELS))


def _clip_outliers(luma: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Grey levels clipped to the content's CLIP..100-CLIP percentiles: a caption or logo in white on
    a dim photo is a few percent of its pixels but most of its contrast, and would decide the hash."""
    cdf = np.cumsum(np.bincount(luma[top:bottom, left:right].ravel(), minlength=256))
    lo, hi = np.searchsorted(cdf, (cdf[-1] * CLIP / 100, cdf[-1] * (100 - CLIP) / 100))
    return np.clip(luma, lo, hi).astype(np.uint8) if hi > lo else luma


def fingerprint(luma: np.ndarray, chroma: np.ndarray | None = None) -> Fingerprint:
    """The fingerprint of an image given as its grey levels (a 2-D uint8 array, any size; >= 32 px to
    be near-matched) and, for a colour image, its Cb and Cr planes at half the resolution (sample
    (y, x) under luma pixel (2y, 2x): 2 x ceil(h / 2) x ceil(w / 2), uint8; None: grey, every chroma
    word unknown).  Half: what a 4:2:0 JPEG stores, and a quarter of the sums to take.

    One call into the native core when it is built (the GIL released, so a thread pool hashes on
    every core), else numpy; the same bits either way."""
    core = _native_core()
    luma = np.ascontiguousarray(luma, dtype=np.uint8)
    if chroma is not None:
        chroma = np.ascontiguousarray(chroma, dtype=np.uint8)
        if chroma.shape != (2, *_half(luma.shape)):
            raise ValueError(f"chroma planes {chroma.shape} are not half the luma's {luma.shape}")
    if core is not None:
        found = core.phash_print(luma, luma.shape[0], luma.shape[1], _D_BYTES, _PARAMS, chroma, _DC_BYTES,
                                 CHROMA_FLAT)
        return Fingerprint(0, (), (), True) if found is None else _assemble(*found)
    return _numpy_print(luma, chroma)


def _numpy_print(luma: np.ndarray, chroma: np.ndarray | None = None) -> Fingerprint:
    """What the native ``phash_print`` computes, step for step (the fallback, and its reference in tests)."""
    top, bottom, left, right = content_box(luma)
    if bottom - top < MIN_CONTENT or right - left < MIN_CONTENT:
        return Fingerprint(0, (), (), True)
    boxes = _boxes(top, bottom, left, right)
    coeffs, checks, energy = _thumbnails(_clip_outliers(luma, top, bottom, left, right), boxes)
    if np.sqrt(energy / (SIDE * SIDE)) < FLAT_STD:
        return Fingerprint(0, (), (), True)
    colour, unknown = _colour_blocks(chroma, boxes)
    main, check, turned = _canonical(coeffs, checks, chroma=colour)
    others = _alternates(coeffs[0], checks[0], colour[0])
    alt = _bits(np.array([a for a, _, _ in others])).tolist() if others else []
    alt_check = _bits(np.array([c for _, c, _ in others])).tolist() if others else []
    alt_chroma = _chroma_words(np.array([c for _, _, c in others]), unknown[:1]).tolist() if others else []
    return _assemble(_bits(main).tolist(), _bits(check).tolist(), alt, alt_check,
                     _chroma_words(turned, unknown).tolist(), alt_chroma, _detail(coeffs[0], energy))


def _detail(block: np.ndarray, energy: float) -> float:
    """Box 0's detail share: 1 - (its 8x8 block's 63 AC squares, in double, summed left to right as
    the native core sums them) / (the thumbnail's AC energy)."""
    ac = block.ravel()[1:].astype(np.float64)
    low = float(_sum(ac * ac))
    return 1.0 - low / energy if energy > 0 else 0.0


def _half(shape: tuple[int, ...]) -> tuple[int, int]:
    return (shape[0] + 1) // 2, (shape[1] + 1) // 2


def _colour_blocks(chroma: np.ndarray | None, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per box and colour channel, the 4x4 low DCT block of its 8x8 area average (k x 2 x 4 x 4) and
    whether the channel is unknown there (k x 2: no chroma given, or its 15 AC coefficients hold less
    than ``CHROMA_FLAT`` of spread: the low-passed thumbnail's standard deviation, orthonormal DCT).  The
    planes are at half resolution: each box's edges halved (the end rounded up, at least one sample)."""
    k = len(boxes)
    if chroma is None:
        return np.zeros((k, 2, CHROMA_LOW, CHROMA_LOW), np.float32), np.ones((k, 2), bool)
    half = boxes // 2
    half[:, 1] = np.maximum(half[:, 0] + 1, (boxes[:, 1] + 1) // 2)
    half[:, 3] = np.maximum(half[:, 2] + 1, (boxes[:, 3] + 1) // 2)
    blocks, unknown = [], []
    for plane in chroma:
        block = _dct_low(_cells(_integral(plane), half, CHROMA_SIDE))
        ac = block.reshape(k, -1)[:, 1:]
        energy = _sum(ac * ac)  # single precision, left to right, as the native core adds them
        unknown.append(np.sqrt(energy.astype(np.float64) / (CHROMA_SIDE * CHROMA_SIDE)) < CHROMA_FLAT)
        blocks.append(block)
    return np.stack(blocks, axis=1), np.stack(unknown, axis=1)


def _dct_low(thumbs: np.ndarray) -> np.ndarray:
    """The 4x4 low DCT block of each 8x8 thumbnail in single precision, every sum left to right (the
    native core's order): down the rows, then across the columns."""
    x = thumbs.astype(np.float32)
    half = _DC[None, :, 0, None] * x[:, None, 0, :]  # k x 4 (u) x 8 (columns)
    for i in range(1, CHROMA_SIDE):
        half = half + _DC[None, :, i, None] * x[:, None, i, :]
    out = half[:, :, 0, None] * _DC[None, None, :, 0]  # k x 4 (u) x 4 (v)
    for j in range(1, CHROMA_SIDE):
        out = out + half[:, :, j, None] * _DC[None, None, :, j]
    return out


def _chroma_words(blocks: np.ndarray, unknown: np.ndarray) -> np.ndarray:
    """One 32-bit word per box (k x 2 x 4 x 4 oriented blocks, k x 2 unknown flags): per channel the DC
    above neutral grey (its top bit), then each of the 15 other coefficients above their median."""
    flat = blocks.reshape(len(blocks), 2, -1)
    dc = flat[:, :, 0] > np.float32(NEUTRAL * CHROMA_SIDE)
    ac = flat[:, :, 1:]
    middle = np.sort(ac, axis=2)[:, :, ac.shape[2] // 2, None]  # the median of 15: the 8th value
    weights = (1 << np.arange(ac.shape[2] - 1, -1, -1)).astype(np.uint32)
    half = (dc.astype(np.uint32) << np.uint32(ac.shape[2])) | ((ac > middle).astype(np.uint32) * weights).sum(
        axis=2, dtype=np.uint32)
    half = np.where(np.broadcast_to(unknown, half.shape), np.uint32(UNKNOWN), half).astype(np.uint32)
    return (half[:, 0] << np.uint32(16)) | half[:, 1]


def _assemble(hashes: Sequence[int], checks: Sequence[int], alt: Sequence[int], alt_check: Sequence[int],
              chromas: Sequence[int], alt_chroma: Sequence[int], detail: float) -> Fingerprint:
    """The Fingerprint of box hashes (whole image first) and box 0's alternate orientations: each
    alternate once (with its last check and chroma), in first-seen order, none equal to the hash itself."""
    alternates = {a: (c, k) for a, c, k in zip(alt, alt_check, alt_chroma, strict=True) if a != hashes[0]}
    return Fingerprint(hashes[0], tuple(alternates), tuple(hashes[1:]), False,
                       (checks[0], *(c for c, _ in alternates.values()), *checks[1:]),
                       (chromas[0], *(k for _, k in alternates.values()), *chromas[1:]), detail)


def chroma_channels(words: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
    """The Cb and Cr halves of chroma words (``UNKNOWN`` where the channel has no colour)."""
    words = np.asarray(words, dtype=np.uint32)
    return (words >> np.uint32(16)) & np.uint32(UNKNOWN), words & np.uint32(UNKNOWN)


def chroma_distance(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Bits apart of two chroma words (element-wise) per 32 bits compared: the channels known on both
    sides only, a distance over one channel counted twice (16 bits of one channel must agree as
    closely as 32 of two; 0 when no channel is known on both sides)."""
    out = np.zeros(np.broadcast(np.asarray(a), np.asarray(b)).shape, np.int64)
    channels = np.zeros(out.shape, np.int64)
    for x, y in zip(chroma_channels(a), chroma_channels(b), strict=True):
        both = (x != UNKNOWN) & (y != UNKNOWN)
        out += np.where(both, hamming(x, y).astype(np.int64), 0)
        channels += both
    return np.where(channels == 1, 2 * out, out)


def hamming(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Bitwise distance of 64-bit hashes (element-wise for arrays)."""
    x = np.bitwise_xor(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64))
    return np.bitwise_count(x) if hasattr(np, "bitwise_count") else _popcount(x)


def _popcount(x: np.ndarray) -> np.ndarray:
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return ((x * np.uint64(0x0101010101010101)) >> np.uint64(56)).astype(np.uint8)
