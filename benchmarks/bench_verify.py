"""``imgprep verify`` and ``inspect``'s duplicate search, side by side with what they are held to.

1. verify vs pack on the small real-photo corpus: ``imgprep pack --resize 256`` and ``imgprep
   verify`` of its output, the same worker count, interleaved rounds, median wall time of the whole
   command (interpreter start included).  Target: verify >= 1.5x pack's images/s.
2. The near-duplicate search (multi-index hashing) on 25k, 50k and 100k random 64-bit hashes with
   mirrors: time, and peak memory traced by tracemalloc per image (the hashes included).
   Target: sub-quadratic, <= 64 bytes per image.
3. The hash on real photos (the corpus's source photos, Debian wallpapers): distances of planted
   copies (resized to 80%, re-encoded at q70, mirrored, cropped by 5% and by 10%, all of these at
   once) and of distinct photos, and precision/recall per threshold.

    .venv/bin/python benchmarks/bench_verify.py [--runs 3 | --quick] [--workers 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import time
import tracemalloc
from itertools import combinations
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BENCH_DIR, bench_env, interleaved, load_average, machine_info, run_measured, table
from corpus import fetch_photo_packages, find_photos, get_corpus

TARGET_RATIO = 1.5
TARGET_BYTES = 64


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def bench_verify(runs: int, workers: int) -> dict:
    corpus = get_corpus("small")
    work = BENCH_DIR / "verify"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = bench_env()
    imgprep = [sys.executable, "-m", "imgprep"]
    out = work / "small"
    pack = [*imgprep, "pack", str(corpus.lst), "--root", str(corpus.root), "-o", str(out), "--resize", "256",
            "-j", str(workers), "-q"]
    verify = [*imgprep, "verify", f"{out}.rec", "-j", str(workers), "--num-classes", "20"]
    first = run_measured(pack, env=env)
    if first.rc:
        raise RuntimeError(first.output_tail)
    results = interleaved({"pack --resize 256": lambda: run_measured(pack, env=env),
                           "verify": lambda: run_measured(verify, env=env)}, runs, log=log)
    rows, doc = [], {}
    for name, m in results.items():
        rate = corpus.count / m.wall_s
        doc[name] = {"wall_s": round(m.wall_s, 3), "images_per_s": round(rate, 1), "cpu_s": m.runs[0].cpu_s}
        rows.append([name, f"{m.wall_s:.2f}", f"{rate:,.0f}"])
    ratio = doc["verify"]["images_per_s"] / doc["pack --resize 256"]["images_per_s"]
    doc["ratio"] = round(ratio, 2)
    print(f"\n## verify vs pack: {corpus.count} images, -j {workers}, median of {runs}\n")
    print(table(["command", "wall s", "images/s"], rows))
    print(f"\nverify / pack = {ratio:.2f}x (target >= {TARGET_RATIO}x)")
    return doc


def bench_search() -> dict:
    from imgprep.splits.neardup import near_pairs

    rng = np.random.default_rng(0)
    rows, doc = [], {}
    for n in (25_000, 50_000, 100_000):
        tracemalloc.start()
        hashes = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
        mirrors = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
        t0 = time.perf_counter()
        pairs = near_pairs(hashes, mirrors, 10)
        wall = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        doc[n] = {"wall_s": round(wall, 2), "bytes_per_image": round(peak / n, 1), "pairs": len(pairs),
                  "all_pairs": n * (n - 1) // 2}
        rows.append([f"{n:,}", f"{wall:.2f}", f"{peak / n:.1f}", f"{n * (n - 1) // 2:,}", len(pairs)])
    print("\n## near-duplicate search (multi-index hashing, 4 x 16-bit bands, threshold 10, with mirrors)\n")
    print(table(["hashes", "wall s", "peak bytes/image", "pairs a full scan compares", "pairs found"], rows))
    print(f"\n100k vs 25k: {doc[100_000]['wall_s'] / doc[25_000]['wall_s']:.1f}x the time for 4x the hashes "
          f"(a full scan: 16x); target <= {TARGET_BYTES} bytes/image")
    return doc


def _copies(img):
    from PIL import Image, ImageOps

    w, h = img.size

    def crop(f):
        dx, dy = round(w * f / 2), round(h * f / 2)
        return img.crop((dx, dy, w - dx, h - dy))

    return {
        "resized 80%": (img.resize((w * 4 // 5, h * 4 // 5), Image.BILINEAR), 90),
        "q70": (img, 70),
        "mirrored": (ImageOps.mirror(img), 90),
        "cropped 5%": (crop(0.05), 90),
        "cropped 10%": (crop(0.10), 90),
        "all at once": (ImageOps.mirror(crop(0.05)).resize((w * 3 // 4, h * 3 // 4), Image.BILINEAR), 70),
    }


def bench_hash() -> dict:
    from PIL import Image

    from imgprep.imaging.decode import decode
    from imgprep.imaging.phash import THUMB_MIN_SIDE, hamming, phash_pair

    def fingerprint(img, quality):
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality)
        return phash_pair(decode(buf.getvalue(), min_side=THUMB_MIN_SIDE, keep_luma=True).luma)

    def distance(a, b):
        return min(int(hamming(a[0], b[0])), int(hamming(a[1], b[0])))

    photos = find_photos(fetch_photo_packages())
    originals, copies = [], {}
    for path in photos:
        with Image.open(path) as src:
            img = src.convert("RGB")
        img.thumbnail((640, 640))
        originals.append(fingerprint(img, 95))
        for how, (copy, q) in _copies(img).items():
            copies.setdefault(how, []).append(fingerprint(copy, q))
    distinct = [distance(originals[i], originals[j]) for i, j in combinations(range(len(originals)), 2)]
    planted = {how: [distance(o, c) for o, c in zip(originals, cs, strict=True)] for how, cs in copies.items()}
    rows = [[how, f"{np.median(d):.0f}", max(d), f"{np.mean(np.array(d) <= 10):.0%}"] for how, d in planted.items()]
    rows.append([f"distinct photos ({len(distinct)} pairs)", f"{np.median(distinct):.0f}", f"min {min(distinct)}",
                 f"{np.mean(np.array(distinct) <= 10):.1%} (false positives)"])
    print(f"\n## pHash on {len(photos)} real photos (Debian wallpapers, 640 px): bits apart\n")
    print(table(["copy", "median", "max", "within 10 bits"], rows))
    positives = [d for ds in planted.values() for d in ds]
    curve = []
    for t in (4, 6, 8, 10, 12, 14, 16):
        tp = sum(d <= t for d in positives)
        fp = sum(d <= t for d in distinct)
        curve.append([t, f"{tp / len(positives):.1%}", f"{tp / max(tp + fp, 1):.1%}", fp])
    print("\nall planted copies vs all distinct pairs:\n")
    print(table(["threshold", "recall", "precision", "false pairs"], curve))
    return {"photos": len(photos), "planted": planted, "distinct_min": min(distinct),
            "distinct_median": float(np.median(distinct)), "curve": curve}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--quick", action="store_true", help="One measured round of verify vs pack.")
    parser.add_argument("--skip-verify", action="store_true", help="Only the search and hash figures.")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = 1
    print(f"machine: {machine_info()}; load {load_average()}")
    doc = {"search": bench_search(), "hash": bench_hash()}
    if not args.skip_verify:
        doc["verify"] = bench_verify(args.runs, args.workers)
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
