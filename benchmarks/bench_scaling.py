#!/usr/bin/env python3
"""How ``imgprep pack`` scales with workers, beside the C limit at the same worker count.

For -j 1, 2, 4 ... all cores, on the real-photo corpora (``small``: COCO-sized, ``large``: phone
photos; benchmarks/corpus.py) and on tiny images (20,000 JPEGs of 64x48, ``--resize 32``, where a
per-image cost outside C shows at once):

- ``imgprep``: the whole ``imgprep pack`` command (start-up included), images / wall seconds;
- ``C limit``: N processes of ``benchmarks/bare_loop.c`` (the native core on files in memory, no
  Python, no framing, no output; images / loop seconds), run right after it at the same N;
- ``cores``: CPU seconds of the pack's process tree / its wall seconds; ``CPU us/img``: the same CPU
  per image beside the bare loop's (a second run of it that loops twice, minus the first: loading
  the files excluded) -- on a machine shared with other work, where wall times say little, CPU per
  image still compares the two;
- ``serial``: CPU microseconds per image of the thread that cuts the list into chunks and appends
  the records (``PackSummary.serial_cpu``): the part no worker count divides;
- ``start-up``: the same command on the list's first line alone (interpreter, imports, lock,
  publication: what a longer list does not repeat), and ``marginal``: images per second once
  started, (N - 1) / (wall - start-up) -- on a short run the fixed start-up is a large share of the
  wall time, and no worker count divides it;
- ``--pass-through`` rows (the file bytes stored; COCO-sized and tiny) per worker count, against
  their own first row.

Task: ``--resize 256 --quality 95`` (tiny: ``--resize 32``), output to ``--out`` (use a tmpfs such
as /dev/shm so the disk is not what is measured).  ``--repeat`` lists each corpus several times
(distinct record ids, same files) so a run lasts long enough at 16 workers.

    .venv/bin/python benchmarks/bench_scaling.py [--workers 1 2 4 8 16] [--corpus small large tiny]
        [--repeat-small 6] [--repeat-large 4] [--out /dev/shm/imgprep-scaling] [--baseline DIR]
        [--quick] [--synthetic] [--json FILE] [--markdown FILE]

``--baseline DIR`` also runs another checkout of imgprep (``git archive`` of an older commit, with
its own ``imgprep/_native*.so`` built there -- ``python setup.py build_ext --inplace`` -- or this
checkout's copied in) at the largest worker count, side by side; its ``--pass-through`` rows at
every worker count, with its own -j ratio and CPU per image.  Issue 32's figure, on a quiet machine:

    .venv/bin/python benchmarks/bench_scaling.py --only-pass-through --corpus tiny small --workers 1 2 \
        --runs 3 --baseline /tmp/imgprep-base
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_native import bare_loop_result, build_bare_loop  # noqa: E402
from common import (  # noqa: E402
    BENCH_DIR,
    REPO,
    RunResult,
    bench_env,
    load_average,
    machine_info,
    repeated_list,
    run_measured,
    table,
    warm_page_cache,
)

# Runs the CLI in this process and prints what the summary knows that the command line does not.
RUNNER = """
import json, sys
from imgprep.packing import packer
seen = {}
real = packer.Packer.run
def run(self, *args, **kwargs):
    summary = real(self, *args, **kwargs)
    seen.update(serial_cpu=summary.serial_cpu, records=summary.records, workers=summary.workers,
                executor=summary.executor)
    return summary
packer.Packer.run = run
from imgprep.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    if exc.code:
        raise
print("BENCH " + json.dumps(seen))
"""


def tiny_corpus(count: int) -> tuple[Path, Path]:
    """``count`` JPEGs of 64x48 (smooth noise, q90) in 100 folders, and their list; built once."""
    folder = BENCH_DIR / "corpus" / f"tiny-{count}"
    lst = folder / "tiny.lst"
    if lst.exists():
        return folder, lst
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(20261204)
    tmp = folder.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for i in range(count):
        base = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(base).resize((64, 48), Image.BILINEAR).save(buf, "JPEG", quality=90)
        name = f"{i % 100:02d}/{i:06d}.jpg"
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_bytes(buf.getvalue())
        rows.append(f"{i}\t{i % 10}\t{name}\n")
    (tmp / "tiny.lst").write_text("".join(rows))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder, lst


def file_list(root: Path, lst: Path, work: Path) -> Path:
    out = work / f"{lst.stem}.paths"
    with lst.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for line in src:
            dst.write(f"{root / line.rstrip(chr(10)).split(chr(9))[-1]}\n")
    return out


def pack_cmd(tree: Path | None, lst: Path, root: Path, out: Path, workers: int, args: list[str]) -> tuple[list[str],
                                                                                                   dict[str, str]]:
    env = bench_env(PYTHONPATH=str(tree or REPO), IMGPREP_NATIVE="1")
    cmd = [sys.executable, "-c", RUNNER, "pack", str(lst), "--root", str(root), "-o", str(out), "-j", str(workers),
           "--quiet", *args]
    return cmd, env


def first_line(lst: Path, work: Path) -> Path:
    out = work / f"{lst.stem}-first.lst"
    with lst.open(encoding="utf-8") as fh:
        out.write_text(fh.readline(), encoding="utf-8")
    return out


def with_start_up(got: dict, start_up: float, images: int, start_up_cpu: float | None = None) -> dict:
    """``got`` with the one-line run's wall time and the images per second beyond it (and, given
    the one-line run's CPU seconds, the CPU microseconds per image beyond it)."""
    busy = got["wall_s"] - start_up
    out = {**got, "start_up_s": start_up, "marginal_ips": (images - 1) / busy if busy > 0 else float("nan")}
    if start_up_cpu is not None:
        out["marginal_cpu_us"] = 1e6 * max(got["cpu_s"] - start_up_cpu, 0.0) / max(images - 1, 1)
    return out


