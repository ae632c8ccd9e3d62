"""The packer's list pass: ``ListStream`` validation and one iteration, native scanner vs Python.

Both are serial work of the packer's parent (issue 20).  Each round times, in this process,
``ListStream([list], Storage())`` (the validation pass: every line parsed, unique indices, the
SHA-256) and one ``for item in stream`` (the items the packer is fed), first with
``IMGPREP_NATIVE=0`` (the pure-Python reading) then with ``IMGPREP_NATIVE=1`` (native/lstscan.c),
rounds interleaved; medians in µs per line, and the ratio.

    python benchmarks/bench_lists.py                       # 100,000 and 1,000,000 lines
    python benchmarks/bench_lists.py --quick               # 100,000 lines
    python benchmarks/bench_lists.py --list /tmp/100k.lst  # a list of yours
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE)]

from common import BENCH_DIR  # noqa: E402

import imgprep  # noqa: E402
from imgprep.splits import stream  # noqa: E402


def make_list(lines: int) -> Path:
    """``index<TAB>class<TAB>folder/file.jpg`` lines, as ``imgprep prepare`` writes them."""
    path = BENCH_DIR / "lists" / f"{lines}.lst"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as fh:
            for i in range(lines):
                fh.write(f"{i}\t{i % 100}\tn{i % 100:02d}/img_{i:07d}.jpg\n")
    return path


def one_round(path: Path, native: bool) -> tuple[float, float]:
    os.environ["IMGPREP_NATIVE"] = "1" if native else "0"
    t0 = time.perf_counter()
    items = stream.ListStream([str(path)], imgprep.Storage())
    t1 = time.perf_counter()
    for _ in items:
        pass
    t2 = time.perf_counter()
    if (items._scan is not None) != native:
        raise SystemExit("bench_lists: the native scanner is not built (imgprep._native.lst_scan)")
    return (t1 - t0) / len(items) * 1e6, (t2 - t1) / len(items) * 1e6


def measure(path: Path, rounds: int) -> dict:
    times: dict[str, list[tuple[float, float]]] = {"python": [], "native": []}
    for _ in range(rounds):
        for name in times:
            times[name].append(one_round(path, name == "native"))
    result = {"list": str(path), "lines": path.read_bytes().count(b"\n")}
    for name, rows in times.items():
        result[name] = {"validate_us_per_line": statistics.median(r[0] for r in rows),
                        "iterate_us_per_line": statistics.median(r[1] for r in rows)}
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100,000 lines only")
    ap.add_argument("--list", type=Path, action="append", help="a .lst to measure (repeatable)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path, help="write the results here")
    a = ap.parse_args(argv)
    paths = a.list or [make_list(n) for n in ((100_000,) if a.quick else (100_000, 1_000_000))]
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; medians of {a.rounds} interleaved rounds")
    print(f"{'list':<34} {'lines':>9} | {'validate µs/line':^26} | {'iterate µs/line':^26}")
    print(f"{'':<34} {'':>9} | {'python':>8} {'native':>8} {'ratio':>8} | {'python':>8} {'native':>8} {'ratio':>8}")
    results = []
    for path in paths:
        r = measure(path, a.rounds)
        results.append(r)
        py, nat = r["python"], r["native"]
        cells = []
        for key in ("validate_us_per_line", "iterate_us_per_line"):
            cells += [f"{py[key]:8.2f}", f"{nat[key]:8.2f}", f"{py[key] / nat[key]:7.1f}x"]
        print(f"{path.name:<34} {r['lines']:>9,} | {' '.join(cells[:3])} | {' '.join(cells[3:])}")
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
