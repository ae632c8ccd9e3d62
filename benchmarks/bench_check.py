"""Which check hash confirms copies and refuses chance look-alikes: the measurement behind phash's check.

A pair of images is linked when a hash of one (whole image, alternate orientation or crop window)
is within the threshold of the other's whole-image hash **and** their check hashes are within
``CHECK_THRESHOLD`` bits.  Smooth random fields (tests/fields.py) crowd the hash space: many
distinct pairs meet the hash rule, and only the check refuses them.  This script computes, for
several candidate *views* of each box's 32x32 thumbnail (each view's 8x8 DCT median bits, in the
box's canonical orientation, as the check), on the same images:

- **chance**: among ``--fields`` distinct fields, the pairs that meet the hash rule, and how many
  of them each view's check lets through (per pair of images);
- **copies**: every kind of tests/dupkinds.py made of real photos (benchmarks/corpus.py; two views
  per photo), of the same photos at contrast x0.3, and of fields: how many each view still links;
- the distribution of check bits (the smallest over the boxes that meet the hash rule) for both.

Views: ``abs`` |t - mean| (the check before), ``abs2`` ||t - mean| - mean'| (folded twice: the check
now), ``abs3`` (three times), ``grad`` the gradient magnitude, ``sign`` t > mean.

The chroma section (``--chroma-only`` skips the views above) measures the colour check on the
fingerprints themselves (:func:`imgprep.splits.dedup.measure`): for each level under which a colour
channel is unknown (``CHROMA_FLAT``), the chroma bits of the strangers that meet the hash rule and
the check, and of every copy, then how many of each every chroma threshold links.

    python benchmarks/bench_check.py --fields 3000 --photos 60    # about two minutes on 2 cores
    python benchmarks/bench_check.py --fields 300 --photos 4      # a tiny check
    python benchmarks/bench_check.py --chroma-only --fields 3000 --photos 60
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from common import load_average  # noqa: E402

from imgprep.imaging import phash as P  # noqa: E402
from imgprep.imaging.decode import decode  # noqa: E402
from imgprep.splits import dedup, neardup  # noqa: E402

VIEWS = ("abs", "abs2", "abs3", "grad", "sign")
SHIPPED = "abs2"


def _views(t: np.ndarray) -> dict[str, np.ndarray]:
    def fold(x: np.ndarray) -> np.ndarray:
        return np.abs(x - x.mean(axis=(1, 2), keepdims=True))

    gy, gx = np.gradient(t, axis=(1, 2))
    once = fold(t)
    return {"abs": once, "abs2": fold(once), "abs3": fold(fold(once)), "grad": np.hypot(gx, gy),
            "sign": (t > t.mean(axis=(1, 2), keepdims=True)).astype(float)}


def _orientations(c: np.ndarray) -> list[tuple[bool, bool, bool]]:
    """The canonical orientation (transpose, vflip, hflip) of a raw block, then its alternates (phash's rule)."""
    t = abs(c[1, 0]) > abs(c[0, 1])
    b = c.T if t else c
    out = [(t, b[1, 0] < 0, b[0, 1] < 0)]
    ac = c.ravel()[1:]
    margin = P.AMBIGUOUS * float(np.sqrt((ac * ac).sum() / 63))
    h1, v1 = c[0, 1], c[1, 0]
    if min(abs(h1), abs(v1), abs(abs(v1) - abs(h1))) < margin:
        for tr in [abs(v1) > abs(h1)] + ([abs(v1) <= abs(h1)] if abs(abs(v1) - abs(h1)) < margin else []):
            b = c.T if tr else c
            h, v = b[0, 1], b[1, 0]
            out += [(tr, vf, hf) for hf in [h < 0] + ([h >= 0] if abs(h) < margin else [])
                    for vf in [v < 0] + ([v >= 0] if abs(v) < margin else [])]
    return out


def _turn(block: np.ndarray, o: tuple[bool, bool, bool]) -> np.ndarray:
    b = block.T if o[0] else block
    return b * np.outer(P._ODD if o[1] else 1.0, P._ODD if o[2] else 1.0)


def boxes_of(blob: bytes) -> dict[str, np.ndarray] | None:
    """Per box row (whole image, its alternates, the windows): the hash, each view's check, is-window."""
    found = decode(blob, min_side=P.THUMB_MIN_SIDE, keep_luma=True)
    luma = found.luma
    if min(found.width, found.height) >= 2 * min(luma.shape) and dedup._bordered(luma):
        luma = decode(blob, min_side=2 * P.THUMB_MIN_SIDE, keep_luma=True).luma
    luma = np.ascontiguousarray(luma)
    top, bottom, left, right = P.content_box(luma)
    if min(bottom - top, right - left) < P.MIN_CONTENT:
        return None
    boxes = P._boxes(top, bottom, left, right)
    thumbs = P._cells(P._integral(P._clip_outliers(luma, top, bottom, left, right)), boxes)
    if thumbs[0].std() < P.FLAT_STD:
        return None
    main = P._D @ thumbs @ P._D.T
    views = {k: P._D @ v @ P._D.T for k, v in _views(thumbs).items()}
    rows: dict[str, list] = {"hash": [], "win": [], **{k: [] for k in views}}
    for b in range(len(boxes)):
        turns = _orientations(main[b])
        for o in turns if b == 0 else turns[:1]:
            rows["hash"].append(_turn(main[b], o))
            rows["win"].append(b > 0)
            for k, v in views.items():
                rows[k].append(_turn(v[b], o))
    out = {k: P._bits(np.array(v)) for k, v in rows.items() if k != "win"}
    out["win"] = np.array(rows["win"])
    return out


def _meets(x: dict, y: dict, view: str, threshold: int) -> np.ndarray:
    """Per box row of x: its hash meets y's whole-image hash; the check bits where it does (else 99)."""
    limit = np.where(x["win"], neardup.window_threshold(threshold), threshold)
    near = P.hamming(x["hash"], y["hash"][0]) <= limit
    return np.where(near, P.hamming(x[view], y[view][0]), 99)


def chance(prints: list[dict], view: str, threshold: int) -> np.ndarray:
    """Smallest check bits per distinct pair that meets the hash rule (either way round)."""
    whole = np.array([p["hash"][0] for p in prints], np.uint64)
    check = np.array([p[view][0] for p in prints], np.uint64)
    best: dict[tuple[int, int], int] = {}
    for i, p in enumerate(prints):
        limit = np.where(p["win"], neardup.window_threshold(threshold), threshold)[:, None]
        near = P.hamming(p["hash"][:, None], whole[None, :]) <= limit
        near[:, i] = False
        bits = np.where(near, P.hamming(p[view][:, None], check[None, :]), 99).min(0)
        for j in np.flatnonzero(bits < 99):
            key = (min(i, j), max(i, j))
            best[key] = min(best.get(key, 99), int(bits[j]))
    return np.array(list(best.values()), int)


def _views_of(count: int) -> list:
    """(source kind, PIL image): real photo views (two per photo), dim copies of half, and fields."""
    import fields
    from PIL import Image, ImageEnhance

    views: list[tuple[str, Image.Image]] = []
    try:
        import corpus

        for path in corpus.find_photos(corpus.fetch_photo_packages()):
            with Image.open(path) as img:
                img = img.convert("RGB")
                img.thumbnail((1200, 1200))
                w, h = img.size
                views += [("photo", img.crop((0, 0, w * 7 // 10, h))), ("photo", img.crop((w * 3 // 10, 0, w, h)))]
    except Exception as exc:  # noqa: BLE001 - offline: synthetic photos stand in, and the table says so
        import imgfactory

        print(f"(real photos unavailable: {exc}; tests/imgfactory.py photos instead)")
        views = [("photo", imgfactory.photo(560, 420, seed=s)) for s in range(count)]
    views = [(k, v.resize((560, round(560 * v.height / v.width)), Image.Resampling.LANCZOS)) for k, v in views][:count]
    views += [("dim photo", ImageEnhance.Contrast(v).enhance(0.3)) for _, v in views[: count // 2]]
    views += [("field", Image.fromarray(fields.field(1_000_000 + s))) for s in range(count)]
    return views


def copies(count: int) -> list[tuple[str, str, dict | None, dict | None]]:
    """(source kind, copy kind, original's boxes, copy's boxes) for every copy kind of every image."""
    import dupkinds

    out = []
    for source, view in _views_of(count):
        base = dupkinds.original(view)
        original = boxes_of(base)
        out += [(source, kind, original, boxes_of(dupkinds.copy(view, kind, base))) for kind in dupkinds.KINDS]
    return out


# --- the colour check -------------------------------------------------------------------------------

CHROMA_THRESHOLDS = (2, 4, 5, 6, 7, 8, 10, 12, 32)  # 32: no colour check
CHROMA_FLATS = (1.0, 2.0, 4.0)


def _rows(fp: P.Fingerprint) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(hashes, checks, chroma words, is-window) of every box row of a fingerprint, whole image first."""
    hashes = np.array((fp.hash, *fp.alternates, *fp.windows), np.uint64)
    win = np.arange(len(hashes)) > len(fp.alternates)
    return hashes, np.array(fp.checks, np.uint64), np.array(fp.chromas, np.uint32), win


def _colour_bits(x: P.Fingerprint, y: P.Fingerprint, threshold: int) -> int:
    """Smallest chroma bits over the box rows of either that meet the other's whole hash and check (99: none)."""
    best = 99
    for a, b in ((x, y), (y, x)):
        hashes, checks, chromas, win = _rows(a)
        limit = np.where(win, neardup.window_threshold(threshold), threshold)
        near = (P.hamming(hashes, b.hash) <= limit) & (P.hamming(checks, b.check) <= neardup.CHECK_THRESHOLD)
        if near.any():
            best = min(best, int(P.chroma_distance(chromas[near], b.chromas[0]).min()))
    return best


def _colour_chance(prints: list[P.Fingerprint], threshold: int) -> np.ndarray:
    """Per distinct pair that meets the hash rule and the check: its smallest chroma bits."""
    whole = np.array([p.hash for p in prints], np.uint64)
    check = np.array([p.check for p in prints], np.uint64)
    colour = np.array([p.chromas[0] for p in prints], np.uint32)
    best: dict[tuple[int, int], int] = {}
    for i, p in enumerate(prints):
        hashes, checks, chromas, win = _rows(p)
        limit = np.where(win, neardup.window_threshold(threshold), threshold)[:, None]
        near = (P.hamming(hashes[:, None], whole[None, :]) <= limit) & (
            P.hamming(checks[:, None], check[None, :]) <= neardup.CHECK_THRESHOLD)
        near[:, i] = False
        if not near.any():
            continue
        bits = np.where(near, P.chroma_distance(chromas[:, None], colour[None, :]), 99).min(0)
        for j in np.flatnonzero(bits < 99):
            key = (min(i, j), max(i, j))
            best[key] = min(best.get(key, 99), int(bits[j]))
    return np.array(list(best.values()), int)


def chroma_section(field_blobs: list[bytes], made: list[tuple[str, str, bytes, bytes]], threshold: int) -> None:
    """The colour check's tables: strangers and copies linked per chroma threshold, per flat level."""
    shipped_flat, shipped = P.CHROMA_FLAT, neardup.CHROMA_THRESHOLD
    pairs = len(field_blobs) * (len(field_blobs) - 1) // 2
    per_kind: dict[str, dict[tuple[str, str], list[int]]] = {}
    print(f"\n## The colour check: {len(field_blobs):,} fields ({pairs:,} pairs), {len(made):,} copies; "
          f"shipped: flat level {shipped_flat}, chroma threshold {shipped}\n")
    print("| flat level | chroma threshold | strangers linked | per pair | copies linked (photo / dim / field) |")
    print("|---:|---:|---:|---:|---:|")
    try:
        for flat in CHROMA_FLATS:
            P.CHROMA_FLAT = flat
            fps = [m.print for m in map(dedup.measure, field_blobs) if m.print is not None and not m.print.flat]
            near = _colour_chance(fps, threshold)
            bits: dict[tuple[str, str], list[int]] = {}
            for source, kind, o, c in made:
                a, b = dedup.measure(o).print, dedup.measure(c).print
                ok = a is not None and b is not None and not a.flat and not b.flat
                bits.setdefault((source, kind), []).append(_colour_bits(a, b, threshold) if ok else 99)
            per_kind[str(flat)] = bits
            for t in CHROMA_THRESHOLDS:
                linked = [sum(int(x <= t) for (s, _), v in bits.items() if s == src for x in v)
                          for src in ("photo", "dim photo", "field")]
                mark = "**" if (flat, t) == (shipped_flat, shipped) else ""
                print(f"| {mark}{flat}{mark} | {mark}{t}{mark} | {int((near <= t).sum()):,} | "
                      f"{(near <= t).sum() / max(pairs, 1):.2e} | {' / '.join(map(str, linked))} |")
    finally:
        P.CHROMA_FLAT = shipped_flat
    bits = per_kind[str(shipped_flat)]
    print(f"\n### Copies linked per kind: without the colour check / with it (flat {shipped_flat}, "
          f"threshold {shipped})\n")
    print("| kind | photo | dim photo | field |")
    print("|---|---:|---:|---:|")
    for kind in dict.fromkeys(k for _, k in bits):
        got = {s: bits.get((s, kind), []) for s in ("photo", "dim photo", "field")}
        cells = [f"{sum(x <= 32 for x in v)} / {sum(x <= shipped for x in v)}" for v in got.values()]
        print(f"| {kind} | " + " | ".join(cells) + " |")


def copy_blobs(count: int) -> list[tuple[str, str, bytes, bytes]]:
    """(source kind, copy kind, original's bytes, copy's bytes): :func:`copies` before fingerprinting."""
    import dupkinds

    made = []
    for source, view in _views_of(count):
        base = dupkinds.original(view)
        made += [(source, kind, base, dupkinds.copy(view, kind, base)) for kind in dupkinds.KINDS]
    return made


def _hist(bits: np.ndarray) -> str:
    h = np.bincount(np.minimum(bits, 24), minlength=26)
    return " | ".join(str(int(h[b] + h[b + 1])) for b in range(0, 24, 2)) + f" | {int(h[24:].sum())}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fields", type=int, default=3000)
    parser.add_argument("--photos", type=int, default=60, help="photo views (fields: as many; dim photos: half)")
    parser.add_argument("--threshold", type=int, default=neardup.DEFAULT_THRESHOLD)
    parser.add_argument("--chroma-only", action="store_true", help="only the colour check's tables")
    args = parser.parse_args(argv)
    import fields
    from PIL import Image

    def jpeg(pixels: np.ndarray) -> bytes:
        import io

        out = io.BytesIO()
        Image.fromarray(pixels).save(out, "JPEG", quality=90)
        return out.getvalue()

    field_blobs = [jpeg(fields.field(s)) for s in range(args.fields)]
    if args.chroma_only:
        print(f"load average {load_average()}")
        chroma_section(field_blobs, copy_blobs(args.photos), args.threshold)
        return 0
    prints = [p for p in map(boxes_of, field_blobs) if p is not None]
    pairs = len(prints) * (len(prints) - 1) // 2
    made = copies(args.photos)
    limit = neardup.CHECK_THRESHOLD
    print(f"# Check views: {len(prints):,} smooth fields ({pairs:,} pairs), {len(made):,} copies; hash threshold "
          f"{args.threshold}, check threshold {limit}; load average {load_average()}\n")
    print("| view | strangers meeting the hash rule | ... and the check | per pair "
          "| copies linked (photo / dim / field) |")
    print("|---|---:|---:|---:|---:|")
    found: dict[str, dict[tuple[str, str], list[bool]]] = {}
    dists: dict[str, tuple[np.ndarray, dict[str, list[int]]]] = {}
    for view in VIEWS:
        near = chance(prints, view, args.threshold)
        per_source: dict[str, list[int]] = {}
        for source, kind, o, c in made:
            bits = 99 if o is None or c is None else int(min(_meets(o, c, view, args.threshold).min(),
                                                              _meets(c, o, view, args.threshold).min()))
            found.setdefault(view, {}).setdefault((source, kind), []).append(bits <= limit)
            if bits < 99:
                per_source.setdefault(source, []).append(bits)
        dists[view] = near, per_source
        linked = [sum(sum(v) for (s, _), v in found[view].items() if s == src)
                  for src in ("photo", "dim photo", "field")]
        name = f"**{view}** (shipped)" if view == SHIPPED else view
        print(f"| {name} | {len(near):,} | {int((near <= limit).sum()):,} | {(near <= limit).sum() / pairs:.2e} | "
              f"{' / '.join(map(str, linked))} |")
    for view in ("abs", SHIPPED):
        near, per_source = dists[view]
        print(f"\n## {view}: check bits, the smallest over the boxes that meet the hash rule\n")
        print("| pairs | " + " | ".join(f"{b}-{b + 1}" for b in range(0, 24, 2)) + " | 24+ |")
        print("|---" * 14 + "|")
        print(f"| strangers (fields) | {_hist(near)} |")
        for source, bits in per_source.items():
            print(f"| copies ({source}) | {_hist(np.array(bits))} |")
    print("\n## Copies linked per kind: the check before (abs) / now (abs2)\n")
    print("| kind | photo | dim photo | field |")
    print("|---|---:|---:|---:|")
    kinds = dict.fromkeys(k for _, k in found["abs"])
    for kind in kinds:
        cells = [f"{sum(found['abs'][(s, kind)])} / {sum(found[SHIPPED][(s, kind)])}"
                 for s in ("photo", "dim photo", "field")]
        print(f"| {kind} | " + " | ".join(cells) + " |")
    chroma_section(field_blobs, copy_blobs(args.photos), args.threshold)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
