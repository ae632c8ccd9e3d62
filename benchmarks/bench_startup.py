#!/usr/bin/env python3
"""The fixed cost of one ``imgprep`` command: interpreter start, imports, the command's own work
on one image, and the interpreter's exit.

On a short run (a few thousand small images) this start-up is a large share of the wall time,
and with more workers it is the part that does not shrink.  Each case is the whole process,
timed ``--runs`` times with this checkout and the ``--baseline`` checkout taking turns (so load
on a shared machine hits both alike); the table gives the best and the median wall, and the best
CPU time (user + system of the process: what others' load on the machine disturbs least):

- ``--version``: the command line and nothing else;
- ``pack`` of a one-line list (one 64x48 JPEG): ``--pass-through`` and ``--resize 32``, ``-j 2``;
- ``verify`` of that packed output.

``modules`` is how many modules the process had loaded when the command returned (not a timing,
so it does not drift with load); ``-X importtime`` then lists the slowest imports of the
pass-through pack, by cumulative time.

    .venv/bin/python benchmarks/bench_startup.py [--runs 10] [--baseline DIR] [--top 15]
        [--out /dev/shm/imgprep-startup] [--quick] [--json FILE]

``--baseline DIR`` is another checkout (e.g. ``git archive main | tar -x -C DIR`` with this
checkout's ``imgprep/_native*.so`` copied in).  Bytecode caching is allowed (``bench_env``), as
in a user's installation.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import REPO, bench_env, load_average, machine_info, table  # noqa: E402

# The console script's body; with BENCH_MODULES set it also prints how many modules were loaded at exit.
RUNNER = """\
import os, sys
from imgprep.cli.main import main
try:
    main(sys.argv[1:])
finally:
    if os.environ.get("BENCH_MODULES"):
        print("BENCH_MODULES", len(sys.modules), file=sys.stderr)
