"""The fingerprints prepare's pack workers record (issue 29.2/29.4): cost of the duplicate pass
before and after, and ``inspect`` of a packed dataset with and without the fingerprint file.

Three parts, each side by side on the same machine (ratios hold on a shared one):

1. **prepare's duplicate pass**: ``prepare --dedup report --resize 64`` of ``--images`` generated 500x375
   photos, fingerprinted in the pack workers, one native call per chunk (now), vs the same workers
   measuring each stored record in Python (``dedup.measure``, as before the chunk's native rows), vs
   the pass before the pack (each image decoded twice), and ``--dedup off`` as the floor; the pass's
   cost is the difference.
2. **inspect, real images**: the same packed output inspected reading its fingerprint file vs
   decoding every record (the file removed from the dataset record): time and exact peak memory
   (``VmHWM`` of the child).
3. **inspect at ImageNet size**: a packed dataset of ``--rows`` records with synthesised
   fingerprints (random hashes, 15% with an alternate orientation, every crop window; each record a
   tiny payload: inspect of a recorded dataset reads the record headers, never the images), inspected
   reading the file: time and ``VmHWM`` against the issue's bounds (2 minutes, 300 MB at 1.28M).

    python benchmarks/bench_prints.py                             # 2,000 images; 1,280,000 rows
    python benchmarks/bench_prints.py --images 20000 --skip-inspect --small   # part 1 on 64-96 px JPEGs
    python benchmarks/bench_prints.py --images 200 --rows 20000   # a tiny check
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]


def _vmhwm() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- children: one measurement each, in a fresh process ------------------------------------------


def child_prepare(src: str, out: str, mode: str) -> dict:
    from imgprep import plan
    from imgprep.api import prepare

    if mode == "before":  # the pass before the pack, as prepare ran it before the fingerprints moved
        plan.plan_prepare = functools.partial(plan.plan_prepare, in_pack=False)  # type: ignore[assignment]
    if mode == "per-record":  # the workers' Python loop over the chunk's records, as before its native rows
        from imgprep.imaging import phash

        phash.record_rows = lambda records, sizes: None  # type: ignore[assignment]
    t0 = time.perf_counter()
    prepare("folders", src, out, split="train=0.8,val=0.2", resize=64, dedup="off" if mode == "off" else "report",
            echo=lambda s: None)
    return {"seconds": time.perf_counter() - t0, "peak": _vmhwm()}


def child_inspect(path: str) -> dict:
    from imgprep.api import inspect

    t0 = time.perf_counter()
    found = inspect(path)
    return {"seconds": time.perf_counter() - t0, "peak": _vmhwm(), "images": len(found.table),
            "groups": found.summary.groups if found.summary else 0, "notes": found.collection.notes}


# --- data -------------------------------------------------------------------------------------


def make_images(root: Path, count: int, small: bool = False) -> None:
    import dupkinds
    import imgfactory

    if small:  # as bench_imagenet's corpus: 64-96 px smooth fields and noise textures, 100 classes
        from bench_fingerprint import small_images

        for i, data in enumerate(small_images(count)):
            imgfactory.write(root / f"c{i % 100:03d}" / f"img_{i:06d}.jpg", data)
        return
    for i in range(count):
        copy = i % 50 == 1  # every 50th image has a resized copy
        img = imgfactory.photo(500, 375, seed=i - 1 if copy else i)  # ImageNet-like sources
        data = dupkinds.copy(img, "resized 50%", dupkinds.original(img)) if copy else dupkinds.original(img)
        imgfactory.write(root / f"c{i % 10}" / f"img_{i:06d}.jpg", data)


def without_prints(out: Path, dest: Path) -> None:
    """A copy of a packed output whose dataset records list no fingerprint file (as im2rec's)."""
    import shutil

    shutil.copytree(out, dest)
    for record in dest.glob("*.dataset.json"):
        doc = json.loads(record.read_text())
        doc.pop("fingerprints", None)
        record.write_text(json.dumps(doc, sort_keys=True, indent=1) + "\n")
    for prints in dest.glob("*.prints"):
        prints.unlink()


def synthetic_dataset(folder: Path, rows: int) -> Path:
    """``train.rec``/``.idx``/``.dataset.json``/``.prints`` of ``rows`` records with random fingerprints."""
    from bench_dedup import random_prints

    from imgprep import __version__
    from imgprep.formats.dataset import DatasetRecord, ListRef, ShardEntry, to_json
    from imgprep.formats.recordio import RecordWriter, pack_header
    from imgprep.splits.prints_spool import PrintsSpool
    from imgprep.storage.stores import Storage

    folder.mkdir(parents=True, exist_ok=True)
    rec, idx = folder / "train.rec", folder / "train.idx"
    with RecordWriter(rec, idx) as writer:
        for i in range(rows):
            writer.write(pack_header(float(i % 1000), i) + b"\xff\xd8tiny", key=i)
    spool = PrintsSpool()
    try:
        step = 1 << 17
        for lo in range(0, rows, step):
            n = min(step, rows - lo)
            block = random_prints(n, seed=lo)
            extras = {"id": array("q", range(lo, lo + n)), "width": array("I", [256]) * n,
                      "height": array("I", [256]) * n, "channels": array("B", [3]) * n}
            spool.add_block(block, extras)
        entry = spool.publish(Storage(), str(folder / "train.prints"))
    finally:
        spool.close()

    def sha(p: Path) -> str:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            while piece := fh.read(8 << 20):
                h.update(piece)
        return h.hexdigest()

    shard = ShardEntry("train.rec", "train.idx", rows, rec.stat().st_size, idx.stat().st_size, sha(rec), sha(idx))
    record = DatasetRecord(__version__, ListRef("(synthetic)", "0" * 64, rows), (shard,), {}, num_classes=1000,
                           class_names=tuple(f"c{k}" for k in range(1000)), fingerprints=entry)
    (folder / "train.dataset.json").write_text(to_json(record))
    return folder


# --- report -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=1_280_000)
    parser.add_argument("--small", action="store_true", help="64-96 px JPEGs (the ImageNet run's) instead of photos")
    parser.add_argument("--skip-inspect", action="store_true", help="part 1 only")
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        result = child_prepare(*rest) if kind == "prepare" else child_inspect(*rest)
        print(json.dumps(result))
        return 0
    from common import load_average

    print(f"# bench_prints (load average {load_average()})\n")
    with tempfile.TemporaryDirectory(prefix="bench-prints-") as tmp:
        work = Path(tmp)
        make_images(work / "src", args.images, args.small)
        runs = {mode: _child(["prepare", str(work / "src"), str(work / mode), mode])
                for mode in ("off", "before", "per-record", "now")}
        off = runs["off"]["seconds"]
        kind = "64-96 px JPEGs" if args.small else "500x375 photos"
        print(f"## 1. prepare --dedup report --resize 64, {args.images:,} {kind}\n")
        print("| run | seconds | duplicate pass (s) | peak MB |\n|---|---|---|---|")
        for mode, label in (("off", "--dedup off"), ("before", "pass before the pack"),
                            ("per-record", "in the pack workers, one record at a time"),
                            ("now", "in the pack workers, one native call per chunk")):
            r = runs[mode]
            print(f"| {label} | {r['seconds']:.2f} | {r['seconds'] - off:.2f} | {r['peak'] / 1e6:.0f} |")
        before, each, now = (runs[m]["seconds"] - off for m in ("before", "per-record", "now"))
        if before > 0 and each > 0 and off > 0:
            print(f"\nduplicate pass: now/before = {now / before:.2f}x, now/one record at a time = {now / each:.2f}x "
                  f"(as a share of the pack: {now / off:.2f})\n")
        if args.skip_inspect:
            return 0
        without_prints(work / "now", work / "decoded")
        rec, dec = _child(["inspect", str(work / "now")]), _child(["inspect", str(work / "decoded")])
        print(f"## 2. inspect of that output ({rec['images']:,} images)\n")
        print("| fingerprints | seconds | peak MB | groups |\n|---|---|---|---|")
        for label, r in (("read from the file", rec), ("decoded (no file)", dec)):
            print(f"| {label} | {r['seconds']:.2f} | {r['peak'] / 1e6:.0f} | {r['groups']} |")
        print(f"\nread/decoded: time {rec['seconds'] / dec['seconds']:.2f}x, peak {rec['peak'] / dec['peak']:.2f}x\n")
        t0 = time.perf_counter()
        synthetic_dataset(work / "synthetic", args.rows)
        made = time.perf_counter() - t0
        big = _child(["inspect", str(work / "synthetic")])
        print(f"## 3. inspect of a packed dataset of {args.rows:,} records, fingerprints read from the file\n")
        print(f"seconds {big['seconds']:.1f} (bound 120), peak {big['peak'] / 1e6:.0f} MB (bound 300), "
              f"{big['peak'] / args.rows:.0f} B/record; {big['notes']}; (made in {made:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