def measure_pack(cmd: list[str], env: dict[str, str], out: Path, images: int) -> dict:
    for stale in out.parent.glob(out.name + "*"):
        stale.unlink()
    r: RunResult = run_measured(cmd, env=env)
    if r.rc != 0:
        raise RuntimeError(f"pack failed (exit {r.rc}): {r.output_tail}")
    seen = {}
    for line in r.output_tail.splitlines():
        if line.startswith("BENCH "):
            seen = json.loads(line[6:])
    for stale in out.parent.glob(out.name + "*"):
        stale.unlink()
    return {"wall_s": r.wall_s, "ips": images / r.wall_s, "cores": r.cpu_s / r.wall_s, "cpu_s": r.cpu_s,
            "cpu_us": 1e6 * r.cpu_s / images,
            "serial_us": 1e6 * seen["serial_cpu"] / images if seen.get("serial_cpu") else None,
            "executor": seen.get("executor"), "max_rss_mib": r.max_rss_kib / 1024}


def measure_bare(exe: Path, paths: Path, workers: int, resize: int, images: int) -> tuple[float, float]:
    """The bare loop's images/s (loop time) and CPU microseconds per image (files loaded, minus
    a run that only loads them: what the loop itself burns)."""
    base = [str(exe), "-n", str(resize), "-q", "95", "-p", str(workers), "-l", str(paths)]
    r = run_measured([*base, "-r", "1"])
    if r.rc != 0:
        raise RuntimeError(f"bare loop failed: {r.output_tail}")
    twice = run_measured([*base, "-r", "2"])
    return bare_loop_result(r), 1e6 * max(twice.cpu_s - r.cpu_s, 0.0) / images


PASS_REFERENCE = "1.29x at -j 2 (tiny, resize: 1.80x)"  # issue 32, 2-core VM, quiet
PASS_TARGET = 1.5


def speedups(rows: list[dict]) -> list[str]:
    """Each workload's speed-up from its fewest to its most workers: whole command, once started
    (marginal), and the C loop's own at the same worker counts (what this machine's cores give)."""
    lines = []
    for label in dict.fromkeys(r["corpus"] for r in rows if not r.get("baseline")):
        for passing in (False, True):
            mine = sorted((r for r in rows if r["corpus"] == label and bool(r.get("pass_through")) == passing
                           and not r.get("baseline")), key=lambda r: r["workers"])
            if len(mine) < 2:
                continue
            base = sorted((r for r in rows if r["corpus"] == label and r.get("pass_through") and r.get("baseline")
                           and passing), key=lambda r: r["workers"])
            if len(base) >= 2:  # the baseline's own start-up is taken as this checkout's
                lines.append(f"{label}, --pass-through, baseline: -j {base[-1]['workers']} / -j {base[0]['workers']} "
                             f"= {base[-1]['ips'] / base[0]['ips']:.2f}x whole command; CPU per image once started "
                             f"{base[0]['marginal_cpu_us']:.1f} -> {base[-1]['marginal_cpu_us']:.1f} us")
            lo, hi = mine[0], mine[-1]
            text = (f"{label}{', --pass-through' if passing else ''}: -j {hi['workers']} / -j {lo['workers']} = "
                    f"{hi['ips'] / lo['ips']:.2f}x whole command, {hi['marginal_ips'] / lo['marginal_ips']:.2f}x "
                    "once started")
            if not passing:
                text += f"; the C loop's own: {hi['limit_ips'] / lo['limit_ips']:.2f}x"
            else:
                # -j 1 already runs on more than one core (the writer's SHA-256 thread beside the
                # packing thread): the cores it leaves idle are all that more workers can add.
                cores = min(len(os.sched_getaffinity(0)), hi["workers"] + 1)
                text += (f"; -j {lo['workers']} already used {lo['cores']:.2f} cores, so at most "
                         f"{cores / lo['cores']:.2f}x is left for more workers at the same CPU per image; "
                         f"CPU per image once started {lo['marginal_cpu_us']:.1f} -> {hi['marginal_cpu_us']:.1f} us "
                         f"({hi['executor']} at -j {hi['workers']}); "
                         f"issue 32: {PASS_REFERENCE}, target >= {PASS_TARGET}x")
            lines.append(text)
    return ["\n".join(lines)] if lines else []


