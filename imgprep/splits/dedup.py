"""Duplicate groups of a dataset's images, the one implementation behind ``--dedup`` and ``inspect``.

Every image is fingerprinted once (:func:`measure`: content digest plus the crop-, pad- and
turn-proof pHash of :mod:`imgprep.imaging.phash`, with its check hashes), the fingerprints go
into :class:`Prints` columns, and :func:`find_groups` turns them into groups: images with the
same bytes, and **stars**: a representative (the largest image) and the images that meet the rule
with it (:func:`linked`: a hash, other orientation or crop window within the threshold, the check
hashes agreeing, and the chroma words too where both images have colour to compare).  Never
chains: A near B and B near C do not put A with C unless both are near the representative, so a
group's members are copies of one image, not strangers linked through a crowd of look-alikes.  No
pair list is built: identical hashes are collapsed first, and the multi-index search
(:mod:`imgprep.splits.neardup`) keeps per hash only the best-ranked hash it is confirmed near, so
time and memory follow the number of images, not the number of pairs.

A group is reported with its size and representative (first); it is a **leak** when its images
sit in more than one split and a **label conflict** when they carry different labels.  Images
too small (< 32 px) or too flat (blank frames, swatches) for a hash to tell apart are matched by
digest only.  ``convert``/``prepare --dedup`` and ``inspect`` both call :func:`find_groups` and
:func:`findings`, whose result depends on the fingerprints only, not on the order the images come
in; ``prepare`` fingerprints what pack stores, so ``inspect`` of its output finds the same groups.
"""
from __future__ import annotations

import hashlib
import json
import os
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from imgprep.errors import ImageError, ImgprepError, UsageError
from imgprep.imaging.decode import decode
from imgprep.imaging.phash import (
    LOW_DETAIL_LEVEL,
    NEAR_MIN_SIDE,
    NO_CHROMA,
    NO_DETAIL_LEVEL,
    ROW_FLAT,
    ROW_OK,
    ROW_SMALL,
    THUMB_MIN_SIDE,
    UNKNOWN,
    WINDOW_COUNT,
    Fingerprint,
    bordered_box,
    chroma_channels,
    chroma_distance,
    detail_level,
    fingerprint,
    hamming,
)
from imgprep.splits.neardup import (
    CHECK_THRESHOLD,
    CHROMA_THRESHOLD,
    DEFAULT_THRESHOLD,
    balance,
    lead,
    roots,
    window_threshold,
)

MODES = ("off", "report", "same-split")
ALIASES = {"drop": "same-split"}  # the name it had: it never dropped an image
WINDOWS = WINDOW_COUNT  # crop windows per image
ROUNDS = 6  # star-building rounds; what is still unplaced after them stays alone (a missed copy, never a stranger)
BATCH = 64  # images per pool task
# rows whose crop windows are queried in one search call: the windows' hash and check columns (two
# 8-byte values per window) are then held a block at a time, read from a fingerprint file by inspect
WINDOW_BLOCK = 1 << 17
CHUNK = 1 << 16  # rows per step where a whole column's temporaries would raise the search's peak
OK, FLAT, SMALL, UNREADABLE = range(4)  # what a row's fingerprint can be used for
_KIND_OF = np.zeros(max(ROW_OK, ROW_FLAT, ROW_SMALL) + 1, np.uint8)  # a native row's outcome -> its kind
_KIND_OF[[ROW_OK, ROW_FLAT, ROW_SMALL]] = OK, FLAT, SMALL
Reader = Callable[[int], "bytes | np.ndarray"]


