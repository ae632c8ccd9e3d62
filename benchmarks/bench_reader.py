"""Training-side readers side by side: imgprep.data vs DALI's CPU pipeline, MXNet's
``ImageRecordUInt8Iter`` and a plain PIL ``Dataset`` under PyTorch's DataLoader.

All read the same ``.rec`` (the 2,000 COCO-sized photos of ``corpus.py --small`` packed with
``--resize 256 --quality 90``) with the same number of threads (``--threads``, default 2; the PIL
dataset gets that many DataLoader worker processes, as people run it), in batches of 64 HWC
uint8 (MXNet's iterator gives CHW), as numpy arrays:

- train: random resized crop (area 0.08-1, aspect 3/4-4/3) to 224x224 + horizontal flip, shuffled;
- eval: shorter side 256, centre crop 224, in file order.

imgprep.data runs twice, with its per-record CRC-32 check on (the default) and off
(``imgprep-nocrc``), and the ratio is printed: the check must cost under 5%.

Each pipeline runs in its own process (MXNet's in its own virtualenv), rounds interleaved; img/s
is the steady state after the first batch (``--epochs`` passes), "first batch" the time from
opening the data to holding the first batch (imports excluded), memory the peak over the process
tree (PSS, sampled, and the largest single process's RSS).  Then imgprep's first batch from
``s3://`` (a SeaweedFS on loopback), next to its parts: fetching the ``.idx`` and one batch of
ranged GETs + decode.

    .venv/bin/python benchmarks/bench_reader.py                 # full: 3 rounds, 2 epochs each
    .venv/bin/python benchmarks/bench_reader.py --quick         # 1 round, 1 epoch
    .venv/bin/python benchmarks/bench_reader.py --tiny 192 --only imgprep   # does it run? (no figures)

The S3 part runs imgprep training from the local ``.rec`` and from ``s3://`` side by side (img/s,
requests per record, client CPU per image: the difference is what S3 reads cost the client).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent / "tests"))

from common import BENCH_DIR, REPO, bench_env, load_average, machine_info, run_measured, table  # noqa: E402

MX_PYTHON = os.environ.get("IMGPREP_MXNET_PYTHON") or str(REPO / ".venv-mx" / "bin" / "python")
TARGET_DALI, TARGET_MXNET = 1.2, 2.0
SIZE, RESIZE, BATCH = 224, 256, 64


# ------------------------------------------------------------------ workers (run in their own process)


def _report(first: float, images: int, seconds: float, **extra: float) -> None:
    print("RESULT " + json.dumps({"first_batch_s": first, "images": images, "seconds": seconds, **extra}), flush=True)


def _drive(make, batches, epochs: int, extra=None) -> None:
    """``make()`` opens the pipeline, ``batches(pipe)`` yields numpy batches for one epoch;
    ``extra(pipe)`` (optional) gives counters reported as they changed over the measured epochs."""
    t0 = time.perf_counter()
    pipe = make()
    it = batches(pipe)
    first = next(it)
    t1 = time.perf_counter()
    images = 0
    for _ in it:
        pass  # the rest of the first epoch is warm-up
    before = extra(pipe) if extra else {}
    cpu = time.process_time()
    t2 = time.perf_counter()
    for _ in range(epochs):
        for batch in batches(pipe):
            images += len(batch)
    seconds = time.perf_counter() - t2
    cpu = time.process_time() - cpu
    after = extra(pipe) if extra else {}
    assert first is not None
    _report(t1 - t0, images, seconds, cpu_s=cpu, **{k: after[k] - before[k] for k in after})


def worker_imgprep_nocrc(mode: str, rec: str, threads: int, epochs: int) -> None:
    """imgprep.data with its per-record CRC-32 check off: what the check costs, side by side."""
    worker_imgprep(mode, rec, threads, epochs, checksums=False)


def worker_imgprep(mode: str, rec: str, threads: int, epochs: int, endpoint: str | None = None, *,
                   checksums: bool = True) -> None:
    from imgprep.data import Dataset, Loader, Transform
    from imgprep.storage.stores import Storage

    transform = Transform.train(SIZE) if mode == "train" else Transform.eval(SIZE, resize=RESIZE)
    storage = Storage.from_options(endpoint_url=endpoint) if endpoint else None
    if storage is not None:
        storage.s3.client  # noqa: B018 - botocore's client set-up (~0.3 s) is not part of the first batch

    def make():
        return Loader(Dataset(rec, transform=transform, storage=storage, checksums=checksums), BATCH,
                      shuffle=mode == "train", threads=threads)

    _drive(make, lambda loader: (b.images for b in loader), epochs,
           lambda loader: {"requests": loader.stats.requests, "records": loader.stats.records})


def worker_dali(mode: str, rec: str, threads: int, epochs: int) -> None:
    import math

    from nvidia.dali import fn, pipeline_def, types

    idx = rec[: -len(".rec")] + ".idx"

    @pipeline_def(batch_size=BATCH, num_threads=threads, device_id=None, prefetch_queue_depth=2)
    def pipe():
        jpegs, labels = fn.readers.mxnet(path=[rec], index_path=[idx], random_shuffle=mode == "train", name="r")
        if mode == "train":
            images = fn.decoders.image_random_crop(jpegs, device="cpu", output_type=types.RGB,
                                                   random_area=[0.08, 1.0], random_aspect_ratio=[0.75, 4 / 3])
            images = fn.resize(images, resize_x=SIZE, resize_y=SIZE)
            images = fn.crop_mirror_normalize(images, dtype=types.UINT8, output_layout="HWC",
                                              mirror=fn.random.coin_flip())
        else:
            images = fn.decoders.image(jpegs, device="cpu", output_type=types.RGB)
            images = fn.resize(images, resize_shorter=RESIZE)
            images = fn.crop_mirror_normalize(images, dtype=types.UINT8, output_layout="HWC", crop=(SIZE, SIZE))
        return images, labels

    def make():
        p = pipe()
        p.build()
        return p

    def batches(p):
        for _ in range(math.ceil(p.epoch_size("r") / BATCH)):
            images, _ = p.run()
            yield images.as_array()

    _drive(make, batches, epochs)


def worker_mxnet(mode: str, rec: str, threads: int, epochs: int) -> None:
    import warnings

    warnings.simplefilter("ignore")
    import mxnet as mx

    idx = rec[: -len(".rec")] + ".idx"
    extra = (dict(random_resized_crop=True, min_random_area=0.08, max_random_area=1.0, min_aspect_ratio=0.75,
                  max_aspect_ratio=4 / 3, rand_mirror=True, shuffle=True)
             if mode == "train" else dict(resize=RESIZE, shuffle=False))

    def make():
        return mx.io.ImageRecordUInt8Iter(path_imgrec=rec, path_imgidx=idx, data_shape=(3, SIZE, SIZE),
                                          batch_size=BATCH, preprocess_threads=threads, round_batch=False, **extra)

    def batches(it):
        it.reset()
        for batch in it:
            yield batch.data[0].asnumpy()

    _drive(make, batches, epochs)


def worker_pil(mode: str, rec: str, threads: int, epochs: int) -> None:
    """What a PyTorch user writes today: mmap + .idx, PIL decode, torchvision's PIL transforms (written
    out: torchvision is not installed here), DataLoader with worker processes."""
    import io
    import math
    import mmap
    import random
    import struct

    import numpy as np
    import torch
    from PIL import Image

    class RecDataset(torch.utils.data.Dataset):
        def __init__(self, path: str) -> None:
            self.path = path
            with open(path[: -len(".rec")] + ".idx") as fh:
                self.offsets = sorted(int(line.split("\t")[1]) for line in fh if line.strip())
            self.mm = None

        def __len__(self) -> int:
            return len(self.offsets)

        def __getitem__(self, i: int):
            if self.mm is None:
                with open(self.path, "rb") as fh:
                    self.mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            off = self.offsets[i]
            length = struct.unpack_from("<I", self.mm, off + 4)[0] & ((1 << 29) - 1)
            payload = self.mm[off + 8 : off + 8 + length]
            flag, label = struct.unpack_from("<If", payload)
            im = Image.open(io.BytesIO(payload[24 + 4 * flag :])).convert("RGB")
            if mode == "train":
                w, h = im.size
                for _ in range(10):
                    area = w * h * random.uniform(0.08, 1.0)
                    ratio = math.exp(random.uniform(math.log(3 / 4), math.log(4 / 3)))
                    cw, ch = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
                    if 0 < cw <= w and 0 < ch <= h:
                        x, y = random.randint(0, w - cw), random.randint(0, h - ch)
                        break
                else:
                    cw, ch = min(w, h), min(w, h)
                    x, y = (w - cw) // 2, (h - ch) // 2
                im = im.resize((SIZE, SIZE), Image.Resampling.BILINEAR, box=(x, y, x + cw, y + ch))
                if random.random() < 0.5:
                    im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            else:
                w, h = im.size
                s = RESIZE / min(w, h)
                im = im.resize((max(RESIZE, int(w * s)), max(RESIZE, int(h * s))), Image.Resampling.BILINEAR)
                left, top = round((im.width - SIZE) / 2), round((im.height - SIZE) / 2)
                im = im.crop((left, top, left + SIZE, top + SIZE))
            return torch.from_numpy(np.asarray(im)), int(label)

    def make():
        return torch.utils.data.DataLoader(RecDataset(rec), batch_size=BATCH, shuffle=mode == "train",
                                           num_workers=threads, persistent_workers=True)

    _drive(make, lambda loader: (images.numpy() for images, _ in loader), epochs)


# ------------------------------------------------------------------ the comparison


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def prepare(work: Path, tiny: int = 0) -> Path:
    """The packed ``.rec``: the whole small corpus, or its first ``tiny`` images (a check that the
    benchmark runs, not a measurement)."""
    from corpus import get_corpus

    corpus = get_corpus("small")
    lst = corpus.lst
    if tiny:
        work = work / f"tiny{tiny}"
        work.mkdir(parents=True, exist_ok=True)
        lst = work / "tiny.lst"
        lines = Path(corpus.lst).read_text().splitlines(keepends=True)[:tiny]
        lst.write_text("".join(lines))
    rec = work / "train.rec"
    if not rec.exists():
        log(f"packing {lst} -> {rec}")
        subprocess.run([sys.executable, "-m", "imgprep", "pack", str(lst), "--root", str(corpus.root),
                        "--resize", str(RESIZE), "--quality", "90", "-o", str(work / "train"), "-j", "2", "-q"],
                       check=True)
    return rec


def run_worker(method: str, mode: str, rec: str, threads: int, epochs: int, env: dict[str, str],
               endpoint: str | None = None) -> dict:
    python = MX_PYTHON if method == "mxnet" else sys.executable
    cmd = [python, str(Path(__file__)), "--worker", method, mode, rec, str(threads), str(epochs)]
    if endpoint:
        cmd.append(endpoint)
    result = run_measured(cmd, env=env, timeout=1800)
    lines = [ln for ln in result.output_tail.splitlines() if ln.startswith("RESULT ")]
    if result.rc != 0 or not lines:
        raise RuntimeError(f"{method} {mode} failed (exit {result.rc}):\n{result.output_tail}")
    out = json.loads(lines[-1][len("RESULT "):])
    out.update(img_s=out["images"] / out["seconds"], pss_kib=result.tree_pss_kib, rss_kib=result.max_rss_kib)
    return out


def s3_side_by_side(rec: Path, threads: int, epochs: int, env: dict[str, str], rounds: int) -> dict:
    """imgprep training from the local ``.rec`` and from the same ``.rec`` on ``s3://`` (a SeaweedFS
    on loopback, running during both, so both share the cores with it alike), rounds interleaved;
    then the first batch from s3:// and its parts (the .idx GET; one batch of reads + decode)."""
    import s3launch

    work = BENCH_DIR / "reader" / "seaweed"
    shutil.rmtree(work, ignore_errors=True)
    proc, server = s3launch.start_seaweed(work)
    try:
        client = server.client()
        client.create_bucket(Bucket="bench")
        for path in (rec, rec.with_suffix(".idx")):
            client.upload_file(str(path), "bench", f"data/{path.name}")
        env = {**env, **s3launch.server_env()}
        uri = "s3://bench/data/train.rec"
        runs: dict[str, list[dict]] = {"local": [], "s3": []}
        for rnd in range(rounds):
            for where, path, endpoint in (("local", str(rec), None), ("s3", uri, server.endpoint_url)):
                r = run_worker("imgprep", "train", path, threads, epochs, env, endpoint)
                runs[where].append(r)
                log(f"  round {rnd + 1}/{rounds} train {where:<5} {r['img_s']:8.0f} img/s  "
                    f"{r['requests'] / max(r['records'], 1):.3f} requests/record  "
                    f"CPU {1000 * r['cpu_s'] / r['images']:.2f} ms/img  first batch {r['first_batch_s']:.2f} s")
        firsts = [run_worker("imgprep", "train", uri, threads, 0, env, server.endpoint_url)["first_batch_s"]
                  for _ in range(rounds)]
        parts = subprocess.run([sys.executable, str(Path(__file__)), "--parts", uri, server.endpoint_url,
                                str(threads)], env=env, capture_output=True, text=True, check=True)
        out = {where: {"img_s": statistics.median(r["img_s"] for r in rs),
                       "requests_per_record": statistics.median(r["requests"] / max(r["records"], 1) for r in rs),
                       "cpu_ms_per_img": statistics.median(1000 * r["cpu_s"] / r["images"] for r in rs),
                       "first_batch_s": statistics.median(r["first_batch_s"] for r in rs)}
               for where, rs in runs.items()}
        return {**out, "first_batch_s": statistics.median(firsts), **json.loads(parts.stdout.splitlines()[-1])}
    finally:
        s3launch.stop(proc)


