"""The inspect page in a real browser (headless Chromium): no console errors, the planted leak groups
shown, nothing fetched from outside the page, and a page that stays workable at 20 and 1,000
classes (summary first, navigation, folding sections, capped lists with the whole list a click
away, class table sortable by count with split shares, paged contact sheets).  Screenshots are
left in each test's output folder."""

from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path

import imgfactory
import inspect_fixture
import numpy as np
import pytest
from PIL import Image

from imgprep.formats import recordio
from imgprep.inspect import html, thumbs

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; `make test` installs it


def _chromium(page: Path, *args: str, height: int = 2600) -> subprocess.CompletedProcess[str]:
    # A missing browser is a broken install, so this fails rather than skips.
    assert CHROMIUM.exists(), f"{CHROMIUM} not found: apt-get install -y chromium"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--enable-logging=stderr", "--v=0", f"--window-size=1280,{height}", *args, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          cwd=page.parent)


def _console(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


def _screenshot(page: Path, name: str, height: int = 2600) -> np.ndarray:
    shot = page.parent / name
    proc = _chromium(page, f"--screenshot={shot}", height=height)
    assert _console(proc) == []
    with Image.open(shot) as img:
        assert img.size == (1280, height)
        return np.asarray(img.convert("RGB"))


@pytest.fixture(scope="module")
def page(tmp_path_factory, imgprep_cli) -> Path:
    data = inspect_fixture.build(tmp_path_factory.mktemp("html"))
    out = data / "report.html"
    imgprep_cli("inspect", data, "--html", out)
    return out


def _jpeg(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


def _many_classes(folder: Path, classes: int, leaks: int, conflicts: int) -> Path:
    """train: 2 photos per class; val: 1 per class, ``leaks`` copies of train photos (same class) and
    ``conflicts`` copies of val photos under another class."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = [_jpeg(imgfactory.photo(48, 40, seed=i)) for i in range(3 * classes)]
    train = [(i, i % classes, photos[i]) for i in range(2 * classes)]
    val = [(100_000 + k, k, photos[2 * classes + k]) for k in range(classes)]
    val += [(200_000 + j, j % classes, photos[j]) for j in range(leaks)]
    val += [(300_000 + j, (j + 1) % classes, photos[2 * classes + j]) for j in range(conflicts)]
    for name, entries in (("train", train), ("val", val)):
        with recordio.RecordWriter(folder / f"{name}.rec", folder / f"{name}.idx") as writer:
            for id, label, data in entries:
                writer.write(recordio.pack_image_record(float(label), id, data), key=id)
    names = {str(k): f"class {k:04d} " + "x" * (k % 7) for k in range(classes)}
    (folder / "classes.json").write_text(json.dumps({"num_classes": classes, "names": names}))
    return folder


@pytest.fixture(scope="module", params=[20, 1000], ids=["20-classes", "1000-classes"])
def big(request, tmp_path_factory, imgprep_cli) -> tuple[Path, int, str]:
    classes = request.param
    data = _many_classes(tmp_path_factory.mktemp(f"html{classes}"), classes, leaks=3 * classes // 10 + 20,
                         conflicts=5)
    out = data / "report.html"
    imgprep_cli("inspect", data, "--html", out)
    return out, classes, out.read_text(encoding="utf-8")


def test_console_errors_are_detected_at_all(tmp_path):
    control = tmp_path / "control.html"
    control.write_text("<!doctype html><script>console.error('planted-error')</script>")
    assert any("planted-error" in line for line in _console(_chromium(control, "--dump-dom")))


def test_page_renders_without_console_errors(page):
    colours = _screenshot(page, "shot.png")[::4, ::4].reshape(-1, 3)
    assert len(np.unique(colours, axis=0)) > 2000  # thumbnails and charts drawn, not a blank page


def test_one_bar_per_class_and_the_leak_groups(page):
    proc = _chromium(page, "--dump-dom")
    assert _console(proc) == []
    dom = proc.stdout
    for split in ("train", "val"):
        section = re.search(rf'<section class="panel" data-split="{split}">(.*?)</section>', dom, re.S)
        assert section, split
        assert len(re.findall(r'<rect class="bar[" ]', section.group(1))) == len(inspect_fixture.CLASSES)
    leaks = re.findall(r'<div class="group leak">(.*?)</div></div>', dom, re.S)
    assert len(leaks) == len(inspect_fixture.PLANTED)
    exact = [p for p in leaks if 'data-split="train" data-id="3"' in p and 'data-split="val" data-id="1000"' in p]
    assert len(exact) == 1 and "cat/0003.jpg" in exact[0] and "LEAK" in exact[0] and "identical files" in exact[0]
    assert all(">DROP<" in p for p in leaks)  # the val copy is marked as the one to drop
    sources = re.findall(r'<img src="([^"]*)"', dom)
    assert sources and all(s.startswith("data:image/jpeg;base64,") for s in sources)
    assert "<script" not in dom and "http" not in re.sub(r'xmlns="[^"]*"', "", dom)


def test_page_is_workable_at_scale(big):
    page, classes, text = big
    leaks, conflicts = 3 * classes // 10 + 20, 5
    proc = _chromium(page, "--dump-dom")
    assert _console(proc) == []
    dom = proc.stdout
    # summary first, then the duplicate sections, classes, splits, contact sheet; a bar links them all
    order = [dom.index(f'id="{a}"') for a in ("summary", "leaks", "conflicts", "groups", "classes", "splits",
                                              "contact")]
    assert order == sorted(order)
    nav = re.search(r"<nav>(.*?)</nav>", dom, re.S).group(1)
    assert re.findall(r'href="#(\w+)"', nav) == ["summary", "leaks", "conflicts", "groups", "classes", "splits",
                                                 "contact"]
    assert dom.count("<details") >= 7  # every section folds
    # leaks: a capped set of cards, every group in the table a click away, and all in the sibling file
    listing = [json.loads(line) for line in (page.parent / "report-duplicates.jsonl").read_text().splitlines()]
    found = sum(g["leak"] for g in listing)
    # (tiny synthetic photos by the thousand also meet a few chance look-alikes: at least the planted ones)
    assert found >= leaks and sum(g["conflict"] for g in listing) >= conflicts
    section = re.search(r'id="leaks"(.*?)</details></details>', dom, re.S).group(1)
    assert len(re.findall(r'<div class="group leak', section)) == min(html.CARDS, found)
    assert section.count("<tr>") == found + 1  # header + one row per group
    section = re.search(r'id="conflicts"(.*?)</details></details>', dom, re.S).group(1)
    only = sum(g["conflict"] and not g["leak"] for g in listing)
    assert only >= conflicts and len(re.findall(r'<div class="group conflict', section)) == min(html.CARDS, only)
    # classes: one row per class in each order, by count first (descending)
    tables = re.findall(r"<table class=\"list by-(count|index)\">(.*?)</table>", dom, re.S)
    assert [t[0] for t in tables] == ["count", "index"]
    for _, body in tables:
        assert len(re.findall(r"<tr data-class=", body)) == classes
    totals = [int(x.replace(",", "")) for x in re.findall(r'<tr data-class="\d+"><td class="n">\d+</td><td>[^<]*'
                                                           r'</td><td class="n">([\d,]+)</td>', tables[0][1])]
    assert totals == sorted(totals, reverse=True) and len(totals) == classes
    # contact sheet: pages of tiles, none taller than a few screens
    pages = sorted(page.parent.glob("report-contact*.png"))
    assert len(pages) == -(-classes // thumbs.SHEET_CLASSES)
    for sheet in pages:
        with Image.open(sheet) as img:
            assert img.height <= 4000
    assert len(text) < 60 * classes * 1024  # thumbnails are small: ~tens of KB per class at most
    shot = _screenshot(page, f"shot-{classes}-top.png", height=1600)
    assert len(np.unique(shot[::4, ::4].reshape(-1, 3), axis=0)) > 500
