"""``imgprep verify`` side by side with what it is held to.

verify vs pack on the small real-photo corpus: ``imgprep pack --resize 256`` and ``imgprep
   verify`` of its output, the same worker count, interleaved rounds, median wall time of the whole
   command (interpreter start included).  Target: verify >= 1.5x pack's images/s.
The duplicate search and the fingerprint's recall and precision are benchmarks/bench_dedup.py's.

    .venv/bin/python benchmarks/bench_verify.py [--runs 3 | --quick] [--workers 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BENCH_DIR, bench_env, interleaved, load_average, machine_info, run_measured, table
from corpus import get_corpus

TARGET_RATIO = 1.5


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--quick", action="store_true", help="One measured round of verify vs pack.")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = 1
    print(f"machine: {machine_info()}; load {load_average()}")
    doc = {"verify": bench_verify(args.runs, args.workers)}
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