def print_s3(s3: dict, threads: int) -> None:
    loc, rem = s3["local"], s3["s3"]
    rows = [[name, f"{r['img_s']:,.0f}", f"{r['img_s'] / loc['img_s']:.2f}x", f"{r['requests_per_record']:.3f}",
             f"{r['cpu_ms_per_img']:.2f}", f"{r['first_batch_s']:.2f}"]
            for name, r in (("local .rec", loc), ("s3:// (SeaweedFS, loopback)", rem))]
    print(f"\nimgprep.data training, local vs s3:// ({threads} threads; the server runs during both):\n")
    print(table(["source", "train img/s", "vs local", "requests/record", "client CPU ms/img", "first batch (s)"],
                rows))
    print(f"\ns3:// / local: {rem['img_s'] / loc['img_s']:.2f}x (target >= 0.8x); client CPU for S3 reads "
          f"{rem['cpu_ms_per_img'] - loc['cpu_ms_per_img']:+.2f} ms/record over local (target <= 0.3); "
          f"first batch from s3:// {s3['first_batch_s']:.2f} s (target <= 0.2 s; S3 client set-up excluded), its "
          f"parts: .idx GET {s3['idx_get_s']:.3f} s + one batch of reads and decode {s3['one_batch_s']:.3f} s")


