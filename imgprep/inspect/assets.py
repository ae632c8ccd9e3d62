"""The files beside the inspect page, and the order they appear in.

Thumbnails go in ``OUT-thumbs/`` named by a digest of their bytes, so a rerun never overwrites a
file an open page still shows with another picture, and identical images share one file.  Every
file is written under a temporary name and renamed into place; the thumbnails and the group
listing come first and the page last, so a reader who opens the page at any moment finds every
file it names.  Files the new page no longer names are removed only after it is in place.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import quote

from imgprep.inspect import thumbs
from imgprep.inspect.analyse import Findings

SUFFIX = ".jpg"


@dataclass(frozen=True)
class Shown:
    """A thumbnail as the page names it."""

    href: str
    width: int
    height: int


def _write_atomic(path: str, data: bytes) -> None:
    # Unique per thread: two rows with identical pictures may write the same name at once.
    tmp = f"{path}.{os.getpid()}-{threading.get_ident()}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


class PageFiles:
    """Writes ``OUT``'s thumbnails and listing, then ``OUT`` itself, then clears what is stale."""

    def __init__(self, out: str) -> None:
        self.out = out
        self.folder = os.path.splitext(out)[0] + "-thumbs"
        # Hrefs are relative to the page, so the page and its folder move together.
        self.prefix = quote(os.fsencode(os.path.basename(self.folder))) + "/"
        self.names: set[str] = set()
        self.written: list[str] = []

    def thumbnails(self, findings: Findings, wanted: dict[int, Sequence[int]],
                   workers: int | None = None) -> dict[tuple[int, int], Shown]:
        """(row, side) -> its thumbnail, for every readable row of ``wanted`` (row -> sides)."""
        os.makedirs(self.folder, exist_ok=True)
        rows = sorted(wanted)
        with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
            made = pool.map(lambda r: self._make(findings, r, wanted[r]), rows, chunksize=16)
            out = {}
            for row, shown in zip(rows, made, strict=True):
                for side, item in zip(wanted[row], shown or (), strict=False):
                    out[row, side] = item
        if self.names:
            self.written.append(self.folder + os.sep)
        return out

    def _make(self, findings: Findings, row: int, sides: Sequence[int]) -> list[Shown] | None:
        rendered = thumbs.render(findings, row, sides)
        if rendered is None:
            return None
        shown = []
        for thumb in rendered:
            name = hashlib.sha256(thumb.data).hexdigest()[:20] + SUFFIX
            path = os.path.join(self.folder, name)
            if not os.path.exists(path):
                _write_atomic(path, thumb.data)
            self.names.add(name)
            shown.append(Shown(self.prefix + name, thumb.width, thumb.height))
        return shown

    def listing(self, lines: Iterable[str]) -> str:
        """Write the group listing beside the page; its file name, as the page links it."""
        path = os.path.splitext(self.out)[0] + "-duplicates.jsonl"
        _write_atomic(path, "".join(lines).encode("utf-8"))
        self.written.append(path)
        return os.path.basename(path)

    def publish(self, page: str) -> list[str]:
        """Put the page in place (last), then remove thumbnails no page names; the paths written."""
        # A file name that is not UTF-8 reaches here with surrogate escapes; the page shows U+FFFD
        # for its undecodable bytes, as the terminal report does.
        _write_atomic(self.out, page.encode("utf-8", "surrogateescape").decode("utf-8", "replace").encode("utf-8"))
        self._prune()
        return [self.out, *self.written]

    def _prune(self) -> None:
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return
        for name in names:
            if name not in self.names and (name.endswith(SUFFIX) or name.endswith(".tmp")):
                os.remove(os.path.join(self.folder, name))
        if not self.names and not os.listdir(self.folder):
            os.rmdir(self.folder)
