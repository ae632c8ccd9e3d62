#!/usr/bin/env python3
"""What refusing hostile input costs, and what a hostile input costs now.

1. The root guard on the packer's hot path (``LocalImageSource.local_path`` + ``read_inside``:
   cached folder resolution, ``O_NOFOLLOW | O_NONBLOCK`` open and an ``fstat``) against the
   unguarded ``os.path.join`` + ``open().read()`` it replaced, per image, side by side in one run
   (interleaved rounds, medians): the ratio is what the guard adds to a pass-through pack, the
   cheapest thing imgprep does per image.
2. The issue's resource attacks as whole commands: wall time, peak RSS and the one line printed.

    benchmarks/bench_hostile.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import struct
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import bench_env, mib, run_measured, table

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".bench" / "hostile"


def make_tree(root: Path, folders: int, per_folder: int, size: int) -> list[str]:
    rel = []
    payload = os.urandom(size)
    for f in range(folders):
        (root / f"class_{f:02d}").mkdir(parents=True, exist_ok=True)
        for i in range(per_folder):
            path = root / f"class_{f:02d}" / f"{i:05d}.jpg"
            if not path.exists():
                path.write_bytes(payload)
            rel.append(f"class_{f:02d}/{i:05d}.jpg")
    return rel


def guard_cost(rounds: int, folders: int, per_folder: int) -> dict[str, float]:
    from imgprep.formats.lst import LstItem
    from imgprep.storage.images import LocalImageSource
    from imgprep.storage.roots import read_inside

    root = WORK / "tree"
    rel = make_tree(root, folders, per_folder, 36_000)  # the small corpus's median JPEG size
    items = [LstItem(i, (0.0,), p) for i, p in enumerate(rel)]

    def unguarded() -> None:
        for item in items:
            with open(os.path.join(root, item.path), "rb") as fh:
                fh.read()

    def guarded() -> None:
        source = LocalImageSource(root)
        for item in items:
            path = source.local_path(item)
            read_inside(path, source.guard.root)

    times: dict[str, list[float]] = {"unguarded": [], "guarded": []}
    for _ in range(rounds + 1):  # the first round warms the page cache
        for name, fn in (("unguarded", unguarded), ("guarded", guarded)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    us = {k: statistics.median(v[1:]) / len(items) * 1e6 for k, v in times.items()}
    return {"images": len(items), "unguarded_us": us["unguarded"], "guarded_us": us["guarded"],
            "ratio": us["guarded"] / us["unguarded"]}


def attack_inputs(work: Path) -> dict[str, list[str]]:
    """The issue's resource attacks, as command lines."""
    work.mkdir(parents=True, exist_ok=True)
    manifest = work / "huge-id.manifest"
    records = [{"source-ref": "s3://b/d/0.jpg", "label": 0}, {"source-ref": "s3://b/d/1.jpg", "label": 10**12}]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    mnist = work / "bomb"
    mnist.mkdir(exist_ok=True)
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = co.compress(struct.pack(">BBBBIII", 0, 0, 8, 3, 2000, 1000, 1000))
    block = b"\0" * (1 << 20)
    for _ in range(2000):
        bomb += co.compress(block)
    (mnist / "train-images-idx3-ubyte.gz").write_bytes(bomb + co.flush())
    (mnist / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(struct.pack(">BBBBI", 0, 0, 8, 1, 2000)
                                                                     + bytes(2000)))
    images = work / "tiny"
    images.mkdir(exist_ok=True)
    from PIL import Image

    Image.new("RGB", (4, 4)).save(images / "a.png")
    (work / "tiny.lst").write_text("0\t0\ta.png\n")
    deep = work / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    exe = [sys.executable, "-m", "imgprep"]
    return {
        "manifest, class id 10^12": [*exe, "convert", "manifest", str(manifest), "-o", str(work / "o1")],
        "IDX .gz, 2 MB declaring 2 GB": [*exe, "convert", "mnist", str(mnist), "-o", str(work / "o2")],
        "--size 20000x20000 on a 4x4 image": [*exe, "pack", str(work / "tiny.lst"), "--root", str(images),
                                              "-o", str(work / "o3"), "--size", "20000x20000"],
        "COCO JSON nested 200,000 deep": [*exe, "convert", "coco", str(deep), "-o", str(work / "o4")],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and rounds")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    rounds, per_folder = (3, 100) if args.quick else (7, 500)
    guard = guard_cost(rounds, 20, per_folder)
    print(f"root guard, per image ({guard['images']} files of 36 kB, page cache warm, median of {rounds}):")
    print(table(["method", "µs/image", "ratio"], [
        ["os.path.join + open().read() (before)", f"{guard['unguarded_us']:.2f}", "1.00×"],
        ["local_path + read_inside (guarded)", f"{guard['guarded_us']:.2f}", f"{guard['ratio']:.2f}×"],
    ]))
    rows, attacks = [], {}
    for name, cmd in attack_inputs(WORK / "attacks").items():
        result = run_measured(cmd, env=bench_env(), timeout=120)
        line = result.output_tail.strip().splitlines()[-1] if result.output_tail.strip() else ""
        attacks[name] = {"rc": result.rc, "wall_s": result.wall_s, "max_rss_kib": result.max_rss_kib, "line": line}
        rows.append([name, result.rc, f"{result.wall_s:.2f}", mib(result.max_rss_kib), line[-90:]])
    print("\nhostile inputs, whole commands:")
    print(table(["input", "exit", "wall s", "peak RSS", "last line"], rows))
    if args.json:
        args.json.write_text(json.dumps({"guard": guard, "attacks": attacks}, indent=2))


if __name__ == "__main__":
    main()
