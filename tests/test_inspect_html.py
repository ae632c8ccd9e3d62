"""The inspect page in a real browser (headless Chromium): no console errors, one bar per class,
the planted leak pair shown side by side, nothing fetched from outside the page."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import inspect_fixture
import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; `make test` installs it


def _chromium(page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # A missing browser is a broken install, so this fails rather than skips.
    assert CHROMIUM.exists(), f"{CHROMIUM} not found: apt-get install -y chromium"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--enable-logging=stderr", "--v=0", "--window-size=1280,2600", *args, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          cwd=page.parent)


def _console(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def page(tmp_path_factory, imgprep_cli) -> Path:
    data = inspect_fixture.build(tmp_path_factory.mktemp("html"))
    out = data / "report.html"
    imgprep_cli("inspect", data, "--html", out)
    return out


def test_console_errors_are_detected_at_all(tmp_path):
    control = tmp_path / "control.html"
    control.write_text("<!doctype html><script>console.error('planted-error')</script>")
    assert any("planted-error" in line for line in _console(_chromium(control, "--dump-dom")))


def test_page_renders_without_console_errors(page):
    shot = page.parent / "shot.png"
    proc = _chromium(page, f"--screenshot={shot}")
    assert _console(proc) == []
    with Image.open(shot) as img:
        assert img.size == (1280, 2600)
        colours = np.asarray(img.convert("RGB").resize((320, 650))).reshape(-1, 3)
    assert len(np.unique(colours, axis=0)) > 2000  # thumbnails and charts drawn, not a blank page


def test_one_bar_per_class_and_the_leak_pair(page):
    proc = _chromium(page, "--dump-dom")
    assert _console(proc) == []
    dom = proc.stdout
    for split in ("train", "val"):
        section = re.search(rf'<section class="panel" data-split="{split}">(.*?)</section>', dom, re.S)
        assert section, split
        assert len(re.findall(r'<rect class="bar[" ]', section.group(1))) == len(inspect_fixture.CLASSES)
    leaks = re.findall(r'<div class="pair leak">(.*?)</div></div>', dom, re.S)
    assert len(leaks) == len(inspect_fixture.PLANTED)
    exact = [p for p in leaks if 'data-split="train" data-id="3"' in p and 'data-split="val" data-id="1000"' in p]
    assert len(exact) == 1 and "cat/0003.jpg" in exact[0] and "LEAK" in exact[0]
    sources = re.findall(r'<img src="([^"]*)"', dom)
    assert sources and all(s.startswith("data:image/jpeg;base64,") for s in sources)
    assert "<script" not in dom and "http" not in re.sub(r'xmlns="[^"]*"', "", dom)


def test_contact_sheet_png_has_a_strip_per_class(page):
    with Image.open(page.parent / "report-contact.png") as sheet:
        assert sheet.height == len(inspect_fixture.CLASSES) * (112 + 6) + 6