def parts_worker(uri: str, endpoint: str, threads: int) -> None:
    """Time the .idx GET alone, then one batch of ranged GETs + decode on ``threads`` threads."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from imgprep.data import Dataset, Transform
    from imgprep.data.fetch import Fetcher
    from imgprep.storage.stores import Storage
    from imgprep.storage.threads import DaemonExecutor

    storage = Storage.from_options(endpoint_url=endpoint)
    storage.read_bytes(uri[: -len(".rec")] + ".idx")  # client set-up, so the GET below is timed alone
    t0 = time.perf_counter()
    storage.read_bytes(uri[: -len(".rec")] + ".idx")
    idx_s = time.perf_counter() - t0
    ds = Dataset(uri, transform=Transform.train(SIZE), storage=storage)
    chosen = np.arange(BATCH) * 17 % len(ds)
    out = np.empty((BATCH, SIZE, SIZE, 3), np.uint8)
    t0 = time.perf_counter()
    fetched = Fetcher(DaemonExecutor(8, "bench-read")).submit([(ds, int(i)) for i in chosen])  # as the Loader reads
    with ThreadPoolExecutor(threads) as pool:
        half = BATCH // threads
        list(pool.map(lambda k: ds.samples(chosen[k * half : (k + 1) * half], 0, out[k * half : (k + 1) * half],
                                           fetched[k * half : (k + 1) * half]), range(threads)))
    print(json.dumps({"idx_get_s": idx_s, "one_batch_s": time.perf_counter() - t0}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 round of 1 epoch")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2, help="measured epochs per run (after a warm-up epoch)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", nargs="+", choices=["imgprep", "imgprep-nocrc", "dali", "mxnet", "pil"])
    ap.add_argument("--no-s3", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--tiny", type=int, default=0, metavar="N",
                    help="only the first N images, 1 round of 1 epoch: checks that it runs, measures nothing")
    a = ap.parse_args(argv)
    rounds, epochs = (1, 1) if a.quick or a.tiny else (a.rounds, a.epochs)
    work = BENCH_DIR / "reader"
    work.mkdir(parents=True, exist_ok=True)
    rec = prepare(work, a.tiny)
    env = bench_env()
    methods = a.only or ["imgprep", "imgprep-nocrc", "dali", "mxnet", "pil"]
    results: dict[tuple[str, str], list[dict]] = {}
    log(f"load average before: {load_average()}")
    for rnd in range(rounds):
        for mode in ("train", "eval"):
            for method in methods:
                r = run_worker(method, mode, str(rec), a.threads, epochs, env)
                results.setdefault((method, mode), []).append(r)
                log(f"  round {rnd + 1}/{rounds} {mode:<5} {method:<8} {r['img_s']:8.0f} img/s  "
                    f"first batch {r['first_batch_s']:.2f} s")
    med = {k: {f: statistics.median(r[f] for r in v) for f in ("img_s", "first_batch_s")} |
           {f: max(r[f] for r in v) for f in ("pss_kib", "rss_kib")} for k, v in results.items()}
    rows = []
    names = {"imgprep": "imgprep.data Loader", "imgprep-nocrc": "imgprep.data Loader, checksums=False",
             "dali": "DALI 2.4 CPU pipeline",
             "mxnet": "MXNet 1.9.1 ImageRecordUInt8Iter", "pil": "PIL Dataset + torch DataLoader"}
    for method in methods:
        tr, ev = med[(method, "train")], med[(method, "eval")]
        rows.append([names[method], f"{tr['img_s']:,.0f}", f"{ev['img_s']:,.0f}",
                     f"{max(tr['pss_kib'], ev['pss_kib']) / 1024:.0f} / {max(tr['rss_kib'], ev['rss_kib']) / 1024:.0f}",
                     f"{tr['first_batch_s']:.2f}"])
    records = sum(1 for _ in rec.with_suffix(".idx").open())
    print(f"\nbench_reader: {rec} ({rec.stat().st_size / 2**20:.0f} MiB, {records:,} records), {a.threads} threads, "
          f"batches of {BATCH}, median of {rounds} round(s) x {epochs} epoch(s); machine {machine_info()['cpu']}, "
          f"{os.cpu_count()} cores, load average after: {load_average()}\n")
    print(table(["pipeline", "train img/s", "eval img/s", "peak MiB (tree PSS / max RSS)", "first batch, local (s)"],
                rows))
    summary: dict[str, object] = {"median": {f"{m}/{mode}": v for (m, mode), v in med.items()}}
    if "imgprep" in methods:
        if "imgprep-nocrc" in methods:
            ratios = [med[("imgprep", mode)]["img_s"] / med[("imgprep-nocrc", mode)]["img_s"]
                      for mode in ("train", "eval")]
            print(f"\nimgprep checksums on / off: train {ratios[0]:.3f}x, eval {ratios[1]:.3f}x (target >= 0.95x)")
        for other, target in (("dali", TARGET_DALI), ("mxnet", TARGET_MXNET)):
            if other in methods:
                ratios = [med[("imgprep", mode)]["img_s"] / med[(other, mode)]["img_s"] for mode in ("train", "eval")]
                print(f"\nimgprep / {other}: train {ratios[0]:.2f}x, eval {ratios[1]:.2f}x (target >= {target}x)")
        if not a.no_s3:
            s3 = s3_side_by_side(rec, a.threads, epochs, env, rounds)
            summary["s3"] = s3
            print_s3(s3, a.threads)
    if a.json:
        a.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        method, mode, rec, threads, epochs, *endpoint = sys.argv[2:]
        worker = {"imgprep": worker_imgprep, "imgprep-nocrc": worker_imgprep_nocrc, "dali": worker_dali,
                   "mxnet": worker_mxnet, "pil": worker_pil}[method]
        worker(mode, rec, int(threads), int(epochs), *endpoint)
    elif len(sys.argv) > 1 and sys.argv[1] == "--parts":
        parts_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(main())
