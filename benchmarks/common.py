"""Shared helpers for imgprep benchmarks: whole-process timing, process-tree memory, tables.

Every benchmark times complete commands (interpreter start and imports included) because that is what a
user waits for, and reports ratios measured side by side in one run: absolute figures drift between
runs and machines.

Memory of a run is reported three ways, because packers fork workers:

* ``max_rss``: the largest single process (``wait4`` ru_maxrss; Linux folds in the waited-for
  descendants, so this is the max over the tree, never a sum);
* ``tree_rss``: peak of the summed RSS of the whole process tree, sampled from ``/proc`` (shared pages,
  e.g. copy-on-write after fork, count once per process, so this over-states);
* ``tree_pss``: peak of the summed PSS (shared pages split between sharers): the best "how much memory
  does this job take" figure.

Sampling misses peaks shorter than the interval (default 50 ms); one scan of ``/proc`` costs about a
millisecond, the same for every method compared.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / ".bench"
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class RunResult:
    cmd: list[str]
    rc: int
    wall_s: float
    max_rss_kib: int  # largest single process in the tree
    tree_rss_kib: int  # peak of summed RSS over the tree (sampled)
    tree_pss_kib: int  # peak of summed PSS over the tree (sampled)
    max_procs: int  # most processes seen alive at once
    cpu_s: float = 0.0  # user + system CPU of the whole tree (waited-for descendants included)
    output_tail: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Measurement:
    """Median over several runs of one command."""

    runs: list[RunResult] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        return statistics.median(r.wall_s for r in self.runs)

    def peak(self, attr: str) -> int:
        return max(getattr(r, attr) for r in self.runs)

    def to_dict(self) -> dict:
        return {
            "median_wall_s": self.wall_s,
            "walls_s": [r.wall_s for r in self.runs],
            "max_rss_kib": self.peak("max_rss_kib"),
            "tree_rss_kib": self.peak("tree_rss_kib"),
            "tree_pss_kib": self.peak("tree_pss_kib"),
            "max_procs": self.peak("max_procs"),
            "median_cpu_s": statistics.median(r.cpu_s for r in self.runs),
        }

    @property
    def cpu_s(self) -> float:
        return statistics.median(r.cpu_s for r in self.runs)


# ----------------------------------------------------------------------------------------------
# /proc sampling


def _ppid_map() -> dict[int, int]:
    # Kernels without CONFIG_PROC_CHILDREN (e.g. this VM) have no task/*/children: scan every stat.
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: fields resume after the last ')'.
        rest = stat[stat.rfind(b")") + 2 :].split()
        out[int(name)] = int(rest[1])
    return out


def _descendants(root: int) -> list[int]:
    parent = _ppid_map()
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def _rss_pss_kib(pid: int) -> tuple[int, int]:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            rss = pss = 0
            for line in f:
                if line.startswith(b"Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith(b"Pss:"):
                    pss = int(line.split()[1])
            return rss, pss
    except (OSError, ValueError, IndexError):
        pass
    try:  # no smaps_rollup: RSS only, PSS approximated by RSS
        with open(f"/proc/{pid}/statm", "rb") as f:
            rss = int(f.read().split()[1]) * PAGE // 1024
        return rss, rss
    except (OSError, ValueError, IndexError):
        return 0, 0


class TreeSampler(threading.Thread):
    """Samples the summed RSS/PSS of a process tree until stopped."""

    def __init__(self, pid: int, interval: float = 0.05):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss = self.peak_pss = self.max_procs = 0
        self._done = threading.Event()

    def sample(self) -> None:
        tree = _descendants(self.pid)
        rss = pss = 0
        for pid in tree:
            r, p = _rss_pss_kib(pid)
            rss += r
            pss += p
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
        self.max_procs = max(self.max_procs, len(tree))

    def run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()


def run_measured(
    cmd: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    interval: float = 0.05,
    timeout: float | None = None,
) -> RunResult:
    """Run ``cmd`` to completion; wall time includes interpreter start-up and imports."""
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid, interval)
        sampler.start()
        deadline = None if timeout is None else t0 + timeout
        while True:
            # wait4 (not Popen.wait) to get this child's rusage, which includes its descendants.
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG if deadline else 0)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, ru = os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # keeps Popen from waiting again
        sampler.stop()
        out.seek(0)
        tail = out.read()[-4000:].decode("utf-8", "replace")
    return RunResult(
        cmd=list(cmd),
        rc=proc.returncode,
        wall_s=wall,
        max_rss_kib=ru.ru_maxrss,
        tree_rss_kib=sampler.peak_rss,
        tree_pss_kib=sampler.peak_pss,
        max_procs=sampler.max_procs,
        cpu_s=ru.ru_utime + ru.ru_stime,
        output_tail=tail,
    )


def interleaved(
    commands: dict[str, Callable[[], RunResult]],
    runs: int,
    warmup: int = 1,
    log: Callable[[str], None] | None = None,
) -> dict[str, Measurement]:
    """Run every command once per round, rounds repeated: drift (thermal, noisy neighbours) then
    hits all methods alike instead of whichever happened to run last."""
    results = {k: Measurement() for k in commands}
    for rnd in range(warmup + runs):
        for name, fn in commands.items():
            r = fn()
            if r.rc != 0:
                raise RuntimeError(f"{name} failed (exit {r.rc}): {' '.join(r.cmd)}\n{r.output_tail}")
            if log:
                tag = "warm-up" if rnd < warmup else f"run {rnd - warmup + 1}/{runs}"
                log(f"  {tag:>9}  {name:<34} {r.wall_s:7.2f} s")
            if rnd >= warmup:
                results[name].runs.append(r)
    return results


# ----------------------------------------------------------------------------------------------
# Misc


def bench_env(**overrides: str) -> dict[str, str]:
    """Environment for measured commands: the caller's, except that bytecode caching is allowed.

    Sandboxes often export PYTHONDONTWRITEBYTECODE=1; then every run recompiles the project's modules
    (site-packages were compiled at install time), which no user's installation pays.  With
    ``PYTHONPATH`` given, only that path (not the current folder) supplies imgprep.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(overrides)
    if "PYTHONPATH" in overrides:
        # A checkout chosen by PYTHONPATH must be what runs: `python -c` otherwise puts the current
        # folder first on sys.path, and from the repository root that is this checkout, not a --baseline.
        env["PYTHONSAFEPATH"] = "1"
    return env


def repeated_list(lst: Path, repeat: int, work: Path) -> Path:
    """``lst`` with every row listed ``repeat`` times (new record ids, same files), written to ``work``:
    a steady-state workload from a small corpus, where start-up costs are amortised."""
    if repeat == 1:
        return lst
    rows = [line.rstrip("\n").split("\t") for line in lst.open(encoding="utf-8")]
    out = work / f"{lst.stem}-x{repeat}.lst"
    with out.open("w", encoding="utf-8") as fh:
        for r in range(repeat):
            for i, (_, label, path) in enumerate(rows):
                fh.write(f"{r * len(rows) + i}\t{label}\t{path}\n")
    return out


def load_average() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def warm_page_cache(paths: Sequence[Path]) -> int:
    """Read files once so every method starts with them cached; returns bytes read."""
    total = 0
    for p in paths:
        with open(p, "rb") as f:
            while chunk := f.read(1 << 20):
                total += len(chunk)
    return total


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def machine_info() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Markdown table (renders in a terminal and pastes into reports)."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in cells)])
