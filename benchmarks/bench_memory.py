#!/usr/bin/env python3
"""Peak memory of ``imgprep pack`` against the list's length, and the cost of ``--resume``.

Memory: whole-process peak RSS (``wait4`` ru_maxrss) packing 10,000 / 100,000 / 1,000,000
records with ``--pass-through`` (tiny JPEGs, so the list and index dominate), one file and
sharded.  The target is 1M <= 1.5x 10k.  ``--baseline DIR`` runs another checkout of imgprep
(e.g. ``git archive`` of the commit before streaming) side by side.

Verify: whole-process peak RSS of ``imgprep verify`` of one ``--pass-through`` file of 10,000 and
500,000 tiny records (``--verify-records``), and the growth in bytes per record between them
(target <= 64), side by side with ``--baseline``.  ``--only verify`` runs just this part.

Resume: a sharded pack (``--resize 64``, synthetic photos) killed once 90% of its shards are
published, then ``--resume``, against a full rerun of the same pack, interleaved.

    .venv/bin/python benchmarks/bench_memory.py [--quick] [--baseline DIR] [--json FILE]
        [--only pack|verify|resume] [--verify-records 10000,500000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_DIR, REPO, bench_env, mib, run_measured


def tiny_images(folder: Path, count: int = 16) -> list[str]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        buf = io.BytesIO()
        Image.new("RGB", (8, 8), (i * 15, 255 - i * 15, 90)).save(buf, "JPEG", quality=90)
        name = f"t{i:02d}.jpg"
        (folder / name).write_bytes(buf.getvalue())
        names.append(name)
    return names


def photos(folder: Path, count: int) -> list[str]:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = []
    for i in range(count):
        base = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
        img = Image.fromarray(base).resize((320, 240), Image.BILINEAR)
        name = f"p{i:04d}.jpg"
        img.save(folder / name, "JPEG", quality=90)
        names.append(name)
    return names


def write_list(path: Path, names: list[str], n: int) -> Path:
    with path.open("w") as fh:
        for i in range(n):
            fh.write(f"{i}\t{i % 7}\t{names[i % len(names)]}\n")
    return path


def imgprep_cmd(tree: Path, *args: object) -> tuple[list[str], dict[str, str]]:
    env = bench_env(PYTHONPATH=str(tree))
    return [sys.executable, "-c", "from imgprep.cli.main import main; main()", *(str(a) for a in args)], env


def memory(work: Path, sizes: list[int], trees: dict[str, Path]) -> list[dict]:
    images = work / "tiny"
    names = tiny_images(images)
    rows = []
    for n in sizes:
        lst = write_list(work / f"list-{n}.lst", names, n)
        for label, tree in trees.items():
            for mode, extra in (("one file", ()), ("sharded", ("--shard-records", "10000"))):
                out = work / f"out-{label}"
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                cmd, env = imgprep_cmd(tree, "pack", lst, "--root", images, "-o", out / "train", "--pass-through",
                                       "-q", *extra)
                result = run_measured(cmd, env=env, cwd=work)  # not the repo: `-c` puts the cwd on sys.path
                if result.rc != 0:
                    raise RuntimeError(result.output_tail)
                rows.append({"records": n, "tree": label, "mode": mode, "max_rss_kib": result.max_rss_kib,
                             "wall_s": round(result.wall_s, 2)})
                print(f"  {n:>9,} records  {label:<9} {mode:<8}  peak RSS {mib(result.max_rss_kib):>8}  "
                      f"{result.wall_s:6.2f} s", flush=True)
                shutil.rmtree(out, ignore_errors=True)
    return rows


def verify_memory(work: Path, sizes: list[int], trees: dict[str, Path]) -> list[dict]:
    """Peak RSS of ``imgprep verify`` (one worker) of a pass-through pack of ``n`` tiny records."""
    images = work / "tiny"
    names = tiny_images(images)
    rows = []
    for n in sizes:
        out = work / f"verify-{n}"
        if not (out / "train.dataset.json").exists():  # packed once, by this tree, and kept
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            lst = write_list(work / f"list-{n}.lst", names, n)
            cmd, env = imgprep_cmd(REPO, "pack", lst, "--root", images, "-o", out / "train", "--pass-through", "-q")
            packed = run_measured(cmd, env=env, cwd=work)
            if packed.rc != 0:
                raise RuntimeError(packed.output_tail)
        for label, tree in trees.items():
            cmd, env = imgprep_cmd(tree, "verify", out / "train.rec", "-j", "1", "--num-classes", "7")
            result = run_measured(cmd, env=env, cwd=work)
            if result.rc != 0:
                raise RuntimeError(result.output_tail)
            rows.append({"records": n, "tree": label, "max_rss_kib": result.max_rss_kib,
                         "wall_s": round(result.wall_s, 2)})
            print(f"  {n:>9,} records  {label:<9} peak RSS {mib(result.max_rss_kib):>8}  {result.wall_s:6.2f} s",
                  flush=True)
    low, high = min(sizes), max(sizes)
    for label in trees:
        peaks = {r["records"]: r["max_rss_kib"] for r in rows if r["tree"] == label}
        per = (peaks[high] - peaks[low]) * 1024 / (high - low)
        rows.append({"tree": label, "bytes_per_record": round(per, 1)})
        print(f"  {label:<9} {high:,} vs {low:,} records: {per:.1f} bytes per record "
              f"(peak {peaks[high] / peaks[low]:.2f}x)", flush=True)
    return rows


def resume(work: Path, records: int, shard: int, runs: int) -> dict:
    images = work / "photos"
    names = photos(images, 500)
    lst = write_list(work / "resume.lst", names, records)
    shards = records // shard
    args = ("pack", lst, "--root", images, "--resize", "64", "-j", "2", "-q", "--shard-records", shard)
    full_times, resume_times = [], []
    for _ in range(runs):
        out = work / "resume-out"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        cmd, env = imgprep_cmd(REPO, *args, "-o", out / "train")
        full_times.append(run_measured(cmd, env=env, cwd=work).wall_s)
        # Kill once 90% of the shards are published, then time the resume.
        proc = subprocess.Popen(cmd, env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        target = out / f"train-{int(shards * 0.9) - 1:05d}.idx"
        while not target.exists():
            if proc.poll() is not None:
                raise RuntimeError("the pack ended before 90% of its shards were published")
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        result = run_measured([*cmd, "--resume"], env=env, cwd=work)
        if result.rc != 0:
            raise RuntimeError(result.output_tail)
        resume_times.append(result.wall_s)
        print(f"  full run {full_times[-1]:6.2f} s   resume after a kill at 90% {resume_times[-1]:6.2f} s", flush=True)
    full, res = sorted(full_times)[len(full_times) // 2], sorted(resume_times)[len(resume_times) // 2]
    return {"records": records, "shards": shards, "full_s": round(full, 2), "resume_s": round(res, 2),
            "resume_over_full": round(res / full, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10k and 100k records only; one resume run")
    parser.add_argument("--baseline", type=Path, help="another imgprep checkout to measure side by side")
    parser.add_argument("--runs", type=int, default=3, help="resume measurements (median)")
    parser.add_argument("--only", choices=("pack", "verify", "resume"), help="one part only")
    parser.add_argument("--verify-records", default="10000,500000", help="record counts verified (comma-separated)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = BENCH_DIR / "memory"
    work.mkdir(parents=True, exist_ok=True)
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    trees = {"this": REPO, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    doc: dict = {}
    if args.only in (None, "pack"):
        print("peak RSS, whole process, pack --pass-through of tiny JPEGs:")
        rows = doc["memory"] = memory(work, sizes, trees)
        for label in trees:
            for mode in ("one file", "sharded"):
                peaks = {r["records"]: r["max_rss_kib"] for r in rows if r["tree"] == label and r["mode"] == mode}
                print(f"  {label:<9} {mode:<8}  {max(sizes):,} / 10,000 records: "
                      f"{peaks[max(sizes)] / peaks[10_000]:.2f}x")
    if args.only in (None, "verify"):
        print("peak RSS, whole process, verify -j 1 of a pass-through pack of tiny JPEGs (one file):")
        doc["verify"] = verify_memory(work, [int(n) for n in args.verify_records.split(",")], trees)
    if args.only in (None, "resume"):
        print("resume after kill -9 at 90% vs full rerun (5,000 records, --resize 64, 10 shards):")
        timing = doc["resume"] = resume(work, 5_000, 500, 1 if args.quick else args.runs)
        print(f"  median: full {timing['full_s']} s, resume {timing['resume_s']} s "
              f"({timing['resume_over_full']:.2f} of a full run)")
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
