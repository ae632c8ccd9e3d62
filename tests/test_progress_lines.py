"""Progress wherever the output goes (issue 32.1): lines in a log or a pipe, a bar on a terminal,
nothing with --quiet; tested through a pipe and with a fake clock, never against the wall clock."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from imgprep.layout import meter

LINE = re.compile(r"^imgprep: (?P<label>[\w -]+): (?P<done>[\d,]+)(?:/(?P<total>[\d,]+))? (?P<unit>\w+)"
                  r"(?: \(\d+%\))?, [\d,]+ \w+/s, elapsed \d+:\d\d, (?P<left>ETA \d+:\d\d|ETA unknown|done)$")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_at_the_start_every_interval_and_at_the_end() -> None:
    clock, out = FakeClock(), io.StringIO()
    with meter.Lines("pack train", 1000, "img", stream=out, every=30.0, clock=clock) as bar:
        for _ in range(10):
            clock.now += 10.0
            bar.update(100)
    lines = out.getvalue().splitlines()
    # the start, then one line per 30 s of the 100 s pass (at 30, 60, 90 s), then the end
    assert len(lines) == 5, lines
    assert lines[0] == "imgprep: pack train: 0/1,000 img (0%), 0 img/s, elapsed 0:00, ETA unknown"
    assert lines[1] == "imgprep: pack train: 300/1,000 img (30%), 10 img/s, elapsed 0:30, ETA 1:10"
    assert lines[-1] == "imgprep: pack train: 1,000/1,000 img (100%), 10 img/s, elapsed 1:40, done"
    assert all(LINE.match(line) for line in lines), lines


def test_a_failed_pass_writes_no_end_line_and_a_short_automatic_pass_writes_nothing() -> None:
    clock, out = FakeClock(), io.StringIO()
    with pytest.raises(KeyError), meter.Lines("verify train", 10, "rec", stream=out, every=30.0, clock=clock) as bar:
        bar.update(3)
        raise KeyError("boom")
    assert [line.split(",")[0] for line in out.getvalue().splitlines()] == ["imgprep: verify train: 0/10 rec (0%)"]
    quiet = io.StringIO()
    with meter.Lines("pack val", 10, stream=quiet, every=30.0, delay=meter.DELAY, clock=clock) as bar:
        clock.now += meter.DELAY / 2
        bar.update(10)
    assert quiet.getvalue() == ""


def test_a_resumed_pass_counts_only_its_own_rate() -> None:
    clock, out = FakeClock(), io.StringIO()
    with meter.Lines("pack train", 1000, stream=out, every=30.0, clock=clock) as bar:
        bar.resume_at(900)
        clock.now += 10.0
        bar.update(100)
    assert out.getvalue().splitlines()[-1].startswith("imgprep: pack train: 1,000/1,000 img (100%), 10 img/s")


def test_the_kind_follows_the_stream_and_the_switches() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert meter.kind(stream=Terminal()) == "bar"
    assert meter.kind(stream=io.StringIO()) == "lines"
    assert meter.kind(progress=True, stream=Terminal()) == "lines"
    assert meter.kind(quiet=True, progress=True, stream=io.StringIO()) == "off"
    assert meter.kind(progress=False, stream=io.StringIO()) == "off"


@pytest.fixture(scope="module")
def tiny_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 tiny JPEGs in 4 class folders: a pass long enough for many lines at a short interval."""
    from PIL import Image

    root = tmp_path_factory.mktemp("tiny")
    for c in range(4):
        folder = root / f"class{c}"
        folder.mkdir()
        for i in range(500):
            Image.new("RGB", (8, 8), (60 * c, i % 256, 7)).save(folder / f"{i:04d}.jpg", quality=80)
    return root


def _cli(*args: object, interval: str = "0.001") -> subprocess.Popen[str]:
    env = {**os.environ, "IMGPREP_PROGRESS_INTERVAL": interval}
    cmd = [sys.executable, "-c", "from imgprep.cli.main import main; main()", *(str(a) for a in args)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            stdin=subprocess.DEVNULL)


