"""Layout facts about a page as headless Chromium lays it out, without screenshots.

``probe(page)`` writes a copy of the page beside it (so its relative thumbnails resolve) with one
script appended that opens every ``<details>``, loads every image at once, and after the load
event records, as JSON in the DOM that ``--dump-dom`` prints: every element of ``BOXES`` wider
inside than its box (``scrollWidth > clientWidth``), the page's own scroll width, and images that
failed to load.  The page under test carries no script; only the probe copy does.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; `make test` installs it
BOXES = "main, nav, section, .panel, .group, .card, .tile, .cards, .groups, .tiles, .splits, details.section"

SCRIPT = """<script>
for (const d of document.querySelectorAll('details')) d.open = true;
for (const i of document.images) i.loading = 'eager';
addEventListener('load', () => {
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.className ? '.' + String(el.className).trim().replace(/ +/g, '.') : '') +
    (el.dataset.split ? '[' + el.dataset.split + ']' : '');
  const overflow = [];
  for (const el of document.querySelectorAll(%s))
    if (el.scrollWidth > el.clientWidth + 1) overflow.push([name(el), el.scrollWidth, el.clientWidth]);
  const images = [...document.images];
  const out = {overflow, page: [document.documentElement.scrollWidth, document.documentElement.clientWidth],
               images: images.length, loaded: images.filter(i => i.complete && i.naturalWidth > 0).length,
               broken: images.filter(i => i.complete && i.naturalWidth === 0).map(i => i.getAttribute('src'))};
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.append(pre);
});
</script>"""


def chromium(page: Path, *args: str, width: int = 1280, height: int = 2600) -> subprocess.CompletedProcess[str]:
    # A missing browser is a broken install, so this fails rather than skips.
    assert CHROMIUM.exists(), f"{CHROMIUM} not found: apt-get install -y chromium"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--enable-logging=stderr", "--v=0", f"--window-size={width},{height}", *args, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
                          cwd=page.parent)


def console(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


def probe(page: Path, *, width: int = 1280) -> dict:
    copy = page.with_name(f"probe-{width}-{page.name}")
    text = page.read_text(encoding="utf-8")
    copy.write_text(text.replace("</body>", SCRIPT % json.dumps(BOXES) + "</body>"), encoding="utf-8")
    proc = chromium(copy, "--dump-dom", "--virtual-time-budget=30000", width=width, height=900)
    assert console(proc) == [], console(proc)
    start = proc.stdout.find('<pre id="probe">')
    assert start >= 0, proc.stdout[-2000:]
    end = proc.stdout.index("</pre>", start)
    raw = proc.stdout[start + len('<pre id="probe">'): end]
    return json.loads(raw.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
