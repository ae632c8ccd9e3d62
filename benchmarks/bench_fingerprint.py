"""Duplicate fingerprinting beside the pack, on the same files: can the duplicate pass keep up?

Two corpora, written once under ``.bench/prints/``: ImageNet-run-like small JPEGs (64-96 px smooth
random fields, tests/fields.py, and noise textures) and 500x375 photos (benchmarks/corpus.py's
real photos, tests/imgfactory.py's where they cannot be fetched).  For each corpus:

- **fingerprint**: what ``dedup.find`` does per image (read the file, ``measure()``: decode at a DCT
  reduction, digest, fingerprint) in a pool of ``--workers`` threads, fingerprints into ``Prints``;
  timed in a fresh process of this checkout, and of ``--baseline DIR`` (another checkout, e.g. the
  main branch before the native fingerprint) when given;
- **pack**: ``imgprep pack`` of the same list (whole command, default settings: re-encoded JPEG q95),
  and ``--pass-through``.

Figures are images/s of whole commands (interpreter start-up and imports included on both sides;
give enough images to amortise them), the median over ``--runs`` interleaved rounds, page cache
warm; "its loop alone" leaves the fingerprint's start-up out.

    python benchmarks/bench_fingerprint.py --small 20000 --photos 2000 --runs 3 --baseline /work/main
    python benchmarks/bench_fingerprint.py --small 300 --photos 30 --runs 1   # a tiny check
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from common import BENCH_DIR, REPO, bench_env, load_average, warm_page_cache  # noqa: E402

CHILD = """
import sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from imgprep.splits import dedup
paths = [Path(p) for p in Path(sys.argv[1]).read_text().split()]
workers = int(sys.argv[2])
prints = dedup.Prints()
def batch(lo):
    return [dedup.measure(p.read_bytes()) for p in paths[lo:lo + dedup.BATCH]]
start = time.perf_counter()
with ThreadPoolExecutor(workers) as pool:
    for found in pool.map(batch, range(0, len(paths), dedup.BATCH)):
        for m in found:
            prints.add(m)
print(len(paths) / (time.perf_counter() - start))
"""


def _jpeg(pixels, quality: int = 90) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=quality)
    return out.getvalue()


def small_images(count: int) -> list[bytes]:
    """Half smooth random fields, half noise textures (blurred noise at a random scale), 64-96 px."""
    import fields
    import numpy as np
    from PIL import Image, ImageFilter

    out = []
    for seed in range(count):
        if seed % 2 == 0:
            out.append(_jpeg(fields.field(seed)))
            continue
        rng = np.random.default_rng(seed)
        h, w = rng.integers(64, 97, 2)
        noise = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        out.append(_jpeg(np.asarray(noise.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 3))))))
    return out


def photos(count: int) -> tuple[list[bytes], str]:
    from PIL import Image

    try:
        import corpus

        sources = corpus.find_photos(corpus.fetch_photo_packages())
        what = f"{len(sources)} real photos (benchmarks/corpus.py), crops of each"
    except Exception as exc:  # noqa: BLE001 - offline: synthetic photos stand in, and the table says so
        import imgfactory

        sources = []
        what = f"tests/imgfactory.py photos (real photos unavailable: {exc})"
    out = []
    for k in range(count):
        if sources:
            with Image.open(sources[k % len(sources)]) as img:
                img = img.convert("RGB")
                img.thumbnail((1000 + 40 * (k // len(sources) % 10), 1000))
                x, y = (k * 37) % max(1, img.width - 500), (k * 53) % max(1, img.height - 375)
                view = img.crop((x, y, x + 500, y + 375))
        else:
            view = imgfactory.photo(500, 375, seed=k)
        out.append(_jpeg(__import__("numpy").asarray(view), 90))
    return out, what


def write_corpus(name: str, blobs: list[bytes]) -> tuple[Path, Path, Path]:
    """(root, .lst, file of paths) under .bench/prints/NAME (rewritten when the count changes)."""
    root = BENCH_DIR / "prints" / name
    lst = root.with_suffix(".lst")
    listing = root.with_suffix(".paths")
    if lst.exists() and sum(1 for _ in lst.open()) == len(blobs):
        return root, lst, listing
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    lines, paths = [], []
    for i, blob in enumerate(blobs):
        rel = f"{i % 100:02d}/{i:07d}.jpg"
        (root / rel).parent.mkdir(exist_ok=True)
        (root / rel).write_bytes(blob)
        lines.append(f"{i}\t{i % 100}\t{rel}\n")
        paths.append(str(root / rel))
    lst.write_text("".join(lines))
    listing.write_text("\n".join(paths))
    return root, lst, listing


def fingerprint_rate(checkout: Path, listing: Path, workers: int, count: int) -> tuple[float, float]:
    """(images/s of the whole command, start-up included like the pack's; images/s of the loop alone)."""
    env = bench_env(PYTHONPATH=str(checkout))
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, str(listing), str(workers)], env=env, capture_output=True,
                         text=True, check=True)
    return count / (time.perf_counter() - start), float(out.stdout.strip())