def _first_line(fd: int) -> str:
    """One line read byte by byte from the pipe itself: a buffered readline may read ahead what
    communicate() then never sees (on a busy machine, the whole run's output)."""
    line = b""
    while not line.endswith(b"\n") and (byte := os.read(fd, 1)):
        line += byte
    return line.decode()


def test_a_piped_prepare_shows_progress_lines_before_it_finishes(tiny_tree: Path, tmp_path: Path) -> None:
    proc = _cli("prepare", "folders", tiny_tree, "-o", tmp_path / "out", "--dedup", "off", "-j", "1", "--progress")
    assert proc.stderr is not None
    first = _first_line(proc.stderr.fileno())  # the pipe gets the pass's first line as it starts
    _, rest = proc.communicate(timeout=300)
    assert proc.returncode == 0, rest
    lines = [first.rstrip("\n"), *rest.splitlines()]
    found = [m for m in map(LINE.match, lines) if m]
    assert found[0].group("label") == "pack train" and found[0].group("done") == "0"
    # lines from the middle of a pass: written while it ran, not at its end
    middle = [m for m in found if m.group("left").startswith("ETA") and m.group("done") != m.group("total")
              and m.group("done") != "0"]
    assert middle, lines
    ends = {m.group("label"): m.group("done") for m in found if m.group("left") == "done"}
    assert ends == {"pack train": "1,600", "pack val": "400"}


def test_without_a_switch_a_pipe_gets_lines_too(tiny_tree: Path, tmp_path: Path) -> None:
    proc = _cli("prepare", "folders", tiny_tree, "-o", tmp_path / "out", "--dedup", "off", "-j", "1")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    found = [m for m in map(LINE.match, err.splitlines()) if m]
    assert {m.group("label") for m in found} == {"pack train", "pack val"}, err
    assert any(m.group("left").startswith("ETA") for m in found)


def test_quiet_silences_the_lines(tiny_tree: Path, tmp_path: Path) -> None:
    proc = _cli("prepare", "folders", tiny_tree, "-o", tmp_path / "out", "--dedup", "off", "-j", "1", "--progress",
                "-q")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert not [line for line in err.splitlines() if LINE.match(line)], err


def test_verify_merge_and_inspect_write_lines_with_progress(tiny_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _cli("prepare", "folders", tiny_tree, "-o", out, "--dedup", "off", "-j", "1", "-q", "--shard-records", "500")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    for args, label in ((("verify", out / "train", "--progress"), "verify train"),
                        (("merge", out / "train", "-o", tmp_path / "all", "--progress"), "merge train"),
                        (("inspect", out / "train.lst", "--root", tiny_tree, "--progress"), "inspect")):
        proc = _cli(*args)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        found = [m for m in map(LINE.match, err.splitlines()) if m and m.group("label") == label]
        assert found and found[0].group("done") == "0" and found[-1].group("left") == "done", err


def test_a_processing_job_writes_lines_for_its_packs_and_its_join(tiny_tree: Path, tmp_path: Path) -> None:
    seen: dict[str, list[re.Match[str]]] = {}
    for index in (1, 0):  # host 1 packs its part; host 0 packs its own, then joins both
        proc = subprocess.Popen(
            [sys.executable, "-m", "imgprep.processing", "prepare", "folders", str(tiny_tree), "-o",
             str(tmp_path / "out"), "--opt-ml", str(tmp_path / f"optml{index}"), "--num-parts", "2", "--part-index",
             str(index), "--run-id", "t1", "--join", "auto" if index == 0 else "no", "--poll", "0.01", "--dedup",
             "off", "-j", "1", "--progress"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
            env={**os.environ, "IMGPREP_PROGRESS_INTERVAL": "0.001"})
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        for m in filter(None, map(LINE.match, err.splitlines())):
            seen.setdefault(m.group("label"), []).append(m)
    assert {"pack part-00000", "pack part-00001", "join train", "join val"} <= set(seen), sorted(seen)
    join = seen["join train"]
    assert join[0].group("done") == "0" and join[-1].group("left") == "done"
    assert join[-1].group("done") == join[-1].group("total") == "1,600"
