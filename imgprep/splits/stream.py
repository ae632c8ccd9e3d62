"""The lists to pack as a stream: validated in one pass, read again while packing, never held.

A list of a million lines held as ``LstItem`` objects costs ~250 MB; packing needs one item at
a time.  :class:`ListStream` checks every line (format, column count, unique indices) and takes
the lists' SHA-256 in a first pass, then re-reads them lazily each time it is iterated.  Unique
indices are checked with :class:`IndexSet`, a paged bitmap (dense ids, the usual case, cost one
bit each) that falls back to a sorted array for sparse ids, instead of a dict of every index.
A list on S3 is downloaded once and kept as bytes (one copy, not one object per line).
"""

from __future__ import annotations

import hashlib
import os
from array import array
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

from imgprep.errors import FormatError, reading
from imgprep.formats.dataset import ListRef
from imgprep.formats.lst import MAX_LINE, LstItem, parse_line
from imgprep.storage.base import Store

_BOM = b"\xef\xbb\xbf"

_PAGE_BITS = 1 << 12  # 512-byte pages: a dense list of N ids costs ~N/8 bytes


class IndexSet:
    """A set of non-negative ints that answers "seen before?" in ~1 bit per dense id.

    Sparse ids (pages holding few ids each) would cost a page per id, so past a threshold the
    set keeps ids in an ``array('q')`` and finds a repeat only in :meth:`repeated` (one sort).
    """

    def __init__(self) -> None:
        self._pages: dict[int, bytearray] | None = {}
        self._flat = array("q")
        self.count = 0

    def add(self, value: int) -> bool:
        """Record ``value``; False when it was already there (bitmap mode only; else see repeated)."""
        self.count += 1
        if self._pages is None:
            self._flat.append(value)
            return True
        page, bit = divmod(value, _PAGE_BITS)
        bits = self._pages.get(page)
        if bits is None:
            bits = self._pages[page] = bytearray(_PAGE_BITS // 8)
            if len(self._pages) > 1024 and len(self._pages) * 16 > self.count:
                self._to_flat()
                self._flat.append(value)
                return True
        byte, mask = divmod(bit, 8)
        if bits[byte] & (1 << mask):
            return False
        bits[byte] |= 1 << mask
        return True

    def _to_flat(self) -> None:
        pages, self._pages = self._pages or {}, None
        for page, bits in pages.items():
            for byte, value in enumerate(bits):
                for mask in range(8):
                    if value & (1 << mask):
                        self._flat.append(page * _PAGE_BITS + byte * 8 + mask)

    def repeated(self) -> int | None:
        """A value added twice while in array mode (bitmap mode reports repeats in :meth:`add`)."""
        if self._pages is not None or not self._flat:
            return None
        import numpy as np

        ids = np.frombuffer(self._flat, dtype=np.int64).copy()
        ids.sort()
        same = np.flatnonzero(ids[1:] == ids[:-1])
        return int(ids[same[0]]) if len(same) else None


def _raw_lines(fh: BinaryIO, uri: str) -> Iterator[bytes]:
    """The file's lines as bytes: a first-line UTF-8 byte order mark dropped (Windows editors
    write one), and no line held longer than :data:`MAX_LINE` bytes (``.lst`` lines are short;
    a file without newlines must not be read whole)."""
    lineno = 0
    while raw := fh.readline(MAX_LINE + 1):
        lineno += 1
        if lineno == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
            raise FormatError(f"line longer than {MAX_LINE} characters", path=uri, line=lineno)
        yield raw


class ListStream:
    """One or more ``.lst`` files (local or ``s3://``), validated up front, iterated lazily.

    Supports ``len()`` and iteration (each iteration re-reads the files); no indexing.
    """

    def __init__(self, uris: Sequence[str | os.PathLike[str]], storage: Store) -> None:
        self.uris = [os.fspath(uri) for uri in uris]
        self._storage = storage
        digest = hashlib.sha256()
        ids = IndexSet()
        for uri in self.uris:
            for _, item, _ in self._lines(uri, digest):
                if not ids.add(item.index):
                    raise self._duplicate(item.index)
        repeated = ids.repeated()
        if repeated is not None:
            raise self._duplicate(repeated)
        self._length = ids.count
        self.ref = ListRef(",".join(self.uris), digest.hexdigest(), self._length)

    def _open(self, uri: str) -> BinaryIO:
        # The store refuses a device or FIFO (/dev/zero would be read forever, a FIFO waited on).
        with reading(uri, "list file", expected=".lst file"):
            return self._storage.open_seekable(uri)

    def _lines(self, uri: str, digest: Any = None) -> Iterator[tuple[int, LstItem, bytes]]:
        columns: int | None = None
        with self._open(uri) as fh:
            for lineno, raw in enumerate(_raw_lines(fh, uri), 1):
                if digest is not None:
                    digest.update(raw)
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise FormatError(f"not UTF-8 text ({exc.reason})", path=uri, line=lineno) from None
                if not line.strip():
                    continue
                item = parse_line(line, path=uri, lineno=lineno, columns=columns)
                columns = len(item.labels) + 2
                yield lineno, item, raw

    def _duplicate(self, index: int) -> FormatError:
        """The error for ``index`` seen twice, naming both places (found by reading the lists again)."""
        places = [(k, n) for k, u in enumerate(self.uris) for n, item, _ in self._lines(u) if item.index == index]
        (first, first_line), (second, second_line) = places[0], places[1]
        first_uri, second_uri = self.uris[first], self.uris[second]
        if first == second:
            return FormatError(f"duplicate index {index} (first on line {first_line})", path=second_uri,
                               line=second_line)
        return FormatError(f"index {index} also appears in {first_uri}", path=second_uri)

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[LstItem]:
        # The lines were validated in the first pass: split and convert only (half the cost).
        for uri in self.uris:
            with self._open(uri) as fh:
                for raw in _raw_lines(fh, uri):
                    if raw.strip():
                        fields = raw.decode("utf-8").rstrip("\r\n").split("\t")
                        yield LstItem(int(fields[0]), tuple(map(float, fields[1:-1])), fields[-1])
