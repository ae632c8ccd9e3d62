"""The inspect page in a real browser (headless Chromium): no console errors, the planted leak groups
shown, nothing fetched from outside the page's folder, and a page that stays workable at 20, 257
and 1,000 classes: summary first, navigation, folding sections with long tables folded, every
count the same wherever it appears, leak cards that show each split they span, nothing wider
than its card, a small page with its thumbnails as lazily loaded files beside it, published
thumbnails first and page last.  Screenshots are left in each test's output folder."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import inspect_fixture
import numpy as np
import pageprobe
import pytest
import report_data
from PIL import Image

from imgprep.inspect import assets, cards, html
from imgprep.inspect.run import inspect as run_inspect
from imgprep.storage.stores import Storage

SCALES = [20, 257, 1000]
MAX_PAGE = 5_000_000


def _screenshot(page: Path, name: str, height: int = 2600) -> np.ndarray:
    shot = page.parent / name
    proc = pageprobe.chromium(page, f"--screenshot={shot}", height=height)
    assert pageprobe.console(proc) == []
    with Image.open(shot) as img:
        assert img.size == (1280, height)
        return np.asarray(img.convert("RGB"))


def _dom(page: Path) -> str:
    proc = pageprobe.chromium(page, "--dump-dom")
    assert pageprobe.console(proc) == []
    return proc.stdout


def _n(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.fixture(scope="module")
def page(tmp_path_factory, imgprep_cli) -> Path:
    data = inspect_fixture.build(tmp_path_factory.mktemp("html"))
    out = data / "report.html"
    imgprep_cli("inspect", data, "--html", out)
    return out


@pytest.fixture(scope="module", params=SCALES, ids=[f"{c}-classes" for c in SCALES])
def big(request, tmp_path_factory, imgprep_cli) -> tuple[Path, report_data.Planted, str, str]:
    """(page, what was planted, the page's DOM in Chromium, the terminal report of the same data)."""
    data = tmp_path_factory.mktemp(f"html{request.param}")
    planted = report_data.build(data, request.param)
    out = data / "report.html"
    proc = imgprep_cli("inspect", data, "--html", out)
    return out, planted, _dom(out), proc.stdout


def _listing(page: Path) -> list[dict]:
    return [json.loads(line) for line in (page.parent / "report-duplicates.jsonl").read_text().splitlines()]


def test_console_errors_are_detected_at_all(tmp_path):
    control = tmp_path / "control.html"
    control.write_text("<!doctype html><script>console.error('planted-error')</script>")
    assert any("planted-error" in line for line in pageprobe.console(pageprobe.chromium(control, "--dump-dom")))


def test_page_renders_without_console_errors(page):
    colours = _screenshot(page, "shot.png")[::4, ::4].reshape(-1, 3)
    assert len(np.unique(colours, axis=0)) > 2000  # thumbnails and charts drawn, not a blank page


def test_one_bar_per_class_and_the_leak_groups(page):
    dom = _dom(page)
    for split in ("train", "val"):
        section = re.search(rf'<section class="panel" data-split="{split}">(.*?)</section>', dom, re.S)
        assert section, split
        assert len(re.findall(r'<rect class="bar[" ]', section.group(1))) == len(inspect_fixture.CLASSES)
    leaks = re.findall(r'<div class="group leak">(.*?)</div></div>', dom, re.S)
    assert len(leaks) == len(inspect_fixture.PLANTED)
    exact = [p for p in leaks if 'data-split="train" data-id="3"' in p and 'data-split="val" data-id="1000"' in p]
    assert len(exact) == 1 and "cat/0003.jpg" in exact[0] and "LEAK" in exact[0] and "identical files" in exact[0]
    assert all(">DROP<" in p for p in leaks)  # the val copy is marked as the one to drop
    assert "<script" not in dom and "http" not in re.sub(r'xmlns="[^"]*"', "", dom)


def test_thumbnails_are_files_beside_the_page_loaded_lazily(big):
    page, _, dom, _ = big
    images = re.findall(r"<img [^>]*>", dom)
    assert images and all('loading="lazy"' in i for i in images)
    sources = [re.search(r'src="([^"]*)"', i).group(1) for i in images]
    assert all(s.startswith("report-thumbs/") and (page.parent / s).is_file() for s in sources)
    # every file the folder holds is one the page shows (a rerun leaves none behind)
    assert {p.name for p in (page.parent / "report-thumbs").iterdir()} == {s.split("/", 1)[1] for s in sources}
    assert page.stat().st_size <= MAX_PAGE


def test_every_count_is_the_same_wherever_it_appears(big):
    page, planted, dom, text = big
    listing = _listing(page)
    truth = {"leaks": sum(g["leak"] for g in listing), "conflicts": sum(g["conflict"] for g in listing),
             "groups": sum(not g["leak"] and not g["conflict"] for g in listing), "duplicate-groups": len(listing),
             "classes": planted.classes, "splits": 2}
    assert truth["leaks"] >= planted.leaks + planted.both and truth["conflicts"] >= planted.conflicts + planted.both
    nav = re.search(r"<nav>(.*?)</nav>", dom, re.S).group(1)
    seen = {
        "nav": dict(re.findall(r'<a href="#(\w+)">[^<(]*\((?:<span class="tally">)?([\d,]+)(?:</span>)?\)</a>', nav)),
        "card": dict(re.findall(r'data-count="([\w-]+)"><b class="tally">([\d,]+)</b>', dom)),
        "heading": dict(re.findall(r'<details class="section" id="(\w+)"[^>]*><summary>[^<]*'
                                   r'<span class="tally">([\d,]+)</span>', dom)),
    }
    for where, found in seen.items():
        assert found, where
        for key, value in found.items():
            if key in truth:
                assert _n(value) == truth[key], (where, key, value, truth[key])
    sections = {"leaks", "conflicts", "groups", "classes", "splits"}
    assert set(seen["nav"]) == sections <= set(seen["card"]) and sections <= set(seen["heading"])
    # the terminal report counts the same groups
    assert f"leaks: {truth['leaks']:,} group(s)" in text
    assert f"label conflicts: {truth['conflicts']:,} group(s)" in text
    assert f"duplicates: {truth['duplicate-groups']:,} group(s)" in text
    drop = sum(i["action"] == "drop" for g in listing for i in g["images"])
    assert f"({drop:,} image(s) outside" in text and f"leaks ({drop:,} images to drop)" in dom


def test_each_leak_card_shows_a_member_of_every_split_first(big):
    page, _, dom, _ = big
    section = re.search(r'id="leaks"(.*?)</details></details>', dom, re.S).group(1)
    cards_ = re.split(r'(?=<div class="group[ "])', section.split("<details", 1)[0])
    shown = [c for c in cards_ if c.startswith('<div class="group')]
    assert len(shown) == min(cards.CARDS, sum(g["leak"] for g in _listing(page)))
    for card in shown:
        splits = re.findall(r'<figure data-split="(\w+)"', card)
        assert splits[:2] == ["train", "val"], splits
    # the crowded leak: five copies in train and one in val, val's shown beside the first train copy
    crowded = [c for c in shown if f'data-id="{report_data.CROWDED_ID}"' in c]
    assert len(crowded) == 1
    assert re.findall(r'<figure data-split="(\w+)" data-id="(\d+)"', crowded[0])[1] == (
        "val", str(report_data.CROWDED_ID))
    assert "+2 more (train 2)" in crowded[0]


def test_nothing_is_wider_than_its_card(big):
    page, *_ = big
    for width in (1280, 600):  # a desktop window, and half of one
        found = pageprobe.probe(page, width=width)
        assert found["overflow"] == [] and found["page"][0] <= found["page"][1], (width, found)
        assert found["broken"] == [] and found["loaded"] == found["images"] > 0, (width, found)
    shot = _screenshot(page, f"shot-{page.parent.name}-top.png", height=1600)
    assert len(np.unique(shot[::4, ::4].reshape(-1, 3), axis=0)) > 500


def test_long_tables_start_folded_and_sections_keep_their_order(big):
    page, planted, dom, _ = big
    order = [dom.index(f'id="{a}"') for a in ("summary", "leaks", "conflicts", "groups", "classes", "splits",
                                              "contact")]
    assert order == sorted(order)
    classes = re.search(r'id="classes"(.*?)</table></div>', dom, re.S).group(1)
    folded = "<details class=\"more\"><summary>Show the table of all" in classes
    assert folded == (planted.classes > html.OPEN_CLASSES)
    tables = re.findall(r"<table class=\"list by-(count|index)\">(.*?)</table>", dom, re.S)
    assert [t[0] for t in tables] == ["count", "index"]
    for _, body in tables:
        assert len(re.findall(r"<tr data-class=", body)) == planted.classes
    totals = [_n(x) for x in re.findall(r'<tr data-class="\d+"><td class="n">\d+</td><td>[^<]*'
                                        r'</td><td class="n">([\d,]+)</td>', tables[0][1])]
    assert totals == sorted(totals, reverse=True) and len(totals) == planted.classes
    # every group table starts folded; every group of a section is a row in it
    listing = _listing(page)
    section = re.search(r'id="leaks"(.*?)</details></details>', dom, re.S).group(1)
    assert re.search(r'<details class="more"><summary>List all', section)
    assert section.count("<tr>") == sum(g["leak"] for g in listing) + 1


def test_a_rerun_publishes_thumbnails_before_the_page_and_removes_only_stale_ones(tmp_path, monkeypatch):
    data = tmp_path / "data"
    report_data.build(data, 12)
    out = tmp_path / "r.html"
    findings = run_inspect(str(data), storage=Storage(), workers=2)
    html.write_html(findings, str(out))
    first = set(os.listdir(tmp_path / "r-thumbs"))
    # a different dataset to the same page: every thumbnail lands before the page names it
    report_data.build(data, 9, size=(56, 44))
    findings = run_inspect(str(data), storage=Storage(), workers=2)
    order = []
    real = os.replace

    def spy(src, dst):
        if str(dst) == str(out):  # the moment the new page appears, every file it names exists
            names = re.findall(r'src="r-thumbs/([^"]+)"', Path(src).read_text(encoding="utf-8"))
            order.append(("page", all((tmp_path / "r-thumbs" / n).is_file() for n in names)))
        else:
            order.append(("file", True))
        real(src, dst)

    monkeypatch.setattr(assets.os, "replace", spy)
    html.write_html(findings, str(out))
    assert order[-1] == ("page", True) and ("file", True) in order[:-1]
    now = set(os.listdir(tmp_path / "r-thumbs"))
    assert now and now != first
    shown = set(re.findall(r'src="r-thumbs/([^"]+)"', out.read_text(encoding="utf-8")))
    assert now == shown  # stale thumbnails removed after the page moved on; no temporary files left


def test_a_failure_while_writing_thumbnails_leaves_the_old_page_whole(tmp_path, monkeypatch):
    data = tmp_path / "data"
    report_data.build(data, 6)
    out = tmp_path / "r.html"
    findings = run_inspect(str(data), storage=Storage(), workers=1)
    html.write_html(findings, str(out))
    before = out.read_bytes()
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    real = assets.thumbs.render
    monkeypatch.setattr(assets.thumbs, "render", failing)
    with pytest.raises(OSError):
        html.write_html(findings, str(out), workers=1)
    assert out.read_bytes() == before
    names = re.findall(r'src="r-thumbs/([^"]+)"', before.decode("utf-8"))
    assert all((tmp_path / "r-thumbs" / n).is_file() for n in names)


def test_the_page_and_its_thumbnails_are_the_same_for_any_worker_count(tmp_path):
    data = tmp_path / "data"
    report_data.build(data, 15)
    findings = run_inspect(str(data), storage=Storage(), workers=2)
    pages = []
    for workers in (1, 3):
        out = tmp_path / f"w{workers}" / "r.html"
        out.parent.mkdir()
        html.write_html(findings, str(out), workers=workers)
        files = {p.name: p.read_bytes() for p in (out.parent / "r-thumbs").iterdir()}
        pages.append((out.read_bytes(), files))
    assert pages[0] == pages[1]
