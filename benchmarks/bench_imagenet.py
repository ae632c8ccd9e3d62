"""An ImageNet-sized run end to end: 1.28M generated images of 1,000 classes, then ``prepare`` (with its
default duplicate report), ``verify``, ``inspect`` and opening the reader, each timed with its peak memory.

The images are distinct by construction (each drawn from its own seed): half the classes smooth random
colour fields (``tests/fields.py``: the data on which chance look-alikes crowd the hash space), half
noise textures (random grids upsampled, with grain).  Every image that ``prepare`` or ``inspect`` puts in
a duplicate group is therefore a false answer; the benchmark prints how many, and the largest group.

Before the timed steps every corpus file is read once (the page cache warm: a cold first run of 1.28M
small files measures the disk, not imgprep), and ``prepare --dedup off`` runs beside ``prepare`` so the
duplicate pass's own cost (the difference) is printed against the pack's.

    python benchmarks/bench_imagenet.py --images 1280000 --classes 1000 --work .bench/imagenet

The corpus is generated once (about 4 GB, reused when ``--work`` already holds it).  Figures are
printed beside those measured before this round (``--before``: the issue's figures by default).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import bench_env, load_average, mib, run_measured, table

BEFORE = {  # measured on this 2-core VM before issue 29 (the figures; without the report: its pack alone)
    "prepare --dedup off": (80.0, 0), "prepare": (603.0, 657 * 1024), "verify": (36.0, 90 * 1024),
    "inspect": (451.0, 2400 * 1024), "reader": (0.37, 110 * 1024),
}
BEFORE_GROUPED = "1,250,530 of 1,280,000 (97.7%) in 526 groups"


def _field(rng: np.random.Generator) -> np.ndarray:
    h, w = rng.integers(64, 97, 2)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.zeros((h, w, 3), np.float32)
    for _ in range(3):
        angle = rng.uniform(0, np.pi)
        cycles = rng.uniform(0.5, 3.0)
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * cycles * (x * np.cos(angle) / w + y * np.sin(angle) / h) + phase)
        out += wave[:, :, None] * rng.uniform(-60, 60, 3).astype(np.float32)
    return np.clip(out + 128, 0, 255).astype(np.uint8)


def _texture(rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    h, w = (int(v) for v in rng.integers(64, 97, 2))
    cells = int(rng.integers(4, 17))
    grid = rng.integers(0, 256, (cells, cells, 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(grid).resize((w, h), Image.BILINEAR), np.int16)
    grain = rng.integers(-20, 21, (h, w, 1), dtype=np.int16)
    return np.clip(big + grain, 0, 255).astype(np.uint8)


def _make_class(args: tuple[Path, int, int]) -> int:
    from PIL import Image

    root, label, count = args
    folder = root / f"c{label:04d}"
    folder.mkdir(parents=True, exist_ok=True)
    draw = _field if label % 2 == 0 else _texture
    for i in range(count):
        rng = np.random.default_rng((label, i))
        buf = io.BytesIO()
        Image.fromarray(draw(rng)).save(buf, "JPEG", quality=90)
        (folder / f"{i:05d}.jpg").write_bytes(buf.getvalue())
    return count


def make_corpus(root: Path, images: int, classes: int, workers: int) -> float:
    marker = root / ".complete"
    if marker.exists() and marker.read_text() == f"{images} {classes}":
        return 0.0
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    per = [images // classes + (c < images % classes) for c in range(classes)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        done = 0
        for n in pool.map(_make_class, [(root, c, per[c]) for c in range(classes)], chunksize=4):
            done += n
            if done % 100_000 < n:
                print(f"  generated {done:,} / {images:,} images ({time.perf_counter() - t0:.0f} s)", flush=True)
    marker.write_text(f"{images} {classes}")
    return time.perf_counter() - t0


def _groups(report: Path) -> tuple[str, str]:
    """(images in groups, the largest group) from a ``--dedup-report`` file: every group, one per line."""
    if not report.exists():
        return "?", "?"
    groups = [json.loads(line) for line in report.open(encoding="utf-8")]
    sizes = [g["size"] for g in groups]
    alike = [g["size"] for g in groups if g.get("lookalike")]  # no detail to tell a copy (absent: older imgprep)
    return (f"{sum(sizes):,} in {len(sizes):,} groups ({sum(alike):,} in {len(alike):,} look-alike)",
            f"{max(sizes) if sizes else 0}")


_WARM = """
import os, sys
for top, _, names in os.walk(sys.argv[1]):
    for name in names:
        with open(os.path.join(top, name), "rb") as fh:
            while fh.read(1 << 20):
                pass
