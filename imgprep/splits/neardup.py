"""Near-duplicate search over 64-bit perceptual hashes, straight into groups or stars.

Multi-index hashing (Norouzi et al., 2012), with the generalised pigeonhole: the 64 bits are cut
into bands, band ``i`` searched within ``r_i`` bits; with ``sum(r_i + 1) > threshold``, two
hashes within the threshold agree within ``r_i`` bits on at least one band, so a query only meets
the hashes in the buckets its bands reach by flipping at most ``r_i`` key bits.  How many bands,
their radii and which bits key them is laid out per search (:func:`layout`) from the data's own
bit frequencies (:func:`balance`) and size: a photo hash's almost-constant bits stay out of every
key, and the radius goes only where the pigeonhole needs it (8 bits: 2, 1, 1, 1 over four bands,
not 2 on each).  No list of pairs is ever built: :func:`lead` (what the duplicate groups use)
keeps, per distinct hash, the best rank of a hash it is near with the check hashes (and chroma
words, where given) agreeing (a lock-free minimum, the same for any number of threads);
:func:`merge` joins every hit into a
union-find (the old, chaining grouping, kept for benchmarks).  Identical hashes are collapsed
before the search starts.

Its cost grows faster than the number of hashes up to a few million of them: at 7 or 8 bits
the cheapest cover is four bands of at most 16 informative key bits, so a bucket, and the
entries each query compares, grow with the index; the longer keys of three bands keep the
buckets small but make each query visit several hundred of them, which costs more until the
index is several times larger (docs/dedup-search.md has the measurements and what was tried).

The search runs in the native core (``imgprep._native.dup_lead``/``dup_union``: C, GIL released,
one thread per core, one band's table at a time) when it is built, else in numpy (four bands of
16, radius ``threshold // 4`` each, a chunk of probes per whole-array step).  Why not faiss's
binary multi-index hash: its range search returns every pair it finds, which is what made
identical and flat images quadratic; it would also be a 30 MB dependency for one loop.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import combinations
from math import comb
from typing import NamedTuple

import numpy as np

from imgprep.imaging import native
from imgprep.imaging.phash import chroma_distance, hamming

BANDS = 4
BAND_BITS = 64 // BANDS
CHUNK = 1 << 14  # probes (queries x flip masks) per numpy pass: bounds the candidates held at once
# Chosen on real photos (benchmarks/bench_dedup.py prints the figures): with crops, borders and turns
# taken care of by the fingerprint, every kind of copy there lands within 7 bits, and 10 (the old
# default, when 5% crops had to be reached by the whole-image hash) groups twice as many chance
# look-alikes.  Any threshold up to the CLI's maximum (11) is exact: :func:`layout` spends the radius.
DEFAULT_THRESHOLD = 8
# Crop windows are compared with the whole-image hashes of the others at 7 bits: up to 7 bits the
# search flips one bit in each of four bands, from 8 two in one of them: windows are most of the
# queries, and at 10 bits the search costs several times as much for a tenth more crops found.
WINDOW_THRESHOLD = 7
# The check hash (imgprep.imaging.phash) must agree too before two images are linked.  Copies of
# every kind in tests/dupkinds.py land within it; two unrelated smooth images whose pHashes met by
# chance mostly do not (benchmarks/bench_dedup.py prints both).
CHECK_THRESHOLD = 12
# And the chroma words (16 bits per colour channel, only channels known on both sides counted, the
# threshold per 32 bits compared):
# grey-level look-alikes of other colours differ there, copies (re-encoded, resized, cropped, turned,
# saturation changed) do not (docs/check-hash.md has the figures).
CHROMA_THRESHOLD = 8


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
          *, workers: int = 1, symmetric: bool = False, counts: Iterable[int] | None = None) -> int:
    """Join ``owners[k]``'s set with every index hash within ``threshold`` bits of query ``k``.

    ``index``: distinct hashes, ascending (``np.unique``); ``owners``: one per query, or one per
    run of ``len(queries) // len(owners)`` queries (a row's crop windows), negative for none;
    ``parent``: a union-find over ``index`` (int32, each link to a smaller index), updated in
    place.  ``symmetric``: the queries are the index itself, each its own owner, so the native
    search compares each pair from one side only.  ``counts``: the band counts :func:`layout` may
    choose from (tests try each).  Returns the number of hits merged (pairs seen, none kept).
    """
    index = np.ascontiguousarray(index, dtype=np.uint64)
    queries = np.ascontiguousarray(queries, dtype=np.uint64)
    owners = np.ascontiguousarray(owners, dtype=np.int32)
    if not len(index) or not len(queries):
        return 0
    core = native._native
    if core is not None and native.available() and hasattr(core, "dup_union"):
        plan = layout(None, len(index), threshold, len(queries), counts)
        return int(core.dup_union(index, queries, owners, parent, threshold, workers, symmetric, plan.perm,
                                  plan.unperm, plan.bands))
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


def balance(hashes: np.ndarray, sample: int = 1 << 16) -> np.ndarray | None:
    """How often each bit is set (64 floats), measured on ``hashes`` (a sample of them): what the
    native search lays its bands out by (:func:`layout`).  A photo hash's DC and first-harmonic bits
    are almost always set: keyed on, they would crowd a band's buckets ~8x; left out of every key
    (but not out of the bands) they cost nothing.  None for fewer than two hashes."""
    if len(hashes) < 2:
        return None
    step = max(1, len(hashes) // sample)
    picked = np.ascontiguousarray(hashes[::step], dtype=np.uint64)
    return np.array([int(((picked >> np.uint64(b)) & np.uint64(1)).sum()) for b in range(64)]) / len(picked)


# The cost of a band, in comparisons of two hashes (measured with bench_dedup.py's photo bits on
# 2 cores, AVX-512): a bucket's offsets cost PROBE (a cache miss), shared by the queries of one
# block that have its key (BLOCK per block); a query's visit to a bucket costs VISIT, and each
# entry in the bucket one comparison.
PROBE = 27.0
VISIT = 2.0
BLOCK = 1 << 19  # the native core's queries per block
MAX_KEY = 22  # the native core's largest table: 2^22 buckets
MAX_PROBES = 4096  # the native core's most buckets visited per key and band
MAX_SEARCH_BANDS = 8


class Layout(NamedTuple):
    """A search's bit permutation (forward, inverse: 8 x 256 uint64 lookups) and its bands: int32
    rows of (offset, length, key bits, radius) in the permuted hash, the keys first in each band."""

    perm: np.ndarray
    unperm: np.ndarray
    bands: np.ndarray
    cost: float  # comparisons per query, estimated


def _probes(bits: int, radius: int) -> int:
    return sum(comb(bits, r) for r in range(min(radius, bits) + 1))


def layout(ones: np.ndarray | None, n: int, threshold: int, queries: int | None = None,
           counts: Iterable[int] | None = None) -> Layout:
    """The cheapest bands for searching ``n`` hashes within ``threshold`` bits, by the bits' measured
    frequencies (``ones``; None: every bit set half the time), with ``queries`` queries (default ``n``).

    Exact whatever it chooses: with radii ``r_i`` and ``sum(r_i + 1) > threshold``, two hashes within
    the threshold agree within ``r_i`` bits on some band (generalised pigeonhole).  More bands mean
    smaller radii (fewer buckets visited) but shorter keys (fuller buckets).  For each number of
    bands, the key lengths are found by descent on the estimated cost, the most informative bits
    dealt to the keys, and the bits no key takes (almost constant ones, or more than the index can
    fill: 2^key <= 2n) stay in a band but out of its key.  Fewer, longer bands win once the index
    outgrows what four 16-bit keys can spread (a few million hashes, by the measured costs): the
    entries compared per query then stop growing with the index.  ``counts``: the numbers of bands
    to weigh (default: 1 to 8)."""
    p = np.full(64, 0.5) if ones is None else np.clip(np.asarray(ones, dtype=np.float64), 0.0, 1.0)
    collide = p * p + (1 - p) * (1 - p)  # chance two hashes agree on the bit
    order = np.argsort(collide, kind="stable").tolist()  # most informative first
    batch = max(1, min(n if queries is None else queries, BLOCK))
    cap = int(min(MAX_KEY, max(1, np.floor(np.log2(max(2 * n, 2))))))
    best: Layout | None = None
    for m in counts or range(1, min(threshold + 1, MAX_SEARCH_BANDS) + 1):
        if not 1 <= m <= threshold + 1:  # more bands than the pigeonhole needs: a band of radius -1
            continue
        radii = [(threshold + 1) // m - 1 + (i < (threshold + 1) % m) for i in range(m)]
        half = float(np.exp(np.log(collide[order[: 64 // m]]).mean()))  # a typical key bit
        lengths = [min(range(cap + 1), key=lambda k, r=r: (_band_cost(k, r, n * half**k, batch)
                                                           if _probes(k, r) <= MAX_PROBES else np.inf, k))
                   for r in radii]  # each band's best alone, then trimmed to the 64 bits
        while sum(lengths) > 64:
            lengths[max(range(m), key=lambda i: (lengths[i], -i))] -= 1
        cost, keys = _cost(lengths, radii, order, collide, n, batch)
        improved = True
        while improved:  # one bit more or less on one key, while that lowers the cost
            improved = False
            for i in range(m):
                for step in (1, -1):
                    trial = lengths.copy()
                    trial[i] += step
                    if not 0 <= trial[i] <= cap or sum(trial) > 64 or _probes(trial[i], radii[i]) > MAX_PROBES:
                        continue
                    c, k = _cost(trial, radii, order, collide, n, batch)
                    if c < cost - 1e-9:
                        cost, keys, lengths, improved = c, k, trial, True
        if best is None or cost < best.cost:
            best = _lay(keys, radii, cost)
    if best is None:
        raise ValueError(f"no band count to weigh for threshold {threshold}")
    return best


def _band_cost(key: int, radius: int, fill: float, batch: int) -> float:
    return _probes(key, radius) * (PROBE * min(1.0, 2.0**key / batch) + VISIT + fill)


def _cost(lengths: list[int], radii: list[int], order: list[int], collide: np.ndarray,
          n: int, batch: int) -> tuple[float, list[list[int]]]:
    """Estimated comparisons per query with keys of these lengths, the most informative bits dealt
    round (snake order, so the keys come out about equally informative); and the keys."""
    keys: list[list[int]] = [[] for _ in lengths]
    for turn, bit in enumerate(order):
        open_ = [i for i in range(len(lengths)) if len(keys[i]) < lengths[i]]
        if not open_:
            break
        ring = open_ if (turn // len(open_)) % 2 == 0 else open_[::-1]
        keys[ring[turn % len(open_)]].append(bit)
    cost = sum(_band_cost(len(k), r, n * float(np.prod(collide[k])), batch) for k, r in zip(keys, radii, strict=True))
    return cost, keys


def _lay(keys: list[list[int]], radii: list[int], cost: float) -> Layout:
    """Bands in order, each its key bits then a share of the bits no key took."""
    keyed = {b for k in keys for b in k}
    members = [list(k) for k in keys]
    for bit in range(64):
        if bit not in keyed:  # to the band with fewest bits, so none is left empty
            members[min(range(len(members)), key=lambda i: (len(members[i]), i))].append(bit)
    dest = np.empty(64, np.int64)
    rows, at = [], 0
    for key, band, radius in zip(keys, members, radii, strict=True):
        for k, bit in enumerate(band):
            dest[bit] = at + k
        rows.append((at, len(band), len(key), radius))
        at += len(band)
    return Layout(_tables(dest), _tables(np.argsort(dest)), np.array(rows, np.int32), cost)


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
         symmetric: bool = False, tables: np.ndarray | None = None, counts: Iterable[int] | None = None,
         ichroma: np.ndarray | None = None, qchroma: np.ndarray | None = None,
         chroma_threshold: int = CHROMA_THRESHOLD) -> int:
    """:func:`merge`'s search, but a hit counts only when the check hashes (``icheck`` per index
    position, ``qcheck`` per query) are within ``check_threshold`` bits too, and instead of joining
    sets it lowers ``leads[x]`` (int32 per index position, updated in place) to the smallest
    ``rank`` of a position ``x`` is confirmed near, both ways.  ``owners`` None: each query is its
    own owner (``symmetric``: the index searched against itself).  ``tables``: :func:`balance`'s bit
    frequencies, which the native search lays its bands out by (the same pairs, found faster);
    ``counts`` as :func:`merge` takes them.  ``ichroma``/``qchroma`` (uint32 chroma words per index
    position / per query, or both None): a hit also needs them within ``chroma_threshold`` bits
    (:data:`CHROMA_THRESHOLD` unless given),
    counting the colour channels known on both sides only.  Returns the confirmed hits."""
    index = np.ascontiguousarray(index, dtype=np.uint64)
    queries = np.ascontiguousarray(queries, dtype=np.uint64)
    if owners is not None:
        owners = np.ascontiguousarray(owners, dtype=np.int32)
    icheck = np.ascontiguousarray(icheck, dtype=np.uint64)
    qcheck = np.ascontiguousarray(qcheck, dtype=np.uint64)
    rank = np.ascontiguousarray(rank, dtype=np.int32)
    if (ichroma is None) != (qchroma is None):
        raise ValueError("ichroma and qchroma: both or neither")
    colour = () if ichroma is None else (np.ascontiguousarray(ichroma, dtype=np.uint32),
                                         np.ascontiguousarray(qchroma, dtype=np.uint32), chroma_threshold)
    if not len(index) or not len(queries):
        return 0
    core = native._native
    if core is not None and native.available() and hasattr(core, "dup_lead"):
        plan = layout(tables, len(index), threshold, len(queries), counts)
        return int(core.dup_lead(index, icheck, rank, queries, qcheck, owners, leads, threshold, check_threshold,
                                 workers, symmetric, plan.perm, plan.unperm, plan.bands, *colour))
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
            if colour:
                confirmed &= chroma_distance(colour[1][rows[q]], colour[0][h]) <= chroma_threshold
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
