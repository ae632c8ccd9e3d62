"""The image format (``prepare --format images``) against RecordIO and against plain boto3 uploads.

Whole processes, interleaved rounds, medians; images/s counts the corpus's images.  Rows:

1. ``prepare folders --format images --resize 256`` to a local folder and to ``s3://`` (SeaweedFS
   on loopback), beside ``--format recordio`` with the same options: what the image format costs
   next to RecordIO (one object per image instead of one per channel);
2. ``prepare --format images --pass-through`` to ``s3://`` beside the same files uploaded with
   boto3 as ``aws s3 cp --recursive`` does (s3transfer's ``upload_file``, 10 at a time: the CLI's
   ``max_concurrent_requests``), which is what the seed notebooks do by hand.  For many small
   objects the cost is requests: imgprep spends one PutObject per image (Content-MD5, no HEAD).

Every prepare runs with ``--dedup off`` (the duplicate check is not what is measured) and
``-j 2``.  ``--count N`` takes the first N images of the corpus (hard links), for a quick check.

    .venv/bin/python benchmarks/bench_images.py [--count 2000] [--runs 3] [--quick] [--synthetic] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from common import BENCH_DIR, bench_env, interleaved, load_average, machine_info, mib, run_measured, table  # noqa: E402
from corpus import get_corpus  # noqa: E402

IMGPREP = [sys.executable, "-c", "import sys; from imgprep.cli.main import main; main(sys.argv[1:])"]
# `aws s3 cp DIR s3://... --recursive`: s3transfer's upload_file per file, 10 requests at a time.
UPLOAD = """
import os, sys
from concurrent.futures import ThreadPoolExecutor
import boto3
from boto3.s3.transfer import TransferConfig
root, bucket, prefix, endpoint = sys.argv[1:5]
client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      config=boto3.session.Config(max_pool_connections=10, s3={"addressing_style": "path"}))
config = TransferConfig(max_concurrency=10, use_threads=True)
files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
def put(path):
    client.upload_file(path, bucket, prefix + os.path.relpath(path, root), Config=config)
with ThreadPoolExecutor(10) as pool:
    list(pool.map(put, files))
"""


def subset(corpus_root: Path, lst: Path, count: int, dest: Path) -> int:
    """The first ``count`` images of the list, hard-linked under ``dest`` (class folders kept)."""
    shutil.rmtree(dest, ignore_errors=True)
    taken = 0
    for line in lst.read_text().splitlines():
        if not line.strip() or taken >= count:
            continue
        rel = line.split("\t")[-1]
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(corpus_root / rel, target)
        taken += 1
    return taken


def count_requests(endpoint: str, env: dict[str, str], base: list[str], resize: list[str],
                   root: Path) -> dict[str, dict[str, int]]:
    """The S3 requests of one run of each S3 writer, by operation (tests/faultproxy.py counts them)."""
    from faultproxy import FaultProxy

    runs = {
        "images → S3": [*base, "-o", "s3://bench/count-img/", "--format", "images", *resize],
        "recordio → S3": [*base, "-o", "s3://bench/count-rec/", "--format", "recordio", *resize],
        "images --pass-through → S3": [*base, "-o", "s3://bench/count-pt/", "--format", "images", "--pass-through"],
        "boto3 upload_file ×10 (aws s3 cp)": [sys.executable, "-c", UPLOAD, str(root), "bench", "count-cp/"],
    }
    out = {}
    for name, cmd in runs.items():
        with FaultProxy(endpoint) as proxy:
            tail = [proxy.url] if name.startswith("boto3") else ["--endpoint-url", proxy.url]
            result = run_measured([*cmd, *tail], env=env)
            if result.rc != 0:
                raise RuntimeError(f"{name} failed: {result.output_tail}")
            out[name] = dict(proxy.seen)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--count", type=int, default=0, help="first N images of the corpus (0: all)")
    ap.add_argument("--synthetic", action="store_true", help="synthetic corpus (offline development only)")
    ap.add_argument("--quick", action="store_true", help="1 timed round of the first 200 images")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    if a.quick:
        a.runs, a.warmup, a.count = 1, 0, a.count or 200

    import s3launch as s3servers  # tests/s3launch.py: the SeaweedFS launcher the tests use

    work = BENCH_DIR / "images"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    corpus = get_corpus("small", synthetic=a.synthetic)
    root = work / "src"
    count = subset(corpus.root, corpus.lst, a.count or corpus.count, root)
    proc, server = s3servers.start_seaweed(work / "seaweed")
    env = bench_env(**s3servers.server_env())
    try:
        server.client().create_bucket(Bucket="bench")
        ep = server.endpoint_url
        base = [*IMGPREP, "prepare", "folders", str(root), "--dedup", "off", "-j", "2", "-q"]
        resize = ["--resize", "256"]

        def fresh(path: Path) -> None:
            shutil.rmtree(path, ignore_errors=True)

        def local(tag: str, extra: list[str]):
            out = work / tag
            return lambda: (fresh(out), run_measured([*base, "-o", str(out), *extra], env=env))[1]

        def remote(tag: str, extra: list[str]):
            return lambda: run_measured([*base, "-o", f"s3://bench/{tag}/", "--endpoint-url", ep, *extra], env=env)

        commands = {
            "images → local": local("img-local", ["--format", "images", *resize]),
            "recordio → local": local("rec-local", ["--format", "recordio", *resize]),
            "images → S3": remote("img-s3", ["--format", "images", *resize]),
            "recordio → S3": remote("rec-s3", ["--format", "recordio", *resize]),
            "images --pass-through → S3": remote("img-pt", ["--format", "images", "--pass-through"]),
            "boto3 upload_file ×10 (aws s3 cp)": lambda: run_measured(
                [sys.executable, "-c", UPLOAD, str(root), "bench", "cp/", ep], env=env),
        }
        print(f"bench_images: {count} images of corpus {corpus.root.parent.name}, SeaweedFS at {ep}, "
              f"load {load_average()}", file=sys.stderr)
        results = interleaved(commands, a.runs, a.warmup, log=lambda s: print(s, file=sys.stderr))
        requests = count_requests(ep, env, base, resize, root)
    finally:
        s3servers.stop(proc)

    reference = {"images → local": "recordio → local", "images → S3": "recordio → S3",
                 "images --pass-through → S3": "boto3 upload_file ×10 (aws s3 cp)"}
    rows = []
    for name, m in results.items():
        ref = reference.get(name)
        ratio = f"{results[ref].wall_s / m.wall_s:.2f}× {ref}" if ref else ""
        rows.append([name, f"{m.wall_s:.2f} s", f"{count / m.wall_s:,.0f}", ratio, f"{m.cpu_s:.2f} s",
                     mib(m.peak("max_rss_kib"))])
    print(table(["run", "wall", "images/s", "speed vs", "client CPU", "peak RSS"], rows))
    print(f"load average after: {load_average()}")
    print("S3 requests per image (one untimed run each, through a counting proxy):")
    for name, seen in requests.items():
        per = ", ".join(f"{op} {n / count:.2f}" for op, n in sorted(seen.items(), key=lambda kv: -kv[1]))
        print(f"  {name:<34} {sum(seen.values()) / count:.2f}  ({per})")
    if a.json:
        a.json.write_text(json.dumps({"machine": machine_info(), "count": count,
                                      "results": {k: v.to_dict() for k, v in results.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
