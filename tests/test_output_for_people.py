"""Output for people: long tables and lists end with '…and N more' and say where all of them
are; no line is wider than the terminal (COLUMNS) unless --json asks for everything."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios

from imgprep.formats import recordio
from imgprep.formats.display import cap, cells, clip, ljust

CLASSES = [f"class_{i:02d}_{'x' * 70}" for i in range(60)]


def _cli(*args, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI with stdout on a pipe, or (``columns``) on a terminal of that width."""
    cmd = [sys.executable, "-c", "from imgprep.cli.main import main; main()", *map(str, args)]
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if not columns:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, env=env)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(cmd, stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    _, err = proc.communicate(timeout=300)
    out = b"".join(chunks).decode().replace("\r\n", "\n")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err.decode())


def test_display_helpers():
    assert cells("Cafe\u0301") == 4 and ljust("Cafe\u0301", 6) == "Cafe\u0301  "
    assert clip("abcdefgh", 5) == "abcd…" and clip("abc", 5) == "abc" and clip("abcdefgh", 0) == "abcdefgh"
    rows = [str(i) for i in range(100)]
    assert cap(rows, 10, what="rows", full="x.json")[-1] == "…and 90 more rows (all in x.json)"
    assert cap(rows[:12], 10) == rows[:12]  # a couple more are shown, not counted


def test_long_lines_wrap_under_their_indent_and_giant_ones_are_cut():
    from imgprep.cli.screen import ROWS, fit

    message = "  warning: " + "word " * 18
    rows = fit(message, 40)
    assert all(len(r) <= 40 for r in rows) and rows[1].startswith("    ") and " ".join(rows).split() == \
        message.split()
    giant = fit("x" * 762_452, 80)
    assert len(giant) == ROWS and giant[-1].endswith("…") and all(len(r) == 80 for r in giant)
    assert fit("short", 80) == ["short"] and fit("x" * 200, 0) == ["x" * 200]


def test_inspect_caps_the_class_table_and_fits_the_terminal(tmp_path, imgfactory):
    imgfactory.class_tree(tmp_path / "photos", CLASSES, 1, sizes=((40, 40),))
    lst = tmp_path / "all.lst"
    lst.write_text("".join(f"{i}\t{i}\t{name}/img_000.jpg\n" for i, name in enumerate(CLASSES)))
    proc = _cli("inspect", lst, "--root", tmp_path / "photos", columns=80)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "  …and 20 more classes (all in --json or --html)" in lines
    assert max(len(line) for line in lines) <= 80
    wide = _cli("inspect", lst, "--root", tmp_path / "photos", "--json", columns=80)
    assert len(json.loads(wide.stdout)["splits"][0]["classes"]) == 60
    piped = _cli("inspect", lst, "--root", tmp_path / "photos")  # a pipe: nothing is cut
    assert max(len(line) for line in piped.stdout.splitlines()) > 80


def test_verify_lists_twenty_problems_and_counts_the_rest(tmp_path, imgfactory):
    with recordio.RecordWriter(tmp_path / "train.rec", tmp_path / "train.idx") as writer:
        for i in range(30):
            writer.write(recordio.pack_image_record(7.0, i, imgfactory.jpeg(20, 20, seed=i)), key=i)
    proc = _cli("verify", tmp_path / "train.rec", "--num-classes", "3")
    assert proc.returncode == 1
    assert "  …and 10 more problems (all in --json)" in proc.stdout.splitlines()
    doc = json.loads(_cli("verify", tmp_path / "train.rec", "--num-classes", "3", "--json").stdout)
    assert len(doc["problems"]) == 30


def test_prepare_prints_tables_then_warnings_then_the_summary(tmp_path, imgfactory):
    files = imgfactory.class_tree(tmp_path / "photos", [f"c{i:02d}" for i in range(60)], 2, sizes=((40, 40),))
    files[3].write_bytes(imgfactory.not_an_image())
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    proc = _cli("prepare", "folders", tmp_path / "photos", "-o", out, "--split", "train=0.5,val=0.5", "--resize",
                "32")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert f"…and 20 more classes (all in {out / 'classes.json'})" in lines
    table_end = lines.index(f"…and 20 more classes (all in {out / 'classes.json'})")
    warned = lines.index("warnings:")
    assert warned > table_end and warned > max(i for i, line in enumerate(lines) if line.startswith("packed "))
    block = lines[warned + 1:]
    assert any("1 non-image file(s) ignored" in line for line in block)
    assert any("1 listed" in line or "packed (1 skipped" in line for line in block)
    assert lines[-1].startswith("hyperparameters: num_classes=60, num_training_samples=")
    assert sum(line.startswith("hyperparameters:") for line in lines) == 1