"""


def make_input(work: Path) -> tuple[Path, Path]:
    """One 64x48 JPEG under ``work/img`` and a one-line list naming it."""
    from PIL import Image

    root = work / "img"
    root.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 48), (200, 120, 40)).save(root / "a.jpg", quality=90)
    lst = work / "one.lst"
    lst.write_text("0\t0\ta.jpg\n", encoding="utf-8")
    return lst, root


def cases(lst: Path, root: Path, out: Path) -> dict[str, list[str]]:
    pack = ["pack", str(lst), "--root", str(root), "-o", str(out), "-j", "2", "--quiet"]
    return {
        "--version": ["--version"],
        "pack --pass-through": [*pack, "--pass-through"],
        "pack --resize 32": [*pack, "--resize", "32"],
        "verify": ["verify", str(out)],
    }


def command(args: list[str], *, importtime: bool = False) -> list[str]:
    return [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", RUNNER, *args]


def env_for(tree: Path, **extra: str) -> dict[str, str]:
    return bench_env(PYTHONPATH=str(tree), **extra)


def clear(out: Path) -> None:
    for stale in out.parent.glob(out.name + "*"):
        stale.unlink()


def run_once(tree: Path, argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, threads included) of one run."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(command(argv), env=env_for(tree), stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # keeps Popen from waiting again
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(argv)} failed (exit {proc.returncode}): {err.read()[-2000:].decode()}")
    return wall, usage.ru_utime + usage.ru_stime


def modules_loaded(tree: Path, argv: list[str]) -> int:
    proc = subprocess.run(command(argv), env=env_for(tree, BENCH_MODULES="1"), capture_output=True, text=True)
    for line in proc.stderr.splitlines():
        if line.startswith("BENCH_MODULES "):
            return int(line.split()[1])
    raise RuntimeError(f"no module count: {proc.stderr[-2000:]}")


def import_times(tree: Path, argv: list[str]) -> list[tuple[str, int, int]]:
    """(module, self us, cumulative us) of one run under ``-X importtime``."""
    proc = subprocess.run(command(argv, importtime=True), env=env_for(tree), capture_output=True, text=True)
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line or "self [us]" in line:
            continue
        own, cumulative, name = line[len("import time:"):].split("|")
        rows.append((name.strip(), int(own), int(cumulative)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--baseline", type=Path, help="another checkout of imgprep, timed in turn with this one")
    ap.add_argument("--top", type=int, default=15, help="slowest imports listed per checkout")
    ap.add_argument("--out", type=Path, default=Path("/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir())
                    / "imgprep-startup")
    ap.add_argument("--quick", action="store_true", help="3 runs")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    runs = 3 if args.quick else args.runs

    trees = {"this": REPO}
    if args.baseline:
        trees["baseline"] = args.baseline.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="startup-", dir=args.out))
    try:
        lst, root = make_input(work)
        out = work / "out"
        todo = cases(lst, root, out)
        print(f"# imgprep start-up, best and median of {runs} runs per cell (load {load_average()})", flush=True)
        walls: dict[tuple[str, str], list[float]] = {}
        cpus: dict[tuple[str, str], list[float]] = {}
        for case, argv in todo.items():
            for _ in range(runs):
                for name, tree in trees.items():  # in turn: load hits both alike
                    clear(out)
                    if case == "verify":
                        run_once(tree, todo["pack --pass-through"])
                    wall, cpu = run_once(tree, argv)
                    walls.setdefault((case, name), []).append(wall)
                    cpus.setdefault((case, name), []).append(cpu)
            clear(out)

        # CPU: what the process itself spent, less sensitive than wall to others' load on the machine.
        headers = ["command", *(f"{n}: wall best / median, CPU best (ms)" for n in trees)]
        if args.baseline:
            headers.append("this / baseline (best wall, best CPU)")
        rows = []
        for case in todo:
            row: list[object] = [case]
            for name in trees:
                w, c = walls[(case, name)], cpus[(case, name)]
                row.append(f"{1000 * min(w):.0f} / {1000 * statistics.median(w):.0f}, {1000 * min(c):.0f}")
            if args.baseline:
                ratio = [min(d[(case, "this")]) / min(d[(case, "baseline")]) for d in (walls, cpus)]
                row.append(f"{ratio[0]:.2f}, {ratio[1]:.2f}")
            rows.append(row)
        print(table(headers, rows))

        counts = {}
        for name, tree in trees.items():
            clear(out)
            run_once(tree, todo["pack --pass-through"])
            counts[name] = {case: modules_loaded(tree, argv) for case, argv in todo.items()}
            clear(out)
        print("\nmodules loaded at exit")
        print(table(["command", *trees], [[case, *(counts[n][case] for n in trees)] for case in todo]))

        imports = {}
        for name, tree in trees.items():
            clear(out)
            rows_it = import_times(tree, todo["pack --pass-through"])
            imports[name] = rows_it
            top = sorted(rows_it, key=lambda r: -r[2])[: args.top]
            total = sum(r[1] for r in rows_it)
            print(f"\n{name}: -X importtime of pack --pass-through: {len(rows_it)} imports, {total / 1000:.1f} ms "
                  f"in all; slowest by cumulative time")
            print(table(["module", "self (ms)", "cumulative (ms)"],
                        [[m, f"{s / 1000:.1f}", f"{c / 1000:.1f}"] for m, s, c in top]))
        clear(out)

        if args.json:
            args.json.write_text(json.dumps({
                "machine": machine_info(), "load": load_average(), "runs": runs,
                "walls_s": {f"{c} [{n}]": w for (c, n), w in walls.items()},
                "cpus_s": {f"{c} [{n}]": w for (c, n), w in cpus.items()},
                "modules": counts,
                "importtime": {n: [{"module": m, "self_us": s, "cumulative_us": c} for m, s, c in r]
                               for n, r in imports.items()},
            }, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
