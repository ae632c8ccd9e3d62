"""Run every ``benchmarks/bench_*.py`` in turn and print their outputs.

    .venv/bin/python benchmarks/run_all.py            # --quick where a script supports it
    .venv/bin/python benchmarks/run_all.py --full     # each script's default (full) settings
    .venv/bin/python benchmarks/run_all.py --only pack native --json-dir .bench/results

A script "supports" an option when the option appears in its source: cheaper than starting each
script once for ``--help``.  Scripts run one after another so they never compete for the cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def supports(script: Path, option: str) -> bool:
    text = script.read_text(encoding="utf-8")
    return f'"{option}"' in text or f"'{option}'" in text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run all imgprep benchmarks.")
    ap.add_argument("--full", action="store_true", help="do not pass --quick")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="e.g. pack native (for bench_pack.py ...)")
    ap.add_argument("--json-dir", type=Path, help="pass --json DIR/<name>.json to scripts that take it")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per script (default 3600)")
    a = ap.parse_args(argv)

    scripts = sorted(HERE.glob("bench_*.py"))
    if a.only:
        wanted = {n.removeprefix("bench_").removesuffix(".py") for n in a.only}
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in wanted]
    if not scripts:
        print("run_all: no benchmark scripts matched", file=sys.stderr)
        return 1

    outcomes = []
    for script in scripts:
        cmd = [sys.executable, str(script)]
        if not a.full and supports(script, "--quick"):
            cmd.append("--quick")
        if a.json_dir and supports(script, "--json"):
            a.json_dir.mkdir(parents=True, exist_ok=True)
            cmd += ["--json", str(a.json_dir / f"{script.stem.removeprefix('bench_')}.json")]
        print(f"\n{'=' * 100}\n$ {' '.join(cmd)}\n{'=' * 100}", flush=True)
        t0 = time.perf_counter()
        try:
            # Output streams straight through: long benchmarks show progress as they go.
            rc = subprocess.run(cmd, timeout=a.timeout).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        outcomes.append((script.name, rc, time.perf_counter() - t0))

    print(f"\n{'=' * 100}\nrun_all summary")
    for name, rc, secs in outcomes:
        print(f"  {'ok  ' if rc == 0 else 'FAIL'}  {name:<28} exit {rc!s:<8} {secs:7.1f} s")
    return 0 if all(rc == 0 for _, rc, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
