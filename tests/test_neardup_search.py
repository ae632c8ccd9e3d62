"""The near-duplicate search's bands: laid out per search from the data's bit frequencies, any
number of them, and always exact (the same pairs as comparing every hash with every other)."""

from __future__ import annotations

import numpy as np
import pytest

from imgprep.imaging import native
from imgprep.imaging.phash import hamming
from imgprep.splits import neardup

PHOTO = np.full(64, 0.5)
PHOTO[[63, 62]] = 1.0  # a photo hash's DC and first harmonics: (almost) always set
PHOTO[[55, 45]] = [0.98, 0.3]

CASES = [(t, m) for t in (3, 7, 8, 11) for m in range(1, 9) if m <= t + 1]


def _draw(rng: np.random.Generator, k: int, ones: np.ndarray) -> np.ndarray:
    bits = rng.random((k, 64)) < ones
    return (bits.astype(np.uint64) << np.arange(64, dtype=np.uint64)).sum(1, dtype=np.uint64)


def _planted(rng: np.random.Generator, threshold: int, n: int = 1600) -> np.ndarray:
    """Distinct photo-like hashes, a third of them copies of others 0..threshold+1 bits away."""
    index = _draw(rng, n, PHOTO)
    for k in range(n // 3):
        flips = rng.choice(64, k % (threshold + 2), replace=False)
        index[n - 1 - k] = index[k] ^ np.uint64(sum(1 << int(b) for b in flips))
    return np.unique(index)


def _core():
    if native._native is None or not native.available():
        pytest.fail(f"the native search is not built: {native.describe()}")
    return native._native


@pytest.fixture(params=["avx512", "scalar"])
def scan(request, monkeypatch):
    """Both candidate scans of the native core (the AVX-512 one where the CPU has it)."""
    monkeypatch.setenv("IMGPREP_DUP_SIMD", "1" if request.param == "avx512" else "0")
    return request.param


def _adversarial(hashes: np.ndarray, plan: neardup.Layout, threshold: int, rng: np.random.Generator) -> np.ndarray:
    """Copies exactly ``threshold`` bits away, the flips spread so that band after band (from a
    random one) differs by one bit more than its radius: only the band the flips run out in is
    within its radius.  A layout with sum(r + 1) <= threshold misses every one of these."""
    moved = _permute(plan.perm, hashes)
    bands = plan.bands.tolist()
    for i in range(len(moved)):
        budget, first = threshold, int(rng.integers(len(bands)))
        for j in range(len(bands)):
            off, length, key, radius = bands[(first + j) % len(bands)]
            take = min(radius + 1, budget, length)
            for bit in rng.choice(key if key >= take else length, take, replace=False):
                moved[i] ^= np.uint64(1 << (off + int(bit)))
            budget -= take
        assert budget == 0
    return _permute(plan.unperm, moved)


@pytest.mark.parametrize(("threshold", "bands"), CASES)
def test_every_band_count_finds_exactly_the_pairs_of_an_exhaustive_search(threshold, bands, scan):
    _core()
    rng = np.random.default_rng(100 * threshold + bands)
    index = _planted(rng, threshold)
    n = len(index)
    plan = neardup.layout(PHOTO, n, threshold, n, [bands])  # what the search lays out: pairs that test it
    index[n - n // 6:] = _adversarial(index[: n // 6], plan, threshold, rng)
    index = np.unique(index)
    assert len(index) == n
    icheck = np.where(rng.random(n) < 0.7, 0, rng.integers(0, 2**63, n)).astype(np.uint64)  # some refuse
    rank = rng.permutation(n).astype(np.int32)
    windows = index[rng.integers(0, n, 2 * 600)]  # 2 per row, as crop windows
    windows = _adversarial(windows, neardup.layout(PHOTO, n, threshold, len(windows), [bands]), threshold, rng)
    wcheck = np.zeros(len(windows), np.uint64)
    owner = rng.integers(-1, n, 600).astype(np.int32)  # -1: a row with nothing to query
    leads = rank.copy()
    neardup.lead(index, icheck, rank, index, icheck, None, leads, threshold, 14, workers=2, symmetric=True,
                 tables=PHOTO, counts=[bands])
    neardup.lead(index, icheck, rank, windows, wcheck, owner, leads, threshold, 14, workers=2, tables=PHOTO,
                 counts=[bands])

    expected = rank.copy()
    near = (hamming(index[:, None], index[None, :]) <= threshold) & (hamming(icheck[:, None], icheck[None, :]) <= 14)
    np.fill_diagonal(near, False)
    for i in np.flatnonzero(near.any(1)):
        expected[i] = min(expected[i], rank[near[i]].min())
    for k, w in enumerate(windows):
        a = owner[k // 2]
        hit = np.flatnonzero((hamming(w, index) <= threshold) & (hamming(wcheck[k], icheck) <= 14))
        for j in hit[hit != a] if a >= 0 else ():
            expected[a] = min(expected[a], rank[j])
            expected[j] = min(expected[j], rank[a])
    assert (expected != rank).sum() > 50
    assert np.array_equal(leads, expected)


@pytest.mark.parametrize("bands", [1, 3, 4, 6])
def test_union_search_with_any_band_count_joins_what_brute_force_joins(bands, scan):
    _core()
    rng = np.random.default_rng(bands)
    index = _planted(rng, 8, 1200)
    n = len(index)
    index[n - n // 6:] = _adversarial(index[: n // 6], neardup.layout(None, n, 8, n, [bands]), 8, rng)
    index = np.unique(index)
    assert len(index) == n
    extra = _adversarial(index[rng.integers(0, n, 300)], neardup.layout(None, n, 8, 300, [bands]), 8, rng)
    owners = rng.integers(0, n, 300).astype(np.int32)  # query-only hashes, one per owner
    parent = np.arange(n, dtype=np.int32)
    neardup.merge(index, index, np.arange(n, dtype=np.int32), parent, 8, workers=3, symmetric=True, counts=[bands])
    neardup.merge(index, extra, owners, parent, 8, workers=3, counts=[bands])
    expected = np.arange(n, dtype=np.int32)
    owners_all = np.concatenate([np.arange(n), owners]).astype(np.int32)
    for a, b in sorted(neardup.exhaustive(index, np.concatenate([index, extra]), owners_all, 8)):
        ra, rb = neardup._find(expected, a), neardup._find(expected, b)
        expected[max(ra, rb)] = min(ra, rb)
    assert len(np.unique(neardup.roots(expected))) < n - 100
    assert np.array_equal(neardup.roots(parent), neardup.roots(expected))


@pytest.mark.parametrize("n", [2, 1000, 100_000, 1_330_000, 20_000_000])
@pytest.mark.parametrize("threshold", [0, 1, 7, 8, 11, 19])
@pytest.mark.parametrize("ones", [None, PHOTO], ids=["uniform", "photo"])
def test_every_layout_covers_the_64_bits_and_reaches_past_the_threshold(n, threshold, ones):
    plan = neardup.layout(ones, n, threshold, 12 * n)
    off, length, key, radius = plan.bands.T
    assert off[0] == 0 and np.array_equal(off[1:], (off + length)[:-1]) and (off + length)[-1] == 64
    assert (key <= length).all() and (key <= neardup.MAX_KEY).all() and (2.0**key <= max(4, 2 * n)).all()
    assert (radius + 1).sum() > threshold  # the generalised pigeonhole: no pair within the threshold is missed
    assert all(neardup._probes(int(k), int(r)) <= neardup.MAX_PROBES for k, r in zip(key, radius, strict=True))
    h = np.random.default_rng(0).integers(0, 2**64 - 1, 50, dtype=np.uint64, endpoint=True)
    moved = _permute(plan.perm, h)
    assert np.array_equal(_permute(plan.unperm, moved), h)
    assert np.array_equal(hamming(moved[:, None], moved[None, :]), hamming(h[:, None], h[None, :]))


def _permute(table: np.ndarray, h: np.ndarray) -> np.ndarray:
    out = np.zeros(len(h), np.uint64)
    for k in range(8):
        out |= table[k][((h >> np.uint64(8 * k)) & np.uint64(0xFF)).astype(np.int64)]
    return out


def _keyed_bits(plan: neardup.Layout) -> set[int]:
    """The original bit numbers the bands' keys are made of."""
    out = set()
    for off, _, key, _ in plan.bands.tolist():
        for p in range(off, off + key):
            out |= {int(b) for b in range(64) if int(_permute(plan.perm, np.array([1 << b], np.uint64))[0]) == 1 << p}
    return out


def _old_layout(ones: np.ndarray, threshold: int) -> neardup.Layout:
    """The layout the search had before: 4 bands of 16 bits, every bit keyed, radius threshold // 4,
    the bits dealt round by entropy (snake order) so each band gets one of the poor ones."""
    p = np.clip(ones, 1e-9, 1 - 1e-9)
    entropy = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    dest, filled = np.empty(64, np.int64), [0] * 4
    for k, bit in enumerate(np.argsort(-entropy, kind="stable")):
        band = k % 4 if (k // 4) % 2 == 0 else 3 - k % 4
        dest[bit] = 16 * band + filled[band]
        filled[band] += 1
    bands = np.array([(16 * b, 16, 16, threshold // 4) for b in range(4)], np.int32)
    return neardup.Layout(neardup._tables(dest), neardup._tables(np.argsort(dest)), bands, 0.0)


def _compared(hashes: np.ndarray, plan: neardup.Layout) -> float:
    """Entries in the buckets one query visits, averaged over the queries (the hashes themselves)."""
    moved = _permute(plan.perm, hashes)
    total = 0.0
    for off, _, key, radius in plan.bands.tolist():
        keys = ((moved >> np.uint64(off)) & np.uint64((1 << key) - 1)).astype(np.int64)
        count = np.bincount(keys, minlength=1 << key)
        masks = neardup._masks(key, radius)
        total += sum(count[keys ^ m].sum() for m in masks.tolist()) / len(hashes)
    return total


@pytest.mark.parametrize(("threshold", "gain"), [(7, 0.98), (8, 3.0)])
def test_photo_bits_stay_out_of_the_keys_and_fewer_entries_are_compared(threshold, gain):
    """A photo hash's nearly constant bits would crowd every bucket of a band keyed on them: the
    layout leaves them out of the keys, and spends the radius only where the pigeonhole needs it
    (sum(r + 1) > t, not r = t // 4 on every band), so a query compares fewer entries (measured on
    drawn hashes, with the layout the search uses) than with the old fixed four bands of 16: a
    third at 8 bits; at 7 bits (radius 1 on each of four bands either way) about as many."""
    n = 300_000
    drawn = _draw(np.random.default_rng(1), n, PHOTO)
    ones = neardup.balance(drawn)
    plan = neardup.layout(ones, n, threshold, 12 * n)
    assert not {63, 62, 55} & _keyed_bits(plan)
    assert _compared(drawn, plan) * gain <= _compared(drawn, _old_layout(ones, threshold))


def test_the_native_search_refuses_a_layout_that_could_miss_pairs():
    core = _core()
    index = np.arange(10, dtype=np.uint64)
    parent = np.arange(10, dtype=np.int32)
    plan = neardup.layout(None, 10, 7)
    short = np.array([[0, 32, 16, 1], [32, 32, 16, 2]], np.int32)  # sum(r + 1) = 5: a 7-bit pair can hide
    gap = np.array([[0, 32, 16, 3], [33, 31, 16, 4]], np.int32)  # bit 32 in no band
    wide = np.array([[0, 32, 33, 4], [32, 32, 16, 4]], np.int32)  # a key longer than its band
    for bands in (short, gap, wide):
        with pytest.raises(ValueError, match="bands must cover"):
            core.dup_union(index, index, parent, parent, 7, 1, True, plan.perm, plan.unperm, bands)


def test_the_search_does_not_depend_on_workers_or_the_order_rows_come_in():
    _core()
    rng = np.random.default_rng(5)
    index = _planted(rng, 8, 3000)
    n = len(index)
    icheck = np.zeros(n, np.uint64)
    rank = rng.permutation(n).astype(np.int32)
    windows = index[rng.integers(0, n, 3 * 900)] ^ np.uint64(0b11 << 50)
    owner = rng.integers(-1, n, 900).astype(np.int32)
    ones = neardup.balance(index)

    def search(workers: int, shuffle: np.ndarray) -> tuple[np.ndarray, int]:
        rows = windows.reshape(-1, 3)[shuffle].ravel()
        leads = rank.copy()
        hits = neardup.lead(index, icheck, rank, index, icheck, None, leads, 8, 12, workers=workers,
                            symmetric=True, tables=ones)
        hits += neardup.lead(index, icheck, rank, rows, np.zeros(len(rows), np.uint64), owner[shuffle], leads, 7, 12,
                             workers=workers, tables=ones)
        return leads, hits

    first, hits = search(1, np.arange(900))
    for workers in (2, 5):
        again, again_hits = search(workers, rng.permutation(900))
        assert np.array_equal(again, first) and again_hits == hits
    assert (first != rank).sum() > 100


def _chroma_words(rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
    """Chroma words around ``base``: 0..10 bits flipped across the two halves, a channel or both
    unknown for some (skipped by the comparison), so hits fall on both sides of the threshold."""
    words = base.copy()
    for i in range(len(words)):
        for bit in rng.choice(32, int(rng.integers(0, 11)), replace=False):
            words[i] ^= np.uint32(1 << int(bit))
    unknown = rng.random(len(words))
    words[unknown < 0.1] |= np.uint32(0xFFFF)  # Cr unknown
    words[(unknown >= 0.1) & (unknown < 0.2)] |= np.uint32(0xFFFF0000)  # Cb unknown
    return words


@pytest.mark.parametrize("path", ["avx512", "scalar", "numpy"])
def test_chroma_words_confirm_hits_exactly_as_brute_force(path, monkeypatch):
    """A hit counts only when the chroma words agree too (the channels known on both sides within the
    chroma threshold): the search keeps, per hash, the same best rank as comparing every pair."""
    from imgprep.imaging.phash import chroma_distance

    if path == "numpy":
        monkeypatch.setenv("IMGPREP_NATIVE", "0")
    else:
        _core()
        monkeypatch.setenv("IMGPREP_DUP_SIMD", "1" if path == "avx512" else "0")
    rng = np.random.default_rng(29)
    threshold, limit = 8, 6
    index = _planted(rng, threshold, 1200)
    n = len(index)
    icheck = np.zeros(n, np.uint64)
    ichroma = _chroma_words(rng, np.full(n, 0x12345678, np.uint32))
    rank = rng.permutation(n).astype(np.int32)
    windows = index[rng.integers(0, n, 2 * 500)] ^ np.uint64(0b11 << 20)  # 2 per row, 2 bits off
    wcheck = np.zeros(len(windows), np.uint64)
    wchroma = _chroma_words(rng, np.full(len(windows), 0x12345678, np.uint32))
    owner = rng.integers(-1, n, 500).astype(np.int32)
    leads = rank.copy()
    neardup.lead(index, icheck, rank, index, icheck, None, leads, threshold, 14, workers=2, symmetric=True,
                 tables=PHOTO, ichroma=ichroma, qchroma=ichroma, chroma_threshold=limit)
    neardup.lead(index, icheck, rank, windows, wcheck, owner, leads, threshold, 14, workers=2, tables=PHOTO,
                 ichroma=ichroma, qchroma=wchroma, chroma_threshold=limit)

    expected = rank.copy()
    near = (hamming(index[:, None], index[None, :]) <= threshold) & (
        chroma_distance(ichroma[:, None], ichroma[None, :]) <= limit)
    np.fill_diagonal(near, False)
    for i in np.flatnonzero(near.any(1)):
        expected[i] = min(expected[i], rank[near[i]].min())
    for k, w in enumerate(windows):
        a = owner[k // 2]
        hit = np.flatnonzero((hamming(w, index) <= threshold) & (chroma_distance(wchroma[k], ichroma) <= limit))
        for j in hit[hit != a] if a >= 0 else ():
            expected[a] = min(expected[a], rank[j])
            expected[j] = min(expected[j], rank[a])
    unchecked = (hamming(index[:, None], index[None, :]) <= threshold).sum() - n
    assert 0 < near.sum() < unchecked  # the words refused some hits and confirmed others
    assert np.array_equal(leads, expected)
