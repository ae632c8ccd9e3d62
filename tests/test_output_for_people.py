"""Output for people: long tables and lists end with '…and N more' and say where all of them
are; no line is wider than the terminal (COLUMNS) unless --json asks for everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from imgprep.formats import recordio
from imgprep.formats.display import cap, cells, clip, ljust

CLASSES = [f"class_{i:02d}_{'x' * 70}" for i in range(60)]


def _cli(*args, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns:
        env["COLUMNS"] = str(columns)
    return subprocess.run([sys.executable, "-c", "from imgprep.cli.main import main; main()", *map(str, args)],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, env=env)


def test_display_helpers():
    assert cells("Cafe\u0301") == 4 and ljust("Cafe\u0301", 6) == "Cafe\u0301  "
    assert clip("abcdefgh", 5) == "abcd…" and clip("abc", 5) == "abc" and clip("abcdefgh", 0) == "abcdefgh"
    rows = [str(i) for i in range(100)]
    assert cap(rows, 10, what="rows", full="x.json")[-1] == "…and 90 more rows (all in x.json)"
    assert cap(rows[:12], 10) == rows[:12]  # a couple more are shown, not counted


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


def test_verify_lists_twenty_problems_and_counts_the_rest(tmp_path, imgfactory):
    with recordio.RecordWriter(tmp_path / "train.rec", tmp_path / "train.idx") as writer:
        for i in range(30):
            writer.write(recordio.pack_image_record(7.0, i, imgfactory.jpeg(20, 20, seed=i)), key=i)
    proc = _cli("verify", tmp_path / "train.rec", "--num-classes", "3")
    assert proc.returncode == 1
    assert "  …and 10 more problems (all in --json)" in proc.stdout.splitlines()
    doc = json.loads(_cli("verify", tmp_path / "train.rec", "--num-classes", "3", "--json").stdout)
    assert len(doc["problems"]) == 30
