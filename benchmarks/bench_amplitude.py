"""Would a fourth confirmation, the ratios of the low-frequency amplitudes, refuse the strangers that
pass today?  The measurement behind docs/check-hash.md's "Amplitude ratios: measured, not shipped".

A link today needs the 64-bit hash, the check hash and the chroma word of one box to meet the other
image's.  All three are median-sign bits: two smooth fields whose coefficients have the same signs
relative to their medians meet however different their sizes.  A candidate here keeps, per box
(canonical orientation, like the hash), some of the luma block's AC coefficients divided by an L2
norm, as floats or quantised to 4 bits (what a 32-bit word beside the chroma word could hold), and
compares them by L-inf or L1.  On the same images:

- **strangers**: among ``--fields`` distinct smooth fields (tests/fields.py), the pairs that meet the
  hash rule and the check (*h+c*), and those that meet the chroma words too (*all three*: what links
  strangers today); per candidate and threshold, how many still pass;
- **copies**: every kind of tests/dupkinds.py of real photos, of the same at contrast x0.3 and of
  fields (benchmark/bench_check.py's set); how many that pass all three the candidate would lose.

Each candidate's thresholds are the ones that lose no copy, then about 0.25%, 0.5% and 1% of them.

    python benchmarks/bench_amplitude.py --fields 24000 --photos 30   # about five minutes on 2 cores
    python benchmarks/bench_amplitude.py --fields 400 --photos 2      # a tiny check
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from bench_check import copy_blobs  # noqa: E402
from common import load_average  # noqa: E402

from imgprep.imaging import phash as P  # noqa: E402
from imgprep.imaging.decode import decode  # noqa: E402
from imgprep.splits import dedup, neardup  # noqa: E402

_ZIGZAG = [u * P.LOW + v for u, v in sorted(((u, v) for u in range(P.LOW) for v in range(P.LOW)),
                                             key=lambda t: (t[0] + t[1], t[0] if (t[0] + t[1]) % 2 else t[1]))][1:]


def rows_of(blob: bytes) -> dict[str, np.ndarray] | None:
    """Per box row (whole image, its alternates, the windows): hash, check, chroma word, is-window and
    the canonical 8x8 luma block (phash's numpy reference, step for step)."""
    found = decode(blob, min_side=P.THUMB_MIN_SIDE, keep_luma=True)
    luma, chroma = found.luma, found.chroma
    if luma is None or min(found.width, found.height) < P.NEAR_MIN_SIDE:
        return None
    if min(found.width, found.height) >= 2 * min(luma.shape) and dedup._bordered(luma):
        finer = decode(blob, min_side=2 * P.THUMB_MIN_SIDE, keep_luma=True)
        luma, chroma = finer.luma, finer.chroma
    luma = np.ascontiguousarray(luma, dtype=np.uint8)
    top, bottom, left, right = P.content_box(luma)
    if bottom - top < P.MIN_CONTENT or right - left < P.MIN_CONTENT:
        return None
    boxes = P._boxes(top, bottom, left, right)
    coeffs, checks, spread = P._thumbnails(P._clip_outliers(luma, top, bottom, left, right), boxes)
    if spread < P.FLAT_STD:
        return None
    colour, unknown = P._colour_blocks(chroma, boxes)
    main, check, turned = P._canonical(coeffs, checks, chroma=colour)
    others = P._alternates(coeffs[0], checks[0], colour[0])
    blocks = np.array([main[0], *(a for a, _, _ in others), *main[1:]])
    cks = np.array([check[0], *(c for _, c, _ in others), *check[1:]])
    cols = np.array([turned[0], *(c for _, _, c in others), *turned[1:]])
    unk = np.concatenate([unknown[:1], np.repeat(unknown[:1], len(others), 0), unknown[1:]])
    return {"hash": P._bits(blocks), "check": P._bits(cks), "chroma": P._chroma_words(cols, unk),
            "win": np.arange(len(blocks)) > len(others), "coeffs": blocks.reshape(len(blocks), -1).astype(np.float64)}


def _normalised(count: int, by_all: bool) -> Callable[[np.ndarray], np.ndarray]:
    def feature(co: np.ndarray) -> np.ndarray:
        v = co[:, _ZIGZAG[:count]]
        norm = np.linalg.norm(co[:, _ZIGZAG] if by_all else v, axis=1, keepdims=True)
        return v / np.maximum(norm, 1e-9)
    return feature


def _quantised(count: int, by_all: bool, scale: float) -> Callable[[np.ndarray], np.ndarray]:
    """4-bit signed levels (-8..7) of the normalised coefficients: ``count`` x 4 bits."""
    inner = _normalised(count, by_all)
    return lambda co: np.clip(np.rint(inner(co) * scale), -8, 7)


# name: (feature, what it is)
CANDIDATES: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str]] = {
    "zz8": (_normalised(8, False), "8 lowest AC (zigzag) / their L2 norm, float"),
    "ac8": (_normalised(8, True), "8 lowest AC / the 63 AC's L2 norm, float"),
    "ac14": (_normalised(14, True), "14 lowest AC / the 63 AC's L2 norm, float"),
    "zz63": (_normalised(63, False), "all 63 AC / their L2 norm, float"),
    "q8": (_quantised(8, False, 8.0), "zz8 x 8, 4-bit (32 bits)"),
    "q8a16": (_quantised(8, True, 16.0), "ac8 x 16, 4-bit (32 bits)"),
    "q8a32": (_quantised(8, True, 32.0), "ac8 x 32, 4-bit (32 bits)"),
    "q6a16": (_quantised(6, True, 16.0), "6 lowest AC, ac x 16, 4-bit (24 bits)"),
}
METRICS = ("linf", "l1")