def pack_rate(root: Path, lst: Path, count: int, workers: int, *extra: str) -> float:
    out = BENCH_DIR / "prints" / "out"
    cmd = [sys.executable, "-m", "imgprep", "pack", str(lst), "--root", str(root), "-o", str(out), "-j", str(workers),
           *extra]
    start = time.perf_counter()
    subprocess.run(cmd, env=bench_env(PYTHONPATH=str(REPO)), capture_output=True, check=True)
    return count / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=20_000, help="64-96 px JPEGs")
    parser.add_argument("--photos", type=int, default=2_000, help="500x375 photos")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--baseline", type=Path, help="another checkout whose measure() runs beside this one's")
    args = parser.parse_args(argv)
    photo_blobs, what = photos(args.photos)
    corpora = {"64-96 px JPEGs (fields, textures)": write_corpus(f"small-{args.small}", small_images(args.small)),
               "500x375 photos": write_corpus(f"photos-{args.photos}", photo_blobs)}
    print(f"# Fingerprinting vs packing, {args.workers} workers, images/s (median of {args.runs}); "
          f"photos: {what}; load average before: {load_average()}\n")
    head = ["corpus", "images", "fingerprint (this)", "its loop alone"] + (
        ["fingerprint (baseline)", "this / baseline"] if args.baseline else [])
    print("| " + " | ".join([*head, "pack", "pack --pass-through", "fingerprint / pack"]) + " |")
    print("|---" * (len(head) + 3) + "|")
    for name, (root, lst, listing) in corpora.items():
        count = sum(1 for _ in lst.open())
        warm_page_cache([Path(p) for p in listing.read_text().split()])
        rates: dict[str, list[float]] = {}
        for _ in range(args.runs):  # interleaved: a busy spell slows every method alike
            whole, loop = fingerprint_rate(REPO, listing, args.workers, count)
            rates.setdefault("this", []).append(whole)
            rates.setdefault("loop", []).append(loop)
            if args.baseline:
                rates.setdefault("base", []).append(fingerprint_rate(args.baseline, listing, args.workers, count)[0])
            rates.setdefault("pack", []).append(pack_rate(root, lst, count, args.workers))
            rates.setdefault("pass", []).append(pack_rate(root, lst, count, args.workers, "--pass-through"))
        med = {k: statistics.median(v) for k, v in rates.items()}
        row = [name, f"{count:,}", f"{med['this']:,.0f}", f"{med['loop']:,.0f}"]
        if args.baseline:
            row += [f"{med['base']:,.0f}", f"{med['this'] / med['base']:.2f}x"]
        row += [f"{med['pack']:,.0f}", f"{med['pass']:,.0f}", f"{med['this'] / med['pack']:.2f}x"]
        print("| " + " | ".join(row) + " |")
    print(f"\nload average after: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
