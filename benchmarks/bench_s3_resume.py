#!/usr/bin/env python3
"""``pack --resume`` of one unsharded S3 ``.rec`` killed about 90% in, against a full rerun.

A pass-through pack of synthetic noise JPEGs (about 75 KB each) to one ``s3://`` object on the
loopback SeaweedFS (``--part-size 5MiB``, SeaweedFS's minimum, ``--checkpoint-every 2MiB``) is
killed with SIGKILL once its progress file says S3 holds at least ``--at`` of the object, then
``--resume`` is timed against a full rerun of the same pack, interleaved, median of ``--runs``.
The resumed run continues the killed run's multipart upload: it regenerates only the records
after the checkpoint, then reads the completed object back once (SHA-256, ``.idx`` of the
records the killed run wrote).  Both outputs are compared byte for byte.

    .venv/bin/python benchmarks/bench_s3_resume.py [--images 4000] [--runs 3] [--at 0.9] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from common import BENCH_DIR, bench_env, run_measured  # noqa: E402

IMGPREP = [sys.executable, "-c", "import sys; from imgprep.cli.main import main; main(sys.argv[1:])"]


def noise_images(folder: Path, count: int) -> Path:
    """``count`` 256x256 noise JPEGs (incompressible, so the .rec is about their sum) and a list."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(count):
        name = f"n{i:05d}.jpg"
        Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(folder / name, "JPEG", quality=95)
        lines.append(f"{i}\t{i % 10}\t{name}\n")
    lst = folder.parent / "noise.lst"
    lst.write_text("".join(lines))
    return lst


def held_fraction(client, bucket: str, key: str, total: int) -> float:
    """Share of the object S3 holds according to the run's last checkpoint."""
    try:
        raw = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except client.exceptions.NoSuchKey:
        return 0.0
    state = json.loads(raw).get("open") or {}
    return sum(p["Size"] for p in state.get("upload", {}).get("parts", ())) / total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=4000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one round")
    ap.add_argument("--at", type=float, default=0.9, help="kill once S3 holds this share of the .rec")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    if a.quick:
        a.runs = 1

    import s3servers  # tests/s3servers.py: the same SeaweedFS launcher the tests use

    work = BENCH_DIR / "s3-resume"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    lst = noise_images(work / "images", a.images)
    proc, server = s3servers.start_seaweed(work / "seaweed")
    env = bench_env(**s3servers.server_env())
    try:
        client = server.client()
        client.create_bucket(Bucket="bench")
        args = [*IMGPREP, "pack", str(lst), "--root", str(work / "images"), "--pass-through", "-q",
                "--endpoint-url", server.endpoint_url, "--part-size", "5MiB", "--checkpoint-every", "2MiB"]
        ref = run_measured([*args, "-o", "s3://bench/ref/train"], env=env, cwd=work)
        if ref.rc != 0:
            raise RuntimeError(ref.output_tail)
        reference = client.get_object(Bucket="bench", Key="ref/train.rec")["Body"].read()
        total = len(reference)
        print(f"one unsharded .rec of {total / 2**20:.1f} MiB, {a.images} records", flush=True)
        cmd = [*args, "-o", "s3://bench/out/train"]
        full_times, resume_times, fractions = [], [], []
        for _ in range(a.runs):
            full = run_measured(cmd, env=env, cwd=work)
            if full.rc != 0:
                raise RuntimeError(full.output_tail)
            full_times.append(full.wall_s)
            killed = subprocess.Popen(cmd, env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while (fraction := held_fraction(client, "bench", "out/train.progress.json", total)) < a.at:
                if killed.poll() is not None:
                    raise RuntimeError(f"the pack ended before S3 held {a.at:.0%} of the .rec")
                time.sleep(0.002)
            os.kill(killed.pid, signal.SIGKILL)
            killed.wait()
            fractions.append(fraction)
            resumed = run_measured([*cmd, "--resume"], env=env, cwd=work)
            if resumed.rc != 0:
                raise RuntimeError(resumed.output_tail)
            resume_times.append(resumed.wall_s)
            same = client.get_object(Bucket="bench", Key="out/train.rec")["Body"].read() == reference
            print(f"  full run {full_times[-1]:6.2f} s   resume after a kill at {fraction:.0%} "
                  f"{resume_times[-1]:6.2f} s   byte-identical: {same}", flush=True)
            if not same:
                raise RuntimeError("the resumed .rec differs from an uninterrupted run's")
        full_s, resume_s = sorted(full_times)[a.runs // 2], sorted(resume_times)[a.runs // 2]
        result = {"rec_bytes": total, "records": a.images, "killed_at": fractions, "full_s": round(full_s, 2),
                  "resume_s": round(resume_s, 2), "resume_over_full": round(resume_s / full_s, 3)}
        print(f"median: full {full_s:.2f} s, resume {resume_s:.2f} s ({resume_s / full_s:.2f} of a full run)")
        if a.json:
            a.json.write_text(json.dumps(result, indent=1) + "\n")
    finally:
        s3servers.stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