def main() -> int:
    cores = len(os.sched_getaffinity(0))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, nargs="+",
                    default=sorted({1, cores, *(2 ** k for k in range(1, 8) if 2 ** k < cores)}))
    ap.add_argument("--corpus", nargs="+", default=["small", "large", "tiny"], choices=["small", "large", "tiny"])
    ap.add_argument("--repeat-small", type=int, default=6)
    ap.add_argument("--repeat-large", type=int, default=4)
    ap.add_argument("--tiny-count", type=int, default=20000)
    ap.add_argument("--executor", default="auto", choices=["auto", "thread", "process"])
    ap.add_argument("--runs", type=int, default=1,
                    help="rounds (pack, then bare loop) per row; the fastest of each is kept: on a shared "
                         "machine the fastest run is the one least disturbed")
    ap.add_argument("--no-pass-through", action="store_true")
    ap.add_argument("--only-pass-through", action="store_true",
                    help="only the --pass-through rows (issue 32's -j 2 / -j 1 figure), not the resize rows")
    ap.add_argument("--out", type=Path, default=Path("/dev/shm/imgprep-scaling") if Path("/dev/shm").is_dir()
                    else BENCH_DIR / "scaling")
    ap.add_argument("--baseline", type=Path, help="another checkout, run at the largest worker count")
    ap.add_argument("--synthetic", action="store_true", help="synthetic corpora (offline development only)")
    ap.add_argument("--quick", action="store_true", help="small lists: a smoke run, not a measurement")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--markdown", type=Path, help="also write the tables here")
    args = ap.parse_args()
    if args.quick:
        args.repeat_small, args.repeat_large, args.tiny_count = 1, 1, 2000
        args.corpus = [c for c in args.corpus if c != "large"]

    from corpus import get_corpus

    work = BENCH_DIR / "scaling"
    work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    exe = build_bare_loop(work)
    started = time.perf_counter()
    print(f"# bench_scaling: {cores} cores, load {load_average()}, {machine_info()['cpu']}", flush=True)
    rows, pass_rows, results = [], [], {"machine": machine_info(), "rows": []}

    corpora = []
    for name in args.corpus:
        if name == "tiny":
            root, lst = tiny_corpus(args.tiny_count)
            corpora.append(("tiny 64x48", root, lst, 32))
        else:
            c = get_corpus(name, synthetic=args.synthetic)
            repeat = args.repeat_small if name == "small" else args.repeat_large
            label = ("COCO-sized" if name == "small" else "phone-sized") + (" (synthetic)" if args.synthetic else "")
            corpora.append((label, c.root, repeated_list(c.lst, repeat, work), 256))

    for label, root, lst, resize in corpora:
        first = first_line(lst, work)
        paths = file_list(root, lst, work)
        images = sum(1 for _ in lst.open())
        warm_page_cache([Path(p) for p in paths.read_text().split("\n") if p][: images])
        out = args.out / "out"
        for j in args.workers if not args.only_pass_through else ():
            cmd, env = pack_cmd(None, lst, root, out, j, ["--resize", str(resize), "--quality", "95",
                                                           "--executor", args.executor])
            runs = [(measure_pack(cmd, env, out, images), measure_bare(exe, paths, j, resize, images))
                     for _ in range(args.runs)]
            one, _ = pack_cmd(None, first, root, out, j, ["--resize", str(resize), "--quality", "95",
                                                         "--executor", args.executor])
            start_up = min(measure_pack(one, env, out, 1)["wall_s"] for _ in range(args.runs))
            got = with_start_up(max((r[0] for r in runs), key=lambda g: g["ips"]), start_up, images)
            limit = max(r[1][0] for r in runs)
            limit_cpu = min(r[1][1] for r in runs)
            row = {"corpus": label, "images": images, "workers": j, "limit_ips": limit, "limit_cpu_us": limit_cpu,
                   **got}
            results["rows"].append(row)
            rows.append([label, j, f"{got['ips']:,.0f}", f"{limit:,.0f}", f"{got['ips'] / limit:.2f}",
                         f"{got['cpu_us']:.0f} / {limit_cpu:.0f}", f"{got['cores']:.1f}",
                         f"{got['serial_us']:.1f}" if got["serial_us"] else "-", f"{start_up:.3f}",
                         f"{got['marginal_ips']:,.0f}", got["executor"]])
            print(f"  {label:<14} -j {j:<3} {got['ips']:9,.0f} img/s  C limit {limit:9,.0f}  "
                  f"ratio {got['ips'] / limit:5.2f}  CPU us/img {got['cpu_us']:6.0f} vs C {limit_cpu:6.0f}  cores "
                  f"{got['cores']:4.1f}  serial {got['serial_us'] or 0:5.1f} us/img  start-up {start_up:.3f} s  "
                  f"marginal {got['marginal_ips']:9,.0f} img/s  [{time.perf_counter() - started:5.0f} s]", flush=True)
            if args.baseline and j == max(args.workers):
                cmd, env = pack_cmd(args.baseline, lst, root, out, j, ["--resize", str(resize), "--quality", "95"])
                base = max((measure_pack(cmd, env, out, images) for _ in range(args.runs)), key=lambda g: g["ips"])
                results["rows"].append({"corpus": label, "workers": j, "baseline": True, **base})
                rows.append([f"{label} (baseline)", j, f"{base['ips']:,.0f}", f"{limit:,.0f}",
                             f"{base['ips'] / limit:.2f}", f"{base['cpu_us']:.0f} / {limit_cpu:.0f}",
                             f"{base['cores']:.1f}", "-", "-", "-", "-"])
                print(f"  {label:<14} -j {j:<3} baseline {base['ips']:9,.0f} img/s", flush=True)
        if args.no_pass_through or label.startswith("phone"):  # phone photos: the disk, not imgprep
            continue
        base_ips = None
        for j in args.workers:
            cmd, env = pack_cmd(None, lst, root, out, j, ["--pass-through", "--executor", args.executor])
            got = max((measure_pack(cmd, env, out, images) for _ in range(args.runs)), key=lambda g: g["ips"])
            one, _ = pack_cmd(None, first, root, out, j, ["--pass-through", "--executor", args.executor])
            ones = [measure_pack(one, env, out, 1) for _ in range(args.runs)]
            start_up = min(o["wall_s"] for o in ones)
            got = with_start_up(got, start_up, images, min(o["cpu_s"] for o in ones))
            base_ips = base_ips or got["ips"]
            results["rows"].append({"corpus": label, "pass_through": True, "images": images, "workers": j, **got})
            pass_rows.append([f"{label}, --pass-through", j, f"{got['ips']:,.0f}", f"{got['ips'] / base_ips:.2f}",
                              f"{got['cores']:.1f}", f"{got['marginal_cpu_us']:.1f}",
                              f"{got['serial_us']:.1f}" if got["serial_us"] else "-",
                              f"{start_up:.3f}", f"{got['marginal_ips']:,.0f}", got["executor"]])
            print(f"  pass-through   -j {j:<3} {got['ips']:9,.0f} img/s  x{got['ips'] / base_ips:4.2f} of the first "
                  f"row  cores {got['cores']:4.1f}  CPU {got['marginal_cpu_us']:5.1f} us/img  serial "
                  f"{got['serial_us'] or 0:5.1f} us/img  start-up {start_up:.3f} s  marginal "
                  f"{got['marginal_ips']:9,.0f} img/s", flush=True)
            if args.baseline:  # at every worker count: its own -j ratio beside this checkout's
                cmd, env = pack_cmd(args.baseline, lst, root, out, j, ["--pass-through"])
                base = max((measure_pack(cmd, env, out, images) for _ in range(args.runs)), key=lambda g: g["ips"])
                base = with_start_up(base, start_up, images, min(o["cpu_s"] for o in ones))
                results["rows"].append({"corpus": label, "pass_through": True, "baseline": True, "images": images,
                                        "workers": j, **base})
                pass_rows.append([f"{label}, --pass-through (baseline)", j, f"{base['ips']:,.0f}",
                                  f"{base['ips'] / base_ips:.2f}", f"{base['cores']:.1f}",
                                  f"{base['marginal_cpu_us']:.1f}", "-", "-", "-", base["executor"] or "-"])

    text = "\n\n".join([
        f"{cores} cores ({machine_info()['cpu']}), load {load_average()} at the end",
        *([table(["corpus", "-j", "imgprep img/s", "C limit img/s", "ratio", "CPU us/img imgprep / C",
                  "cores used", "serial us/img", "start-up s", "marginal img/s", "executor"], rows)] if rows else []),
        *([table(["workload", "-j", "img/s", "x first row", "cores used", "CPU us/img once started",
                  "serial us/img", "start-up s", "marginal img/s", "executor"], pass_rows)] if pass_rows else []),
        *speedups(results["rows"]),
    ])
    print("\n" + text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
