"""Near-duplicate search over 64-bit perceptual hashes, straight into groups or stars.

Multi-index hashing (Norouzi et al., 2012): the 64 bits are cut into ``BANDS`` = 4 bands of 16.
Two hashes within ``threshold`` bits of each other agree within ``r = threshold // BANDS`` bits
on at least one band (pigeonhole), so a query only meets the hashes in the buckets its bands
reach by flipping at most ``r`` bits (17 buckets per band for r = 1, 137 for r = 2).  No list
of pairs is ever built: :func:`lead` (what the duplicate groups use) keeps, per distinct hash,
the best rank of a hash it is near with the check hashes agreeing (a lock-free minimum, the same
for any number of threads); :func:`merge` joins every hit into a union-find (the old, chaining
grouping, kept for benchmarks).  Identical hashes are collapsed before the search starts, and a
bit permutation (:func:`balance`) spreads the almost-constant bits of photo hashes over the bands.

The search runs in the native core (``imgprep._native.dup_lead``/``dup_union``: C, GIL released,
one thread per core) when it is built, else in numpy (the same buckets, a chunk of probes per
whole-array step).  Why not faiss's binary multi-index hash: its range search returns every pair
it finds, which is what made identical and flat images quadratic; it would also be a 30 MB
dependency for one loop.
"""
from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations

import numpy as np

from imgprep.imaging import native
from imgprep.imaging.phash import hamming

BANDS = 4
BAND_BITS = 64 // BANDS
CHUNK = 1 << 14  # probes (queries x flip masks) per numpy pass: bounds the candidates held at once
# Chosen on real photos (benchmarks/bench_dedup.py prints the figures): with crops, borders and turns
# taken care of by the fingerprint, every kind of copy there lands within 7 bits, and 10 (the old
# default, when 5% crops had to be reached by the whole-image hash) groups twice as many chance
# look-alikes.  Thresholds up to 11 (the CLI's maximum) are covered by 4 bands with 2 flipped bits.
DEFAULT_THRESHOLD = 8
# Crop windows are compared with the whole-image hashes of the others at 7 bits: up to 7 bits the
# search flips one bit per band (17 buckets), from 8 two (137): windows are most of the queries, and
# at 10 bits the search costs five times as much for a tenth more crops found (bench_dedup.py).
WINDOW_THRESHOLD = 7
# The check hash (imgprep.imaging.phash) must agree too before two images are linked.  Copies of
# every kind in tests/dupkinds.py land within it; two unrelated smooth images whose pHashes met by
# chance mostly do not (benchmarks/bench_dedup.py prints both).
CHECK_THRESHOLD = 12


def window_threshold(threshold: int) -> int:
    """The crop windows' threshold for a whole-image ``threshold``."""
    return min(threshold, WINDOW_THRESHOLD)


def _masks(bits: int, radius: int) -> np.ndarray:
    out = [0]
    for r in range(1, radius + 1):
        out += [sum(1 << b for b in combo) for combo in combinations(range(bits), r)]
    return np.array(out, dtype=np.int32)


