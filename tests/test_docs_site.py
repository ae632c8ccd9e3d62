"""The documentation site: `mkdocs build --strict` builds it from this checkout alone, a broken link,
anchor or API reference fails that build, and its pages render in headless Chromium with the nav
and the API reference, loading nothing from the network."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; `make test` installs it


def _build(root: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(root / "mkdocs.yml"),
                           "--site-dir", str(site)], cwd=root, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


def _chromium(url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # A missing browser is a broken install, so this fails rather than skips.
    assert CHROMIUM.exists(), f"{CHROMIUM} not found: apt-get install -y chromium"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
           "--window-size=1280,2000", "--virtual-time-budget=5000", "--dump-dom", url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=cwd)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def _served(site: Path) -> Iterator[str]:
    """The site on a loopback HTTP server, as a reader gets it (search loads its index over HTTP)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _nav_titles(nav: list) -> list[str]:
    titles = []
    for entry in nav:
        for title, target in entry.items():
            titles.append(title)
            if isinstance(target, list):
                titles += _nav_titles(target)
    return titles


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("docs") / "site"
    proc = _build(REPO, site)
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr
    return site


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of what the build reads, to break on purpose (the package itself linked, not copied)."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("mkdocs.yml", "README.md"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "docs", root / "docs")
    for name in ("imgprep", "scripts"):
        (root / name).symlink_to(REPO / name)
    return root


def test_the_home_page_is_the_readme_with_its_links_into_the_site(site: Path) -> None:
    home = (site / "index.html").read_text(encoding="utf-8")
    assert "Set-up: two commands" in home and "make demo" in home
    links = set(re.findall(r'href="([^"#]+)', home))
    assert {"install.html", "pack.html", "training.html", "reference/api.html"} <= links
    assert not [link for link in links if link.startswith("docs/")]


def test_pages_render_with_the_nav_and_the_api_reference(site: Path) -> None:
    nav = _nav_titles(yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))["nav"])
    expected = {
        "reference/api.html": ["imgprep.api.convert", "imgprep.api.prepare", "imgprep.api.pack",
                               "imgprep.api.verify", "imgprep.api.inspect"],
        "reference/results.html": ["imgprep.packing.packer.PackSummary", "imgprep.plan.PrepareResult",
                                   "imgprep.verify.report.Report", "imgprep.packing.packer.PackOptions",
                                   "imgprep.imaging.spec.TransformSpec"],
        "reference/data.html": ["imgprep.data.Dataset", "imgprep.data.Loader", "imgprep.data.Sampler",
                                "imgprep.data.Transform", "imgprep.data.Dataset.num_classes"],
        "reference/errors.html": ["imgprep.errors.ImgprepError", "imgprep.errors.UsageError"],
    }
    with _served(site) as base:
        rendered = {page: _chromium(f"{base}/{page}", site) for page in [*expected, "index.html"]}
    for page, proc in rendered.items():
        assert proc.returncode == 0, proc.stderr
        assert [line for line in proc.stderr.splitlines() if ":CONSOLE" in line] == []
        dom = proc.stdout
        primary = dom.split('class="md-nav md-nav--primary"', 1)[1]
        labels = {re.sub(r"\s+", " ", t).strip() for t in re.findall(r'class="md-ellipsis">([^<]+)<', primary)}
        assert set(nav) <= labels, set(nav) - labels
        for anchor in expected.get(page, []):
            assert f'id="{anchor}"' in dom, f"{page}: no {anchor}"
        assert ":class:" not in dom and ":func:" not in dom  # Sphinx roles shown as code


def test_no_page_loads_anything_from_the_network(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 15
    for page in pages:
        html = page.read_text(encoding="utf-8")
        loads = re.findall(r'<(?:script|img|iframe)\b[^>]*\bsrc="([^"]+)"', html)
        loads += re.findall(r'<link\b[^>]*\bhref="([^"]+)"', html)
        remote = [url for url in loads if re.match(r"(?:[a-z]+:)?//", url)]
        assert remote == [], f"{page.relative_to(site)}: {remote}"
    for css in site.rglob("*.css"):
        remote = re.findall(r"url\(\s*['\"]?((?:https?:)?//[^)'\"]+)", css.read_text(encoding="utf-8"))
        assert remote == [], f"{css.relative_to(site)}: {remote}"


def test_a_page_outside_the_nav_is_built_not_refused(checkout: Path, tmp_path: Path) -> None:
    # Pages written on other branches land before the nav names them; their links back to the
    # README (right on GitHub) lead to the home page.
    (checkout / "docs" / "new-topic.md").write_text(
        "# A new topic\n\nSee [pack](pack.md#exit-status) and [the set-up](../README.md#set-up-two-commands).\n")
    proc = _build(checkout, tmp_path / "site")
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "site" / "new-topic.html").read_text(encoding="utf-8")
    assert 'href="pack.html#exit-status"' in page and 'href="index.html#set-up-two-commands"' in page


def test_broken_links_and_anchors_fail_the_build_each_named(checkout: Path, tmp_path: Path) -> None:
    breaks = {
        "docs/install.md": "\nSee [the exit status](pack.md#no-such-heading).\n",
        "docs/s3.md": "\nSee [a page](no-such-page.md).\n",
        "README.md": "\nSee [a page](docs/no-such-readme-link.md).\n",  # the home page
    }
    for page, text in breaks.items():
        with open(checkout / page, "a", encoding="utf-8") as f:
            f.write(text)
    proc = _build(checkout, tmp_path / "site")
    assert proc.returncode != 0
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 3, proc.stderr
    for named in ("'install.md'", "#no-such-heading", "'s3.md'", "no-such-page.md", "'index.md'",
                  "no-such-readme-link.md"):
        assert named in proc.stderr


def test_a_reference_to_a_missing_object_fails_the_build(checkout: Path, tmp_path: Path) -> None:
    with open(checkout / "docs" / "reference" / "api.md", "a", encoding="utf-8") as f:
        f.write("\n::: imgprep.api.no_such_function\n")
    proc = _build(checkout, tmp_path / "site")
    assert proc.returncode != 0
    assert "imgprep.api.no_such_function" in proc.stderr