"""


def _warm(root: Path) -> float:
    """Read every file under ``root`` once, so the timed steps find it in the page cache (in a child:
    the timed steps are forked from this process, and their peak would count what it holds)."""
    import subprocess

    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", _WARM, str(root)], check=True)
    return time.perf_counter() - began


def _by_line(out: Path, report: Path, lines: tuple[float, ...] = (0.02, 0.025, 0.03, 0.035, 0.04)) -> str:
    """How many groups each look-alike line would leave called copies, from the detail share each
    image's fingerprint row keeps (``detail``): the line can be chosen after one run."""
    from imgprep.imaging import phash
    from imgprep.splits.dedup import Prints
    from imgprep.splits.prints_file import local_prints
    from imgprep.storage.stores import Storage

    if not hasattr(Prints(), "detail") or not report.exists():
        return "(no detail share kept by this imgprep)"
    level = {}
    for split in ("train", "val"):
        prints = local_prints(str(out / f"{split}.prints"), Storage())
        level.update(zip(((split, int(i)) for i in prints.column("id")), prints.column("detail").tolist()))
    groups = [g for g in map(json.loads, report.open(encoding="utf-8")) if not g["exact"]]
    lowest = [(g["size"], min(level[(m["split"], m["id"])] for m in g["images"])) for g in groups]
    rows = []
    for line in lines:
        called = [size for size, low in lowest if low >= phash.detail_level(line)]
        rows.append([f"{line:g}" + (" (LOW_DETAIL)" if line == phash.LOW_DETAIL else ""),
                     f"{len(called):,}", f"{sum(called):,}"])
    return table(["look-alike line", "groups called copies", "images in them"], rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=1_280_000)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--work", type=Path, default=Path(".bench/imagenet"))
    ap.add_argument("--resize", default="64")
    ap.add_argument("--keep", action="store_true", help="keep the prepared output")
    ap.add_argument("--json", type=Path, help="write the figures here too")
    ap.add_argument("--generate-only", action="store_true", help="make the corpus, run nothing")
    args = ap.parse_args()
    py = sys.executable
    env = bench_env(PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    corpus, out = args.work / "corpus", args.work / "prepared"
    made = make_corpus(corpus, args.images, args.classes, os.cpu_count() or 1)
    if made:
        print(f"corpus: {args.images:,} images of {args.classes:,} classes generated in {made:.0f} s")
    if args.generate_only:
        return 0
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(args.work / "report", ignore_errors=True)
    prep_report, insp_report = args.work / "prepare-groups.jsonl", args.work / "inspect-groups.jsonl"
    warmed = _warm(corpus)
    print(f"page cache: every corpus file read once in {warmed:.0f} s (not timed)", flush=True)
    bare = args.work / "prepared-no-dedup"
    steps = {
        "prepare --dedup off": [py, "-m", "imgprep", "prepare", "folders", str(corpus), "-o", str(bare),
                                "--split", "train=0.96,val=0.04", "--resize", args.resize, "--dedup", "off"],
        "prepare": [py, "-m", "imgprep", "prepare", "folders", str(corpus), "-o", str(out),
                    "--split", "train=0.96,val=0.04", "--resize", args.resize, "--dedup-report", str(prep_report)],
        "verify": [py, "-m", "imgprep", "verify", str(out / "train.rec")],
        "inspect": [py, "-m", "imgprep", "inspect", str(out), "--dedup-report", str(insp_report)],
        "reader": [py, "-c", f"from imgprep.data import Dataset; d = Dataset({str(out / 'train')!r}); print(len(d))"],
    }
    rows, figures = [], {}
    for name, cmd in steps.items():
        load = load_average()
        r = run_measured(cmd, env=env)
        if r.rc != 0:
            print(r.output_tail)
            raise SystemExit(f"{name} failed (exit {r.rc})")
        wall0, rss0 = BEFORE[name]
        groups, largest = _groups(prep_report if name == "prepare" else insp_report) \
            if name in ("prepare", "inspect") else ("", "")
        figures[name] = {"wall_s": r.wall_s, "cpu_s": r.cpu_s, "max_rss_kib": r.max_rss_kib, "load": load,
                         "grouped": groups, "largest": largest}
        rows.append([name, f"{r.wall_s:.1f} s", mib(r.max_rss_kib), f"{wall0:g} s", mib(rss0) if rss0 else "—",
                     groups, largest, load])
        print(f"  {name}: {r.wall_s:.1f} s, {mib(r.max_rss_kib)} (load {load})", flush=True)
        shutil.rmtree(bare, ignore_errors=True)
        if name in ("prepare", "inspect"):
            said = [line for line in r.output_tail.splitlines() if "dupl" in line or "leak" in line]
            print("    " + "\n    ".join(said))
    print(table(["step", "wall", "peak RSS", "before: wall", "before: RSS", "images in groups", "largest",
                 "load"], rows))
    print(f"before: {BEFORE_GROUPED}")
    packed, whole = figures["prepare --dedup off"]["wall_s"], figures["prepare"]["wall_s"]
    print(f"the duplicate pass: {whole - packed:.1f} s of prepare's {whole:.1f} s, "
          f"{(whole - packed) / packed:.2f}x the run without it ({packed:.1f} s; issue 29: at most 1x)")
    print("groups the report would call copies, line by line (inspect's groups; the least detail share in each):")
    print(_by_line(out, insp_report))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