class HashIndex:
    """The bucket tables of ``hashes`` (uint64), built once, queried with any hashes (numpy path)."""

    def __init__(self, hashes: np.ndarray) -> None:
        self.hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
        self.orders: list[np.ndarray] = []
        self.starts: list[np.ndarray] = []
        for band in range(BANDS):
            keys = self._band(self.hashes, band)
            self.orders.append(np.argsort(keys, kind="stable").astype(np.int32))
            starts = np.zeros((1 << BAND_BITS) + 1, np.int32)
            np.cumsum(np.bincount(keys, minlength=1 << BAND_BITS), out=starts[1:])
            self.starts.append(starts)
            del keys

    @staticmethod
    def _band(hashes: np.ndarray, band: int) -> np.ndarray:
        return ((hashes >> np.uint64(band * BAND_BITS)) & np.uint64((1 << BAND_BITS) - 1)).astype(np.int32)

    def pairs(self, queries: np.ndarray, threshold: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``(query index, hash index, distance)`` arrays of every pair within ``threshold`` bits.

        A pair may come out more than once (from several bands).
        """
        queries = np.ascontiguousarray(queries, dtype=np.uint64)
        masks = _masks(BAND_BITS, threshold // BANDS)
        step_ = max(1, CHUNK // len(masks))
        for lo in range(0, len(queries), step_):
            chunk = queries[lo: lo + step_]
            for band in range(BANDS):
                probe = (self._band(chunk, band)[:, None] ^ masks[None, :]).ravel()
                starts = self.starts[band]
                first, last = starts[probe], starts[probe + 1]
                counts = last - first
                hit = np.flatnonzero(counts).astype(np.int32)
                if not len(hit):
                    continue
                counts, first = counts[hit], first[hit]
                total = int(counts.sum())
                q = np.repeat(hit // len(masks), counts)
                # position of each candidate inside its bucket: 0, 1, ... per probe
                step = np.arange(total, dtype=np.int32) - np.repeat(np.cumsum(counts, dtype=np.int32) - counts, counts)
                h = self.orders[band][np.repeat(first, counts) + step]
                dist = hamming(chunk[q], self.hashes[h])
                keep = dist <= threshold
                yield q[keep] + lo, h[keep].astype(np.int64), dist[keep]


def roots(parent: np.ndarray) -> np.ndarray:
    """Every item's root (smallest index of its set) of a union-find whose links point downwards."""
    out = parent.copy()
    while True:
        nxt = out[out]
        if np.array_equal(nxt, out):
            return out
        out = nxt


def merge(index: np.ndarray, queries: np.ndarray, owners: np.ndarray, parent: np.ndarray, threshold: int,
          *, workers: int = 1, symmetric: bool = False) -> int:
    """Join ``owners[k]``'s set with every index hash within ``threshold`` bits of query ``k``.

    ``index``: distinct hashes, ascending (``np.unique``); ``owners``: one per query, or one per
    run of ``len(queries) // len(owners)`` queries (a row's crop windows), negative for none;
    ``parent``: a union-find over ``index`` (int32, each link to a smaller index), updated in
    place.  ``symmetric``: the queries are the index itself, each its own owner, so the native
    search compares each pair from one side only.  Returns the number of hits merged (pairs seen,
    none kept).
    """
    index = np.ascontiguousarray(index, dtype=np.uint64)
    queries = np.ascontiguousarray(queries, dtype=np.uint64)
    owners = np.ascontiguousarray(owners, dtype=np.int32)
    if not len(index) or not len(queries):
        return 0
    core = native._native
    if core is not None and native.available() and hasattr(core, "dup_union"):
        return int(core.dup_union(index, queries, owners, parent, threshold, workers, symmetric))
    per = len(queries) // len(owners)
    hits = 0
    for lo in range(0, len(owners), CHUNK):  # bounded temporaries: one chunk of owners' queries at a time
        own = owners[lo: lo + CHUNK]
        keep = np.flatnonzero(own >= 0)
        rows = (keep[:, None] * per + np.arange(per)).ravel() + lo * per
        hits += _merge_numpy(index, queries[rows], np.repeat(own[keep], per), parent, threshold)
    return hits


def _find(parent: np.ndarray, x: int) -> int:
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = int(parent[x])
    return x


def _merge_numpy(index: np.ndarray, queries: np.ndarray, owners: np.ndarray, parent: np.ndarray,
                 threshold: int) -> int:
    hits = 0
    for q, h, _ in HashIndex(index).pairs(queries, threshold):
        a = owners[q].astype(np.int64)
        keep = a != h
        a, h = a[keep], h[keep]
        hits += len(a)
        if len(a) > 4096:  # a big group's hits mostly join sets already joined: drop those in bulk
            current = roots(parent)
            differ = current[a] != current[h]
            a, h = a[differ], h[differ]
        for i, j in zip(a.tolist(), h.tolist(), strict=True):
            ri, rj = _find(parent, i), _find(parent, j)
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
    return hits


def balance(hashes: np.ndarray, sample: int = 1 << 16) -> tuple[np.ndarray, np.ndarray] | None:
    """Tables (forward, inverse: 8 x 256 uint64 each) of a bit permutation that gives every band about
    the same entropy, measured on ``hashes`` (a sample of them).  A permutation applied to every hash
    and query keeps every distance, so the search finds the same pairs; but a photo hash's DC and
    first-harmonic bits are almost always set, and left in one band they crowd its buckets ~8x."""
    if len(hashes) < 2:
        return None
    step = max(1, len(hashes) // sample)
    picked = np.ascontiguousarray(hashes[::step], dtype=np.uint64)
    ones = np.array([int(((picked >> np.uint64(b)) & np.uint64(1)).sum()) for b in range(64)]) / len(picked)
    p = np.clip(ones, 1e-9, 1 - 1e-9)
    entropy = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    snake = [band if (k // BANDS) % 2 == 0 else BANDS - 1 - band for k in range(64) for band in [k % BANDS]]
    dest = np.empty(64, np.int64)
    filled = [0] * BANDS
    for k, bit in enumerate(np.argsort(-entropy, kind="stable")):  # richest bits dealt round, snake order
        band = snake[k]
        dest[bit] = band * BAND_BITS + filled[band]
        filled[band] += 1
    return _tables(dest), _tables(np.argsort(dest))


def _tables(dest: np.ndarray) -> np.ndarray:
    """8 x 256 lookups: table[k][v] = byte k's value v with each bit moved to ``dest`` (OR the 8)."""
    values = np.arange(256, dtype=np.uint64)
    out = np.zeros((8, 256), np.uint64)
    for bit in range(64):
        k, j = divmod(bit, 8)
        out[k] |= ((values >> np.uint64(j)) & np.uint64(1)) << np.uint64(dest[bit])
    return out


# The arrays of one search, as the native dup_lead takes them: grouping them would copy them per call.
def lead(index: np.ndarray, icheck: np.ndarray, rank: np.ndarray, queries: np.ndarray, qcheck: np.ndarray,  # noqa: PLR0913
         owners: np.ndarray | None, leads: np.ndarray, threshold: int, check_threshold: int, *, workers: int = 1,
         symmetric: bool = False, tables: tuple[np.ndarray, np.ndarray] | None = None) -> int:
    """:func:`merge`'s search, but a hit counts only when the check hashes (``icheck`` per index
    position, ``qcheck`` per query) are within ``check_threshold`` bits too, and instead of joining
    sets it lowers ``leads[x]`` (int32 per index position, updated in place) to the smallest
    ``rank`` of a position ``x`` is confirmed near, both ways.  ``owners`` None: each query is its
    own owner (``symmetric``: the index searched against itself).  ``tables``: :func:`balance`'s bit
    permutation for the native search (the same pairs, found faster).  Returns the confirmed hits."""
    index = np.ascontiguousarray(index, dtype=np.uint64)
    queries = np.ascontiguousarray(queries, dtype=np.uint64)
    if owners is not None:
        owners = np.ascontiguousarray(owners, dtype=np.int32)
    icheck = np.ascontiguousarray(icheck, dtype=np.uint64)
    qcheck = np.ascontiguousarray(qcheck, dtype=np.uint64)
    rank = np.ascontiguousarray(rank, dtype=np.int32)
    if not len(index) or not len(queries):
        return 0
    core = native._native
    if core is not None and native.available() and hasattr(core, "dup_lead"):
        perm, unperm = tables if tables is not None else (None, None)
        return int(core.dup_lead(index, icheck, rank, queries, qcheck, owners, leads, threshold, check_threshold,
                                 workers, symmetric, perm, unperm))
    if owners is None:
        owners = np.arange(len(queries), dtype=np.int32)
    per = len(queries) // len(owners)
    hits = 0
    table = HashIndex(index)
    for lo in range(0, len(owners), CHUNK):
        own = owners[lo: lo + CHUNK]
        keep = np.flatnonzero(own >= 0)
        rows = (keep[:, None] * per + np.arange(per)).ravel() + lo * per
        mine, checks = np.repeat(own[keep], per), qcheck[rows]
        for q, h, _ in table.pairs(queries[rows], threshold):
            a = mine[q].astype(np.int64)
            confirmed = (a != h) & (hamming(checks[q], icheck[h]) <= check_threshold)
            a, h = a[confirmed], h[confirmed]
            hits += len(a)
            np.minimum.at(leads, a, rank[h])
            np.minimum.at(leads, h, rank[a])
    return hits


def exhaustive(index: np.ndarray, queries: np.ndarray, owners: np.ndarray, threshold: int) -> set[tuple[int, int]]:
    """Every (owner, index position) pair within ``threshold`` bits, comparing all of them (tests, benchmarks);
    ``owners`` as :func:`merge` takes them."""
    per = len(queries) // len(owners)
    out: set[tuple[int, int]] = set()
    for k in range(len(queries)):
        owner = int(owners[k // per])
        if owner >= 0:
            out.update((owner, int(j)) for j in np.flatnonzero(hamming(queries[k], index) <= threshold) if j != owner)
    return out