def check_mode(mode: str) -> str:
    """The mode's current name (old names are accepted); a usage error for anything else."""
    mode = ALIASES.get(mode, mode) if isinstance(mode, str) else mode
    if mode not in MODES:
        raise UsageError(f"--dedup must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


class Measured(NamedTuple):
    width: int
    height: int
    channels: int
    digest: int
    print: Fingerprint | None  # None: under NEAR_MIN_SIDE, digest only


def digest_of(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def measure(item: bytes | np.ndarray) -> Measured:
    """Size, digest and fingerprint of encoded bytes (decoded at a DCT reduction) or of pixels."""
    chroma = None
    if isinstance(item, np.ndarray):
        pixels = np.ascontiguousarray(item)
        luma = pixels if pixels.ndim == 2 else pixels.mean(axis=2).astype(np.uint8)
        if pixels.ndim == 3 and pixels.shape[2] >= 3:
            chroma = _chroma_of(pixels[:, :, :3])
        height, width = pixels.shape[:2]
        channels = 1 if pixels.ndim == 2 else pixels.shape[2]
        digest = digest_of(pixels.tobytes())
    else:
        found = decode(item, min_side=THUMB_MIN_SIDE, keep_luma=True)
        luma, chroma, width, height, channels = found.luma, found.chroma, found.width, found.height, found.channels
        digest = digest_of(item)
        if luma is not None and min(width, height) >= 2 * min(luma.shape) and _bordered(luma):
            # Bars (letterbox, padding) leave less content than the reduced decode was sized for, and
            # their edge blurs into a row of it: hash such images from a finer decode.
            finer = decode(item, min_side=2 * THUMB_MIN_SIDE, keep_luma=True)
            luma, chroma = finer.luma, finer.chroma
    big = min(width, height) >= NEAR_MIN_SIDE
    return Measured(width, height, channels, digest, fingerprint(luma, chroma) if big and luma is not None else None)


def _chroma_of(rgb: np.ndarray) -> np.ndarray:
    """The Cb and Cr planes (JPEG's full-range BT.601, rounded) of RGB pixels, every other row and
    column (the fingerprint's resolution for colour): 2 x ceil(h / 2) x ceil(w / 2) uint8."""
    r, g, b = (rgb[::2, ::2, k].astype(np.float32) for k in range(3))
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return np.clip(np.rint(np.stack([cb, cr])), 0, 255).astype(np.uint8)


def linked(a: Fingerprint, b: Fingerprint, threshold: int = DEFAULT_THRESHOLD) -> bool:
    """The rule every member of a group meets with its representative (either way round): a hash or
    other orientation of one within ``threshold`` bits of the other's hash, or a crop window of one
    within :func:`~imgprep.splits.neardup.window_threshold` bits, the check hashes within
    ``CHECK_THRESHOLD`` bits of each other too, and the chroma words within ``CHROMA_THRESHOLD``
    bits (counting the colour channels known on both sides only)."""
    for x, y in ((a, b), (b, a)):
        turns = 1 + len(x.alternates)
        for k, h in enumerate((x.hash, *x.alternates, *x.windows)):
            limit = threshold if k < turns else window_threshold(threshold)
            if (hamming(h, y.hash) <= limit and hamming(x.checks[k], y.check) <= CHECK_THRESHOLD
                    and chroma_distance(_chroma(x, k), _chroma(y, 0)) <= CHROMA_THRESHOLD):
                return True
    return False


def _chroma(fp: Fingerprint, k: int) -> int:
    return fp.chromas[k] if fp.chromas else NO_CHROMA


def _bordered(luma: np.ndarray) -> bool:
    top, bottom, left, right = bordered_box(luma)
    return (bottom - top, right - left) != luma.shape


@dataclass
class Prints:
    """Fingerprint columns, one row per image in order (+ a few alternates); every hash has its check
    hash in the matching ``*check`` column and its chroma word in the matching ``*chroma`` one."""

    digest: array = field(default_factory=lambda: array("Q"))
    hash: array = field(default_factory=lambda: array("Q"))
    kind: array = field(default_factory=lambda: array("B"))
    windows: array = field(default_factory=lambda: array("Q"))  # WINDOWS per row (zeros unless OK)
    alt_hash: array = field(default_factory=lambda: array("Q"))  # other orientations, queried only
    alt_row: array = field(default_factory=lambda: array("q"))
    check: array = field(default_factory=lambda: array("Q"))
    area: array = field(default_factory=lambda: array("Q"))  # stored pixels: the larger image is the centre
    window_check: array = field(default_factory=lambda: array("Q"))
    alt_check: array = field(default_factory=lambda: array("Q"))
    chroma: array = field(default_factory=lambda: array("I"))
    window_chroma: array = field(default_factory=lambda: array("I"))
    alt_chroma: array = field(default_factory=lambda: array("I"))
    detail: array = field(default_factory=lambda: array("B"))  # phash.detail_level of the detail share

    def __len__(self) -> int:
        return len(self.kind)

    def add(self, measured: Measured | None) -> None:
        """Append the next row (None: the image could not be read)."""
        row = len(self.kind)
        self.area.append(0 if measured is None else measured.width * measured.height)
        if measured is None:
            self._plain(0, UNREADABLE)
        elif measured.print is None:
            self._plain(measured.digest, SMALL)
        elif measured.print.flat:
            self._plain(measured.digest, FLAT)
        else:
            fp = measured.print
            self.digest.append(measured.digest)
            self.hash.append(fp.hash)
            self.kind.append(OK)
            self.detail.append(detail_level(fp.detail))
            self.windows.extend(fp.windows)
            self.check.append(fp.checks[0])
            self.window_check.extend(fp.checks[1 + len(fp.alternates):])
            chromas = fp.chromas or (NO_CHROMA,) * len(fp.checks)
            self.chroma.append(chromas[0])
            self.window_chroma.extend(chromas[1 + len(fp.alternates):])
            for alt, check, chroma in zip(fp.alternates, fp.checks[1:], chromas[1:], strict=False):
                self.alt_hash.append(alt)
                self.alt_row.append(row)
                self.alt_check.append(check)
                self.alt_chroma.append(chroma)

    def extend_rows(self, rows: np.ndarray) -> None:
        """Append rows the native core measured (:data:`~imgprep.imaging.phash.ROW`, none of them
        left to Python): what :meth:`add` appends for each, without a Python object per row."""
        start = len(self.kind)
        self.kind.frombytes(_KIND_OF[rows["outcome"]].tobytes())
        for name in ("digest", "hash", "check", "area", "chroma", "detail", "windows", "window_check",
                     "window_chroma"):
            getattr(self, name).frombytes(np.ascontiguousarray(rows[name]).tobytes())
        alts = rows["alts"].astype(np.intp)
        taken = np.arange(rows.dtype["alt_hash"].shape[0]) < alts[:, None]
        for name in ("alt_hash", "alt_check", "alt_chroma"):
            getattr(self, name).frombytes(rows[name][taken].tobytes())
        self.alt_row.frombytes(np.repeat(np.arange(start, start + len(rows), dtype=np.int64), alts).tobytes())

    def _plain(self, digest: int, kind: int) -> None:
        self.digest.append(digest)
        self.hash.append(0)
        self.kind.append(kind)
        self.detail.append(NO_DETAIL_LEVEL)
        self.windows.extend([0] * WINDOWS)
        self.check.append(0)
        self.window_check.extend([0] * WINDOWS)
        self.chroma.append(NO_CHROMA)
        self.window_chroma.extend([NO_CHROMA] * WINDOWS)

    def column(self, name: str, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Values ``lo:hi`` of a column (all by default), without a copy."""
        col = getattr(self, name)
        return (np.frombuffer(col, dtype=col.typecode) if len(col) else np.zeros(0, col.typecode))[lo:hi]


@dataclass
class Groups:
    """``group[i]``: the representative of image ``i``'s group (``i`` itself when it has no copy):
    every member is a copy of it (within the threshold of it or of one of its windows, confirmed)."""

    group: np.ndarray
    kind: np.ndarray
    exact: np.ndarray  # per image: same digest as its group's representative
    hits: int = 0  # search hits merged (pairs seen, never stored)
    low_detail: np.ndarray | None = None  # per image: no detail beyond the thumbnail (None: none known)

    def lookalike(self, rows: Sequence[int]) -> bool:
        """The group of ``rows`` may hold look-alikes, not copies: one of its images has no detail
        beyond the thumbnail the rule compares, so its link to the representative proves nothing
        (identical files are copies anyway)."""
        return self.low_detail is not None and bool(self.low_detail[np.asarray(rows)].any())

    def count(self, kind: int) -> int:
        return int((self.kind == kind).sum())

    @property
    def grouped(self) -> bool:
        return bool((self.group != np.arange(len(self.group))).any())

    def members(self) -> dict[int, list[int]]:
        """Group representative -> all its images (representative first), for groups of two or more."""
        shared = np.flatnonzero(np.bincount(self.group, minlength=len(self.group))[self.group] > 1)
        order = shared[np.argsort(self.group[shared], kind="stable")]
        keys = self.group[order]
        cuts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
        out = {}
        for g in np.split(order, cuts):
            if len(g) > 1:
                rep = int(self.group[g[0]])
                out[rep] = [rep, *(r for r in g.tolist() if r != rep)]
        return dict(sorted(out.items()))


def low_detail(levels: np.ndarray) -> np.ndarray:
    """Per row of a ``detail`` column: no detail beyond the thumbnail (``phash.LOW_DETAIL``)."""
    return np.asarray(levels) < LOW_DETAIL_LEVEL


def components(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Smallest member index per item of the graph the edges make (min-label propagation + pointer jumps)."""
    label = np.arange(n)
    while True:
        low = np.minimum(label[src], label[dst])
        new = label.copy()
        np.minimum.at(new, src, low)
        np.minimum.at(new, dst, low)
        new = roots(new)
        if np.array_equal(new, label):
            return label
        label = new


def find_groups(prints: Prints, threshold: int = DEFAULT_THRESHOLD, *, workers: int | None = None) -> Groups:
    """Group the images of ``prints``: same digest, or copies of one representative (hashes within
    ``threshold`` bits of its hash, its other orientations or its crop windows, confirmed by the
    check hashes and the chroma words).  Groups are stars, never chains: A near B and B near C does not put A with C
    unless both are near the representative.  Time ~ images x candidates per bucket; memory ~ images."""
    n = len(prints)
    kind = prints.column("kind")
    digest = prints.column("digest")
    near, hits = _near(prints, kind, threshold, workers or os.cpu_count() or 1)
    plain = np.flatnonzero((kind != UNREADABLE) & (kind != OK)).astype(np.int32)
    group = near.astype(np.int64)
    if len(plain):  # flat and small images: identical bytes only
        group[plain] = _first_of(plain, digest[plain], n)
    return Groups(group, kind, digest == digest[group], hits, low_detail(prints.column("detail")))


def _near(prints: Prints, kind: np.ndarray, threshold: int, workers: int) -> tuple[np.ndarray, int]:
    """Representative row per row: the first row of its star's centre (each row alone unless near one).

    Nothing here depends on the rows' order (only on the fingerprints), so convert and inspect, which
    list the same images in different orders, build the same groups.  Arrays are dropped as soon as
    they are used: the search's peak is its index and a few int32 columns."""
    n = len(kind)
    near = np.arange(n, dtype=np.int32)
    ok = np.concatenate([np.flatnonzero(kind[lo: lo + CHUNK] == OK).astype(np.int32) + np.int32(lo)
                         for lo in range(0, n, CHUNK)] or [np.zeros(0, np.int32)])
    if not len(ok):
        return near, 0
    uniq, pos = _positions(prints.column("hash"), ok)  # identical hashes collapse here
    checks, chromas, areas = prints.column("check"), prints.column("chroma"), prints.column("area")
    node_check = np.full(len(uniq), np.iinfo(np.uint64).max, np.uint64)
    node_chroma = np.full(len(uniq), NO_CHROMA, np.uint32)  # the smallest word: a colour one where any
    for lo in range(0, len(ok), CHUNK):  # chunks: no column is copied whole
        np.minimum.at(node_check, pos[lo: lo + CHUNK], checks[ok[lo: lo + CHUNK]])
        np.minimum.at(node_chroma, pos[lo: lo + CHUNK], chromas[ok[lo: lo + CHUNK]])
    owner = np.full(n, -1, np.int32)  # per row: its hash's position in uniq (-1: not near-matched)
    for lo in range(0, len(ok), CHUNK):
        rows, at = ok[lo: lo + CHUNK], pos[lo: lo + CHUNK]
        agree = hamming(checks[rows], node_check[at]) <= CHECK_THRESHOLD  # the same hash, confirmed
        agree &= chroma_distance(chromas[rows], node_chroma[at]) <= CHROMA_THRESHOLD
        owner[rows[agree]] = at[agree]
    muted = _muted(owner, chromas, node_chroma)
    del pos, ok
    area = np.zeros(len(uniq), np.int64)
    for lo in range(0, n, CHUNK):
        at = owner[lo: lo + CHUNK]
        np.maximum.at(area, at[at >= 0], areas[lo: lo + CHUNK][at >= 0].astype(np.int64))
    for lo in range(0, len(uniq), CHUNK):  # colour before grey: a grey copy joins the colour image's star, and
        # as a centre it would gather colour strangers that each look like it in grey
        area[lo: lo + CHUNK] += (node_chroma[lo: lo + CHUNK] != NO_CHROMA).astype(np.int64) << 61
    np.negative(area, out=area)
    order = np.argsort(area, kind="stable")  # centres preferred: colour, then the largest image (the uncropped one)
    del area
    muted_nodes = owner[muted]
    owner[muted] = -1  # they query nothing, and are put with their hash's group at the end
    rank = np.empty(len(uniq), np.int32)
    for lo in range(0, len(uniq), CHUNK):
        rank[order[lo: lo + CHUNK]] = np.arange(lo, min(len(uniq), lo + CHUNK), dtype=np.int32)
    del order
    centre, hits = _stars(uniq, (node_check, node_chroma), rank, owner, prints, threshold, workers)
    del uniq, node_check, node_chroma, rank
    rows = np.flatnonzero(owner >= 0).astype(np.int32)
    first = np.full(len(centre), n, np.int32)  # per distinct hash: its first row (the group's name)
    np.minimum.at(first, owner[rows], rows)
    np.minimum.at(first, muted_nodes, muted)
    near[rows] = first[centre[owner[rows]]]
    near[muted] = first[centre[muted_nodes]]
    return near, hits


def _muted(owner: np.ndarray, chromas: np.ndarray, node_chroma: np.ndarray) -> np.ndarray:
    """Rows whose hash is another row's but with less colour (a grey copy of a colour image): their
    windows and turns would link strangers to that image (alike in grey, not in colour), so they
    query nothing and join their hash's group.  Few rows: a grey copy rarely hashes identically."""
    out = []
    for lo in range(0, len(owner), CHUNK):
        at = owner[lo: lo + CHUNK]
        rows = np.flatnonzero(at >= 0)
        mine, node = chromas[lo: lo + CHUNK][rows], node_chroma[at[rows]]
        less = np.zeros(len(rows), bool)
        for grey, coloured in zip(chroma_channels(mine), chroma_channels(node), strict=True):
            less |= (grey == UNKNOWN) & (coloured != UNKNOWN)
        out.append((rows[less] + lo).astype(np.int32))
    return np.concatenate(out) if out else np.zeros(0, np.int32)


def _stars(uniq: np.ndarray, confirm: tuple[np.ndarray, np.ndarray], rank: np.ndarray, owner: np.ndarray,
           prints: Prints, threshold: int, workers: int) -> tuple[np.ndarray, int]:
    """Centre per distinct hash.  Each round, every hash still unplaced finds the best-ranked one it
    is confirmed near (:func:`imgprep.splits.neardup.lead`); a hash near none better is a centre,
    and the hashes whose best neighbour is a centre join it.  The rest (their best neighbour joined
    another centre) go round again among themselves.  Deterministic: minima, not races."""
    m = len(uniq)
    node_check, node_chroma = confirm  # per distinct hash: its check hash and chroma word
    centre = active = None
    tables = balance(uniq)
    hits = 0
    for _ in range(ROUNDS):
        if active is None:  # the first round: every hash, no copies
            sub, index, icheck, ichroma, local_rank, row_owner = None, uniq, node_check, node_chroma, rank, owner
        else:
            sub = np.flatnonzero(active).astype(np.int32)
            local = np.full(m + 1, -1, np.int32)  # position among this round's hashes (-1: placed or none)
            local[sub] = np.arange(len(sub), dtype=np.int32)
            row_owner = local[owner]  # owner -1 reads local[-1] = -1
            del local
            index, icheck, ichroma = uniq[sub], node_check[sub], node_chroma[sub]
            local_rank = np.empty(len(sub), np.int32)  # ranks among this round's hashes
            local_rank[np.argsort(rank[sub])] = np.arange(len(sub), dtype=np.int32)
        k = len(index)
        leads = local_rank.copy()
        hits += lead(index, icheck, local_rank, index, icheck, None, leads, threshold, CHECK_THRESHOLD,
                     workers=workers, symmetric=True, tables=tables, ichroma=ichroma, qchroma=ichroma)
        alt_row = prints.column("alt_row")
        if len(alt_row):
            hits += lead(index, icheck, local_rank, prints.column("alt_hash"), prints.column("alt_check"),
                         row_owner[alt_row], leads, threshold, CHECK_THRESHOLD, workers=workers, tables=tables,
                         ichroma=ichroma, qchroma=prints.column("alt_chroma"))
        for lo in range(0, len(row_owner), WINDOW_BLOCK):  # the windows' columns held a block of rows at a time
            hi = min(len(row_owner), lo + WINDOW_BLOCK)
            hits += lead(index, icheck, local_rank, prints.column("windows", lo * WINDOWS, hi * WINDOWS),
                         prints.column("window_check", lo * WINDOWS, hi * WINDOWS), row_owner[lo:hi], leads,
                         window_threshold(threshold), CHECK_THRESHOLD, workers=workers, tables=tables,
                         ichroma=ichroma, qchroma=prints.column("window_chroma", lo * WINDOWS, hi * WINDOWS))
        del index, icheck, ichroma, row_owner
        order = np.empty(k, np.int32)  # rank -> local position (chunked, in place: no whole-length temporaries)
        for lo in range(0, k, CHUNK):
            order[local_rank[lo: lo + CHUNK]] = np.arange(lo, min(k, lo + CHUNK), dtype=np.int32)
        best = leads  # local position of each hash's best-ranked confirmed neighbour (itself if none)
        for lo in range(0, k, CHUNK):
            best[lo: lo + CHUNK] = order[leads[lo: lo + CHUNK]]
        placed = np.empty(k, bool)  # the best neighbour is a centre (a centre is its own best)
        for lo in range(0, k, CHUNK):
            placed[lo: lo + CHUNK] = best[best[lo: lo + CHUNK]] == best[lo: lo + CHUNK]
        del order, leads, local_rank
        if active is None:
            centre = np.arange(m, dtype=np.int32)
            np.copyto(centre, best, where=placed)
            active = ~placed
        else:
            centre[sub[placed]] = sub[best[placed]]
            active[sub[placed]] = False
        if placed.all():
            break
    if centre is None:  # no round ran: every image is its own centre
        centre = np.arange(m, dtype=np.int32)
    return centre, hits


def _first_of(rows: np.ndarray, keys: np.ndarray, n: int) -> np.ndarray:
    """For each row, the smallest row with the same key."""
    if not len(rows):
        return rows
    uniq, pos = _positions(keys, np.arange(len(keys)))
    first = np.full(len(uniq), n, np.int32)
    np.minimum.at(first, pos, rows)
    return first[pos]


def _positions(column: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct ``column[rows]`` ascending, int32 position of each among them): ``np.unique(
    return_inverse=True)`` in a fraction of its memory (one sorted copy, the rows read in chunks)."""
    ordered = column[rows]
    ordered.sort()
    keep = np.ones(len(ordered), bool)
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    count = 0
    for lo in range(0, len(ordered), CHUNK):  # the distinct keys moved down in place
        chunk = ordered[lo: lo + CHUNK][keep[lo: lo + CHUNK]]
        ordered[count: count + len(chunk)] = chunk
        count += len(chunk)
    del keep
    uniq = ordered[:count] if 4 * count >= 3 * len(ordered) else ordered[:count].copy()
    del ordered
    pos = np.empty(len(rows), np.int32)
    for lo in range(0, len(rows), CHUNK):
        pos[lo: lo + CHUNK] = np.searchsorted(uniq, column[rows[lo: lo + CHUNK]])
    return uniq, pos


def find(n: int, read: Reader, *, threshold: int = DEFAULT_THRESHOLD, workers: int | None = None,
         tick: Callable[[int], object] = lambda n: None, prints: Prints | None = None) -> Groups:
    """Fingerprint images ``0..n-1`` (``read(i)`` gives bytes or pixels) in threads, then group them.

    Unreadable images stay in groups of their own (the packer reports them later).  ``prints``:
    the (empty) columns to fill, kept by the caller (prepare writes them as the fingerprint file).
    """
    prints = Prints() if prints is None else prints

    def batch(lo: int) -> list[Measured | None]:
        out: list[Measured | None] = []
        for i in range(lo, min(n, lo + BATCH)):
            try:
                out.append(measure(read(i)))
            except (ImageError, ImgprepError, OSError):
                out.append(None)
        return out

    workers = workers or os.cpu_count() or 1
    with ThreadPoolExecutor(workers) as pool:
        for found in _ordered(pool, batch, range(0, n, BATCH), 4 * workers):
            for m in found:
                prints.add(m)
            tick(len(found))
    return find_groups(prints, threshold, workers=workers)


def _ordered(pool: ThreadPoolExecutor, fn: Callable[[int], Any], items: Iterable[int], ahead: int) -> Iterable[Any]:
    """``pool.map`` that keeps at most ``ahead`` tasks in flight (results stay in order)."""
    pending: list[Any] = []
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) > ahead:
            yield pending.pop(0).result()
    for future in pending:
        yield future.result()


# --- splits ----------------------------------------------------------------------------------------


def representatives(groups: Groups) -> np.ndarray:
    """The images that are split in same-split mode: one per group (its representative)."""
    return np.flatnonzero(groups.group == np.arange(len(groups.group)))


def expand(splits: Mapping[str, np.ndarray], groups: Groups) -> dict[str, np.ndarray]:
    """Splits of representatives -> splits of images: each copy right after its group's representative."""
    members = groups.members()
    return {name: np.array([j for i in idx.tolist() for j in members.get(i, (i,))], dtype=np.int64)
            for name, idx in splits.items()}


def regroup(splits: Mapping[str, np.ndarray], groups: Groups) -> dict[str, np.ndarray]:
    """For splits that came with the data: move copies into their group's representative's split."""
    where = {int(i): name for name, idx in splits.items() for i in idx.tolist()}
    out: dict[str, list[int]] = {name: [] for name in splits}
    for name, idx in splits.items():
        for i in idx.tolist():
            out[where.get(int(groups.group[i]), name)].append(i)
    return {name: np.array(idx, dtype=np.int64) for name, idx in out.items()}


def split_of(n: int, splits: Sequence[np.ndarray]) -> np.ndarray:
    """Split number per image (its position in ``splits``), -1 for an image in none."""
    where = np.full(n, -1, np.int64)
    for number, idx in enumerate(splits):
        where[np.asarray(idx, dtype=np.int64)] = number
    return where


# --- findings --------------------------------------------------------------------------------------


@dataclass
class Finding:
    """One group of two or more images, as every report shows it."""

    rows: list[int]  # representative first
    exact: bool  # all the same bytes
    splits: list[int]  # split numbers present, in split order
    leak: bool
    conflict: bool
    drop: list[int]  # rows outside the group's first split: what to drop to close the leak
    lookalike: bool = False  # its images have no detail beyond the thumbnail: copies or look-alikes, cannot tell


@dataclass
class Summary:
    images: int
    groups: int = 0
    grouped_images: int = 0
    exact_groups: int = 0
    leaks: int = 0
    leaked_images: int = 0  # images outside their group's first split
    conflicts: int = 0
    flat: int = 0
    small: int = 0
    unreadable: int = 0
    threshold: int = DEFAULT_THRESHOLD
    lookalike_groups: int = 0  # groups whose images have no detail beyond the thumbnail
    lookalike_images: int = 0
    lookalike_leaks: int = 0
    lookalike_conflicts: int = 0

    def lines(self, split_names: Sequence[str] | None = None) -> list[str]:
        """The summary every tool prints."""
        head = (f"duplicates: {self.groups:,} group(s) holding {self.grouped_images:,} of {self.images:,} images "
                f"({self.grouped_images - self.groups:,} copies; {self.exact_groups:,} group(s) of identical files)")
        if self.lookalike_groups:
            head += (f"; {self.lookalike_groups:,} of them look-alike group(s) holding {self.lookalike_images:,} "
                     f"images ({LOOKALIKE})")
        out = [head]
        if split_names is None or len(split_names) > 1:
            fix = "; convert/prepare --dedup same-split keeps each group in one split" if self.leaks else ""
            out.append(f"  leaks: {self.leaks:,} group(s) span splits ({self.leaked_images:,} image(s) outside "
                       f"their group's first split{fix}){_of_them(self.lookalike_leaks)}")
        out.append(f"  label conflicts: {self.conflicts:,} group(s) hold more than one label"
                   f"{_of_them(self.lookalike_conflicts)}")
        if self.flat:
            out.append(f"  {self.flat:,} low-information image(s) (flat or nearly): matched by identical bytes only")
        if self.small:
            out.append(f"  {self.small:,} image(s) under {NEAR_MIN_SIDE} px: matched by identical bytes only")
        if self.unreadable:
            out.append(f"  {self.unreadable:,} image(s) could not be read for the check")
        return out


LOOKALIKE = "images with no detail beyond the thumbnail: a copy cannot be told from a similar image"


def _of_them(count: int) -> str:
    return f"; {count:,} of them look-alike" if count else ""


def findings(groups: Groups, where: np.ndarray, labels: Sequence[Any] | np.ndarray,
             threshold: int = DEFAULT_THRESHOLD) -> tuple[Summary, list[Finding]]:
    """Groups -> (summary, one finding per group of two or more, leaks and conflicts first, big first).

    ``where``: split number per image (-1: in no split); ``labels``: a comparable label key per image.
    """
    out: list[Finding] = []
    keys = np.asarray(labels)
    for rows in groups.members().values():
        present = sorted({int(where[r]) for r in rows if where[r] >= 0})
        keep = present[0] if present else -1
        drop = [r for r in rows if where[r] >= 0 and where[r] != keep]
        distinct = {(keys[r].tobytes() if keys.ndim > 1 else keys[r].item()) for r in rows}
        exact = bool(groups.exact[rows].all())
        out.append(Finding(rows, exact, present, len(present) > 1, len(distinct) > 1, drop,
                           not exact and groups.lookalike(rows)))
    out.sort(key=lambda f: (not f.leak, not f.conflict, -len(f.rows), f.rows[0]))
    summary = Summary(
        images=len(groups.group) - groups.count(UNREADABLE), groups=len(out),
        grouped_images=sum(len(f.rows) for f in out),
        exact_groups=sum(f.exact for f in out), leaks=sum(f.leak for f in out),
        leaked_images=sum(len(f.drop) for f in out), conflicts=sum(f.conflict for f in out),
        flat=groups.count(FLAT), small=groups.count(SMALL), unreadable=groups.count(UNREADABLE), threshold=threshold,
        lookalike_groups=sum(f.lookalike for f in out), lookalike_images=sum(len(f.rows) for f in out if f.lookalike),
        lookalike_leaks=sum(f.lookalike and f.leak for f in out),
        lookalike_conflicts=sum(f.lookalike and f.conflict for f in out),
    )
    return summary, out


def report_lines(found: Iterable[Finding], ref: Callable[[int], dict[str, Any]]) -> Iterable[str]:
    """``--dedup-report``: one JSON object per group; ``action`` says which images to drop to close a leak."""
    for number, f in enumerate(found):
        drop = set(f.drop)
        images = [{**ref(r), "action": "drop" if r in drop else ("keep" if r == f.rows[0] else "copy")}
                  for r in f.rows]
        yield json.dumps({"group": number, "size": len(f.rows), "exact": f.exact, "lookalike": f.lookalike,
                          "leak": f.leak, "conflict": f.conflict, "representative": ref(f.rows[0]), "images": images},
                         sort_keys=False) + "\n"
