"""Near-duplicate search over 64-bit perceptual hashes, and grouping of what it finds.

Multi-index hashing (Norouzi et al., 2012): the 64 bits are cut into ``BANDS`` = 4 bands of 16.
Two hashes within ``threshold`` bits of each other agree within ``r = threshold // BANDS`` bits
on at least one band (pigeonhole), so a query only meets the hashes in the buckets its bands
reach by flipping at most ``r`` bits: ``sum_{i<=r} C(16, i)`` buckets per band (137 for r = 2).
Cost: O(n * BANDS * C(16, r)) probes plus the candidates they find, n * BANDS * C(16, r) *
n / 2^16 for well-spread hashes — linear while n stays below ~2^16, and for larger n a fixed
fraction of all pairs (about 1/60 of them with r = 2; a mirror query doubles it), where a plain
comparison of all pairs checks every one.  Each pass is a whole-array numpy step over
``CHUNK`` probes (queries x flip masks) of one band.

Memory: the hashes and their mirrors' hashes (16 bytes per image), per band a bucket-sorted
order of int32 (16 bytes per image), 4 x 256 KiB of bucket starts, and the candidates of one
pass (bounded by ``CHUNK``, not by n).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations

import numpy as np

from imgprep.imaging.phash import hamming

BANDS = 4
BAND_BITS = 64 // BANDS
CHUNK = 1 << 14  # probes (queries x flip masks) per pass: bounds the candidates held at once
# Chosen on real photos (benchmarks/bench_verify.py prints the figures): resized, re-encoded and
# mirrored copies land 0-6 bits away, 5% crops up to 10, distinct photos 16 or more.  Thresholds 8 to 11 (the CLI's
# maximum) are covered by the 4-band search with 2 flipped bits per band.
DEFAULT_THRESHOLD = 10


def _masks(bits: int, radius: int) -> np.ndarray:
    out = [0]
    for r in range(1, radius + 1):
        out += [sum(1 << b for b in combo) for combo in combinations(range(bits), r)]
    return np.array(out, dtype=np.int32)


class HashIndex:
    """The bucket tables of ``hashes`` (uint64), built once, queried with any hashes."""

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

        A pair may come out more than once (from several bands); callers keep the best.
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


def near_pairs(hashes: np.ndarray, mirrors: np.ndarray | None = None, threshold: int = DEFAULT_THRESHOLD
               ) -> list[tuple[int, int, int]]:
    """Every pair ``(i, j, distance)``, i < j, whose hashes (or i's mirror and j) are within ``threshold``."""
    index = HashIndex(hashes)
    best: dict[tuple[int, int], int] = {}
    for queries in (hashes, mirrors) if mirrors is not None else (hashes,):
        for q, h, d in index.pairs(queries, threshold):
            keep = q != h
            for i, j, dist in zip(q[keep].tolist(), h[keep].tolist(), d[keep].tolist(), strict=True):
                key = (i, j) if i < j else (j, i)
                if dist < best.get(key, 65):
                    best[key] = dist
    return sorted((i, j, d) for (i, j), d in best.items())


def exact_groups(digests: np.ndarray) -> list[list[int]]:
    """Indices sharing a content digest, groups of two or more, in index order."""
    order = np.argsort(digests, kind="stable")
    sorted_ = digests[order]
    cuts = np.flatnonzero(sorted_[1:] != sorted_[:-1]) + 1
    return sorted(sorted(g.tolist()) for g in np.split(order, cuts) if len(g) > 1)


def components(n: int, pairs: list[tuple[int, int]]) -> np.ndarray:
    """Group id per item (the smallest member's index) of the graph the pairs make: union-find."""
    parent = np.arange(n)

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = int(parent[x])
        return x

    for i, j in pairs:
        a, b = root(i), root(j)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return np.array([root(i) for i in range(n)])
