"""``imgprep inspect --html`` beside the terminal report on the same many-class dataset.

The dataset is tests/report_data.py's: ``--classes`` classes, ``--per-class`` distinct JPEGs of
``--size`` per class in train, one per class in val, and planted leaks and label conflicts
(cached under .bench/inspect-html/).  Both commands run whole (interpreter start included), in
turns (``common.interleaved``), ``--runs`` times; the table gives the median wall time, CPU, the
process's peak RSS (``ru_maxrss``), the page and its thumbnail folder, and each against the
terminal report.  ``--baseline DIR`` adds the page as another checkout writes it (e.g.
``git archive main | tar -x -C DIR`` plus its native core), on the same data, in the same turns.

    .venv/bin/python benchmarks/bench_inspect_html.py                   # 1,000 classes, 10 per class
    .venv/bin/python benchmarks/bench_inspect_html.py --quick           # 100 classes, 2 per class
    .venv/bin/python benchmarks/bench_inspect_html.py --baseline /tmp/main-checkout
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from common import (  # noqa: E402
    BENCH_DIR,
    REPO,
    bench_env,
    human_bytes,
    interleaved,
    load_average,
    machine_info,
    mib,
    run_measured,
    table,
)


def dataset(classes: int, per_class: int, size: tuple[int, int]) -> Path:
    import report_data

    folder = BENCH_DIR / "inspect-html" / f"c{classes}-p{per_class}-{size[0]}x{size[1]}"
    done = folder / ".done"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        report_data.build(folder, classes, per_class=per_class, size=size)
        done.write_text("ok\n")
    return folder


def _folder_bytes(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
    return len(files), sum(p.stat().st_size for p in files)


def _outputs(out: Path) -> dict:
    stem = out.with_suffix("")
    files, size = _folder_bytes(Path(f"{stem}-thumbs"))
    old_sheets = sorted(out.parent.glob(f"{stem.name}-contact*.png"))  # what the old page wrote beside it
    return {"page_bytes": out.stat().st_size if out.exists() else 0, "thumb_files": files + len(old_sheets),
            "thumb_bytes": size + sum(p.stat().st_size for p in old_sheets)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--size", default="160x120", help="WxH of every image [default: 160x120]")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout whose page to add")
    parser.add_argument("--quick", action="store_true", help="100 classes, 2 per class, one run")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.classes, args.per_class, args.runs = 100, 2, 1
    w, h = (int(x) for x in args.size.lower().split("x"))
    data = dataset(args.classes, args.per_class, (w, h))
    work = BENCH_DIR / "inspect-html" / "out"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    base = [sys.executable, "-m", "imgprep", "inspect", str(data), "-j", str(args.workers)]
    checkouts = {"text report": (REPO, []), "--html": (REPO, ["--html", str(work / "new.html")])}
    if args.baseline:
        checkouts["--html (baseline)"] = (args.baseline.resolve(), ["--html", str(work / "old.html")])
    commands = {name: (lambda root=root, extra=extra: run_measured(
        [*base, *extra], env=bench_env(PYTHONPATH=str(root)), cwd=work)) for name, (root, extra) in checkouts.items()}
    print(f"machine: {machine_info()}; load {load_average()}")
    print(f"data: {data} ({args.classes:,} classes, {args.per_class} per class, {w}x{h}); -j {args.workers}")
    results = interleaved(commands, args.runs, warmup=0, log=print)
    rows, doc = [], {"load_after": None, "results": {}}
    text = results["text report"]
    for name, m in results.items():
        wall = statistics.median(r.wall_s for r in m.runs)
        peak = max(r.max_rss_kib for r in m.runs)
        out = _outputs(Path(checkouts[name][1][1])) if checkouts[name][1] else {}
        rows.append([name, f"{wall:.2f} s", f"{statistics.median(r.cpu_s for r in m.runs):.1f} s", mib(peak),
                     f"{wall / statistics.median(r.wall_s for r in text.runs):.2f}x",
                     f"{peak / max(r.max_rss_kib for r in text.runs):.2f}x",
                     human_bytes(out["page_bytes"]) if out else "-",
                     f"{out['thumb_files']:,} files, {human_bytes(out['thumb_bytes'])}" if out else "-"])
        doc["results"][name] = {"wall_s": wall, "max_rss_kib": peak, **out}
    print(table(["command", "wall", "cpu", "peak RSS", "wall vs text", "peak vs text", "page", "thumbnails"], rows))
    doc["load_after"] = load_average()
    print(f"load after: {doc['load_after']}")
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