def _passing(x: dict, y: dict, threshold: int, colour: bool) -> np.ndarray:
    """Box rows of x whose hash meets y's whole hash and whose check (and chroma word) meet y's."""
    limit = np.where(x["win"], neardup.window_threshold(threshold), threshold)
    ok = P.hamming(x["hash"], y["hash"][0]) <= limit
    ok &= P.hamming(x["check"], y["check"][0]) <= neardup.CHECK_THRESHOLD
    if colour:
        ok &= P.chroma_distance(x["chroma"], y["chroma"][0]) <= neardup.CHROMA_THRESHOLD
    return ok


def distances(x: dict, y: dict, threshold: int, colour: bool) -> dict[tuple[str, str], float] | None:
    """Per (candidate, metric): the smallest distance over the box rows (either way round) that pass
    today's rules; None when none does."""
    out: dict[tuple[str, str], float] = {}
    seen = False
    for a, b in ((x, y), (y, x)):
        ok = _passing(a, b, threshold, colour)
        if not ok.any():
            continue
        seen = True
        for name, (feature, _) in CANDIDATES.items():
            diff = np.abs(feature(a["coeffs"][ok]) - feature(b["coeffs"][:1]))
            for metric, d in (("linf", diff.max(1)), ("l1", diff.sum(1))):
                out[(name, metric)] = min(out.get((name, metric), np.inf), float(d.min()))
    return out if seen else None


def stranger_pairs(rows: list[dict], threshold: int) -> list[tuple[int, int]]:
    """Pairs of distinct fields that meet the hash rule and the check (either way round)."""
    whole = np.array([r["hash"][0] for r in rows], np.uint64)
    check = np.array([r["check"][0] for r in rows], np.uint64)
    pairs: set[tuple[int, int]] = set()
    for i, r in enumerate(rows):
        limit = np.where(r["win"], neardup.window_threshold(threshold), threshold)[:, None]
        near = (P.hamming(r["hash"][:, None], whole[None, :]) <= limit) & (
            P.hamming(r["check"][:, None], check[None, :]) <= neardup.CHECK_THRESHOLD)
        near[:, i] = False
        pairs.update((min(i, j), max(i, j)) for j in np.flatnonzero(near.any(0)).tolist())
    return sorted(pairs)


def _jpeg(pixels: np.ndarray) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fields", type=int, default=24000)
    parser.add_argument("--photos", type=int, default=30, help="photo views (fields: as many; dim photos: half)")
    parser.add_argument("--threshold", type=int, default=neardup.DEFAULT_THRESHOLD)
    args = parser.parse_args(argv)
    import fields

    rows = [r for r in (rows_of(_jpeg(fields.field(s))) for s in range(args.fields)) if r is not None]
    for r, s in zip(rows[:20], range(20), strict=False):  # the reference is the shipped fingerprint
        fp = dedup.measure(_jpeg(fields.field(s))).print
        assert fp is None or fp.flat or (int(r["hash"][0]), int(r["check"][0])) == (fp.hash, fp.check)
    near = stranger_pairs(rows, args.threshold)
    hc = [d for d in (distances(rows[i], rows[j], args.threshold, False) for i, j in near) if d]
    all3 = [d for d in (distances(rows[i], rows[j], args.threshold, True) for i, j in near) if d]
    copies = []
    for source, _, original, copy in copy_blobs(args.photos):
        a, b = rows_of(original), rows_of(copy)
        found = distances(a, b, args.threshold, True) if a is not None and b is not None else None
        if found:
            copies.append((source, found))
    pairs = len(rows) * (len(rows) - 1) // 2
    print(f"# Amplitude ratios as a fourth confirmation: {len(rows):,} fields ({pairs:,} pairs), "
          f"{len(copies):,} copies linked today; load average {load_average()}\n")
    print(f"Strangers meeting hash + check: {len(hc):,}; hash + check + chroma (linked today): {len(all3):,}\n")
    print("| candidate | metric | threshold | copies lost (photo / dim / field) | strangers h+c | "
          "strangers all three | cut |")
    print("|---|---|---:|---:|---:|---:|---:|")
    sources = ("photo", "dim photo", "field")
    for name, (_, what) in CANDIDATES.items():
        for metric in METRICS:
            values = np.array([d[(name, metric)] for _, d in copies])
            for lose in (0.0, 0.0025, 0.005, 0.01):
                t = float(np.quantile(values, 1 - lose, method="higher")) if len(values) else 0.0
                lost = [sum(d[(name, metric)] > t for s, d in copies if s == src) for src in sources]
                s_hc = sum(d[(name, metric)] <= t for d in hc)
                s_all = sum(d[(name, metric)] <= t for d in all3)
                cut = f"{len(all3) / s_all:.1f}x" if s_all else "all"
                print(f"| {name} ({what}) | {metric} | {t:.3g} | {' / '.join(map(str, lost))} | {s_hc:,} | "
                      f"{s_all:,} | {cut} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
