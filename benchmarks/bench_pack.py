"""``imgprep pack`` against MXNet's ``im2rec.py`` on real photos, side by side in one run.

Task: decode -> shorter side 256 -> JPEG q95 -> RecordIO (.rec + .idx), 2 workers, plus the
``--pass-through`` variants (raw file bytes).  Each figure is the median wall time of the complete
command (interpreter start and imports included) over ``--runs`` rounds after a warm-up round; every
round runs every method once, page cache warm.  Ratios are against im2rec in the same mode.

    .venv/bin/python benchmarks/bench_pack.py [--runs 3] [--corpus small large] [--json out.json]

The two sides do not resize alike, and the table says so: im2rec uses cv2.resize's default
INTER_LINEAR with no antialiasing (fast, aliased on big shrinks); imgprep's Pillow path uses Pillow's
antialiased BILINEAR (a triangle filter widened by the scale factor), its native path a triangle filter.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # benchmarks are scripts, not a package: found via sys.path
    BENCH_DIR,
    REPO,
    Measurement,
    RunResult,
    bench_env,
    human_bytes,
    interleaved,
    load_average,
    machine_info,
    mib,
    run_measured,
    table,
    warm_page_cache,
)
from corpus import Corpus, CorpusError, get_corpus

MX_PYTHON = REPO / ".venv-mx/bin/python"
IM2REC = REPO / ".venv-mx/lib/python3.11/site-packages/mxnet/tools/im2rec.py"
IMGPREP = REPO / ".venv/bin/imgprep"
MXNET_SPECS = ["mxnet==1.9.1", "numpy==1.23.5", "opencv-python-headless<4.12"]

# The goals imgprep's Pillow-SIMD path is held to (images/s ratio vs im2rec, same worker count).
TARGETS = {("imgprep Pillow-SIMD", "small"): 1.8, ("imgprep Pillow-SIMD", "large"): 2.5}

FILTERS = {
    "im2rec": "cv2 INTER_LINEAR, no antialiasing",
    "im2rec --pass-through": "none (file bytes)",
    "imgprep Pillow-SIMD": "Pillow BILINEAR, antialiased",
    "imgprep native": "triangle, antialiased",
    "imgprep --pass-through": "none (file bytes)",
}
BASELINE = {
    "im2rec": "im2rec",
    "im2rec --pass-through": "im2rec --pass-through",
    "imgprep Pillow-SIMD": "im2rec",
    "imgprep native": "im2rec",
    "imgprep --pass-through": "im2rec --pass-through",
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ensure_mx_venv() -> None:
    """Create .venv-mx like ``make .venv-mx`` if another helper has not yet."""
    if IM2REC.exists() and MX_PYTHON.exists():
        return
    log("bench_pack: creating .venv-mx (mxnet 1.9.1 reference) ...")
    subprocess.run([sys.executable, "-m", "venv", str(REPO / ".venv-mx")], check=True)
    subprocess.run([str(MX_PYTHON), "-m", "pip", "install", "-q", *MXNET_SPECS], check=True)


def imgprep_capabilities() -> tuple[bool, bool, str]:
    """(pack available, native extension importable, PIL version) in the project venv."""
    if not IMGPREP.exists():
        return False, False, "?"
    r = subprocess.run([str(IMGPREP), "pack", "--help"], capture_output=True, text=True)
    has_pack = r.returncode == 0
    py = str(IMGPREP.parent / "python")
    native = subprocess.run([py, "-c", "import imgprep._native"], capture_output=True).returncode == 0
    pil = subprocess.run([py, "-c", "import PIL; print(PIL.__version__)"], capture_output=True, text=True)
    return has_pack, native, pil.stdout.strip() or "?"


def imgprep_path(corpus: Corpus, native: bool) -> str:
    """Which image path imgprep says it takes under IMGPREP_NATIVE=0/1 (its -v line), for the record."""
    tmp = BENCH_DIR / "runs" / "pack" / "path-check"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "one.lst").write_text(corpus.lst.open(encoding="utf-8").readline())
    cmd = [str(IMGPREP), "pack", str(tmp / "one.lst"), "--root", str(corpus.root), "-o", str(tmp / "one")]
    cmd += ["--resize", "256", "-v", "--quiet"]
    env = {**os.environ, "IMGPREP_NATIVE": "1" if native else "0"}
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    line = next((ln for ln in r.stderr.splitlines() if ln.startswith("image path:")), "")
    return line.removeprefix("image path:").strip() or f"unknown (exit {r.returncode})"


def _idx_lines(run_dir: Path) -> int:
    return sum(sum(1 for _ in p.open("rb")) for p in run_dir.glob("*.idx"))


def _out_bytes(run_dir: Path) -> int:
    return sum(p.stat().st_size for p in run_dir.iterdir() if p.suffix in (".rec", ".idx"))


def make_method(name: str, corpus: Corpus, run_dir: Path, threads: int):
    """A zero-argument callable running one packing of ``corpus`` with method ``name``."""
    base_env = {k: v for k, v in bench_env().items() if k != "IMGPREP_NATIVE"}
    pass_through = "--pass-through" in name
    if name.startswith("im2rec"):
        # im2rec packs every <prefix>*.lst in the prefix's folder: one folder, one list per method.
        prefix = run_dir / "data"
        cmd = [str(MX_PYTHON), str(IM2REC), str(prefix), str(corpus.root), "--num-thread", str(threads)]
        cmd += ["--pass-through"] if pass_through else ["--resize", "256", "--quality", "95"]
        env = base_env
    else:
        cmd = [str(IMGPREP), "pack", str(corpus.lst), "--root", str(corpus.root)]
        cmd += ["-o", str(run_dir / "data"), "--num-workers", str(threads), "--quiet"]
        cmd += ["--pass-through"] if pass_through else ["--resize", "256", "--quality", "95"]
        env = dict(base_env)
        if name == "imgprep Pillow-SIMD":
            env["IMGPREP_NATIVE"] = "0"
        elif name == "imgprep native":
            env["IMGPREP_NATIVE"] = "1"

    def run() -> RunResult:
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        if name.startswith("im2rec"):
            shutil.copyfile(corpus.lst, run_dir / "data.lst")
        r = run_measured(cmd, env=env, timeout=1800)
        if r.rc == 0:
            # im2rec with >1 thread skips unreadable images silently (exit 0): check the count.
            n = _idx_lines(run_dir)
            if n != corpus.count:
                r.rc = 99
                r.output_tail += f"\n[bench_pack] {n} records in the .idx, expected {corpus.count}"
        return r

    return run


def bench_corpus(
    corpus: Corpus, methods: list[str], runs: int, warmup: int, threads: int
) -> dict[str, tuple[Measurement, int]]:
    log(f"bench_pack: {corpus.name}: {corpus.count} images, warming page cache")
    warm_page_cache(corpus.files())
    run_root = BENCH_DIR / "runs" / "pack" / corpus.name
    dirs = {m: run_root / m.replace(" ", "_").replace("-", "") for m in methods}
    fns = {m: make_method(m, corpus, dirs[m], threads) for m in methods}
    res = interleaved(fns, runs=runs, warmup=warmup, log=log)
    return {m: (res[m], _out_bytes(dirs[m])) for m in methods}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="timed rounds (median reported); default 3")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first; default 1")
    ap.add_argument("--corpus", nargs="+", choices=("small", "large"), default=["small", "large"])
    ap.add_argument("--threads", type=int, default=2, help="im2rec --num-thread / imgprep --num-workers")
    ap.add_argument("--quick", action="store_true", help="1 timed round, no warm-up round")
    ap.add_argument("--im2rec-only", action="store_true", help="skip imgprep even if it is installed")
    ap.add_argument("--synthetic", action="store_true", help="synthetic corpora (offline development only)")
    ap.add_argument("--json", type=Path, help="also save the results here")
    a = ap.parse_args(argv)
    if a.quick:
        a.runs, a.warmup = 1, 0

    ensure_mx_venv()
    has_pack, native, pil = (False, False, "?") if a.im2rec_only else imgprep_capabilities()
    methods = ["im2rec", "im2rec --pass-through"]
    if has_pack:
        methods += ["imgprep Pillow-SIMD"] + (["imgprep native"] if native else []) + ["imgprep --pass-through"]
    elif not a.im2rec_only:
        log("bench_pack: `imgprep pack` is not available in .venv: measuring im2rec only")
    simd = "post" in pil  # Pillow-SIMD versions carry a .postN suffix, stock Pillow's do not

    try:
        corpora = [get_corpus(n, synthetic=a.synthetic) for n in a.corpus]
    except CorpusError as e:
        log(f"bench_pack: corpus error: {e}")
        return 1

    paths = {}
    if has_pack:
        paths["imgprep Pillow-SIMD"] = imgprep_path(corpora[0], native=False)
        if native:
            paths["imgprep native"] = imgprep_path(corpora[0], native=True)
    load_before = load_average()
    if load_before != "?" and float(load_before.split()[0]) > 0.5 * (os.cpu_count() or 1):
        log(f"bench_pack: WARNING: load average {load_before}: other work competes for the cores")
    results = {c.name: bench_corpus(c, methods, a.runs, a.warmup, a.threads) for c in corpora}
    load_after = load_average()

    rows, records = [], []
    for c in corpora:
        res = results[c.name]
        for m in methods:
            meas, out_bytes = res[m]
            ips = c.count / meas.wall_s
            base = res[BASELINE[m]][0]
            ratio = base.wall_s / meas.wall_s
            # CPU seconds barely move when neighbours steal cores, so their ratio is the robust check.
            cpu_ratio = base.cpu_s / meas.cpu_s if meas.cpu_s else float("nan")
            target = TARGETS.get((m, c.name))
            verdict = "" if target is None else f"≥ {target}× {'met' if ratio >= target else 'MISSED'}"
            label = m if m != "imgprep Pillow-SIMD" or simd else "imgprep Pillow (stock, not SIMD)"
            rows.append(
                [
                    label,
                    c.name,
                    f"{ips:.1f}",
                    f"{ratio:.2f}×",
                    verdict,
                    FILTERS[m],
                    f"{1000 * meas.cpu_s / c.count:.1f}",
                    f"{cpu_ratio:.2f}×",
                    f"{meas.cpu_s / meas.wall_s:.2f}",
                    mib(meas.peak("max_rss_kib")),
                    mib(meas.peak("tree_rss_kib")),
                    mib(meas.peak("tree_pss_kib")),
                    meas.peak("max_procs"),
                    human_bytes(out_bytes),
                ]
            )
            records.append(
                {
                    "method": m,
                    "corpus": c.name,
                    "images": c.count,
                    "images_per_s": ips,
                    "ratio_vs": BASELINE[m],
                    "ratio": ratio,
                    "cpu_ratio": cpu_ratio,
                    "target": target,
                    "filter": FILTERS[m],
                    "output_bytes": out_bytes,
                    "cmd": meas.runs[0].cmd,
                    "env_IMGPREP_NATIVE": {"imgprep Pillow-SIMD": "0", "imgprep native": "1"}.get(m),
                    "image_path": paths.get(m),
                    **meas.to_dict(),
                }
            )

    info = machine_info()
    print(
        f"\n## imgprep pack vs im2rec.py — {info['cpu']}, {info['cores']} cores, Python {info['python']}, "
        f"PIL {pil}{' (Pillow-SIMD)' if simd else ''}"
    )
    print(
        f"whole process, median of {a.runs} run(s) after {a.warmup} warm-up round(s), page cache warm, "
        f"{a.threads} workers; resize shorter side 256, JPEG q95; load average before {load_before}, "
        f"after {load_after} (others' work on this machine makes absolute figures noisy: read the ratios)"
    )
    for c in corpora:
        s = c.stats
        print(
            f"corpus {c.name}{' (SYNTHETIC)' if c.synthetic else ''}: {c.count} JPEGs, median "
            f"{s['median_width']:.0f}x{s['median_height']:.0f}, {s['median_mp']} MP, {s['median_kb']} KB"
        )
    for m, why in paths.items():
        print(f"{m}: image path reported by imgprep -v: {why}")
    print()
    print(
        table(
            [
                "method",
                "corpus",
                "images/s",
                "vs im2rec",
                "target",
                "resize filter",
                "CPU s/1k img",
                "CPU vs im2rec",
                "CPU/wall",
                "peak RSS 1 proc",
                "peak RSS tree",
                "peak PSS tree",
                "procs",
                "output",
            ],
            rows,
        )
    )
    print(
        "\nvs im2rec: same-mode ratio of median wall times (pass-through rows vs im2rec --pass-through). "
        "CPU: user+system seconds of the whole tree; its ratio is less sensitive to a busy machine than "
        "images/s.\nCPU/wall: cores kept busy. RSS 1 proc: largest single process (wait4); RSS/PSS tree: "
        "peak of the sum over the process tree, sampled every 50 ms."
    )
    if not has_pack and not a.im2rec_only:
        print("NOTE: imgprep pack was not available; only im2rec was measured.")

    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(
            json.dumps(
                {
                    "benchmark": "pack",
                    "machine": info,
                    "pil": pil,
                    "runs": a.runs,
                    "warmup": a.warmup,
                    "threads": a.threads,
                    "load_average": {"before": load_before, "after": load_after},
                    "corpora": {c.name: {**c.stats, "synthetic": c.synthetic} for c in corpora},
                    "results": records,
                },
                indent=1,
            )
        )
        log(f"bench_pack: results saved to {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
