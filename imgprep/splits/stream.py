"""The lists to pack as a stream: validated in one pass, read again while packing, never held.

A list of a million lines held as ``LstItem`` objects costs ~250 MB; packing needs one item at
a time.  :class:`ListStream` checks every line (format, column count, unique indices) and takes
the lists' SHA-256 in a first pass, then re-reads them lazily each time it is iterated.  Unique
indices are checked with :class:`IndexSet`, a paged bitmap (dense ids, the usual case, cost one
bit each) that falls back to a sorted array for sparse ids, instead of a dict of every index.
A list on S3 is read through ranged reads (``Store.open_seekable``), one block at a time.

Both passes are serial work of the packer's parent, so with the native core built the lines
are read in blocks and parsed by ``imgprep._native.lst_scan`` (native/lstscan.c) with the GIL
released.  It takes only a strict subset of what :func:`parse_line` takes and stops at any
other line, which Python parses as it always has: items, errors, messages and line numbers are
the same with and without it (``IMGPREP_NATIVE=0`` turns it off; tests/test_list_scan.py).
"""

from __future__ import annotations

import hashlib
import itertools
import os
from array import array
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

from imgprep.errors import FormatError, reading
from imgprep.formats.dataset import ListRef
from imgprep.formats.lst import MAX_LINE, LstItem, parse_line
from imgprep.imaging.native import switch
from imgprep.storage.base import Store

try:
    from imgprep._native import ids_mark as _ids_mark
    from imgprep._native import lst_scan as _lst_scan
except ImportError:  # not built (no libturbojpeg headers), or built before the scanner existed
    _lst_scan = _ids_mark = None

_MARK_REPEAT, _MARK_NEW_PAGE = 1, 2  # what _ids_mark stopped at

_BOM = b"\xef\xbb\xbf"

_PAGE_SHIFT = 12
_PAGE_BITS = 1 << _PAGE_SHIFT  # 512-byte pages: a dense list of N ids costs ~N/8 bytes

# Bytes read (and hashed, and scanned in one native call while validating) at a time: larger
# blocks gain nothing measurable and would show in the peak memory of a pack.
_BLOCK = 1 << 18
# Items built per native call while iterating: what is held beyond the block.
_ITEMS_PER_CALL = 2048


class IndexSet:
    """A set of non-negative ints that answers "seen before?" in ~1 bit per dense id.

    Sparse ids (pages holding few ids each) would cost a page per id, so past a threshold the
    set keeps ids in an ``array('Q')`` and finds a repeat only in :meth:`repeated` (one sort).
    :meth:`add_many` records an array of ids in one native call per new page and ends in the
    same state, with the same first repeat, as :meth:`add` one by one.
    """

    def __init__(self) -> None:
        self._pages: dict[int, bytearray] | None = {}
        self._flat = array("Q")
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
            if self._too_sparse(len(self._pages), self.count):
                self._to_flat()
                self._flat.append(value)
                return True
        byte, mask = divmod(bit, 8)
        if bits[byte] & (1 << mask):
            return False
        bits[byte] |= 1 << mask
        return True

    def add_many(self, values: array) -> int | None:
        """Record ``values`` (an ``array('Q')``) in order; the position of the first one already
        there (bitmap mode, as :meth:`add` would find it; the values from there on are not
        recorded), or None.  The bits are set in C; :meth:`add` takes each new page."""
        if _ids_mark is None:
            return next((at for at, value in enumerate(values) if not self.add(value)), None)
        data, at = values.tobytes(), 0
        while at < len(values):
            if self._pages is None:
                self._flat.extend(values[at:])
                self.count += len(values) - at
                return None
            stop, status = _ids_mark(self._pages, data, at, _PAGE_BITS)
            self.count += stop - at
            if status == _MARK_REPEAT:
                return stop
            if status == _MARK_NEW_PAGE:
                self.add(values[stop])  # a new page: never a repeat
                stop += 1
            at = stop
        return None

    @staticmethod
    def _too_sparse(pages: int, count: int) -> bool:
        return pages > 1024 and pages * 16 > count

    def _to_flat(self) -> None:
        import numpy as np  # once per list at most, and only for sparse ids

        pages, self._pages = self._pages or {}, None
        for page, bits in pages.items():
            found = np.flatnonzero(np.unpackbits(np.frombuffer(bits, np.uint8), bitorder="little"))
            self._flat.frombytes((found.astype(np.uint64) + np.uint64(page * _PAGE_BITS)).tobytes())

    def repeated(self) -> int | None:
        """A value added twice while in array mode (bitmap mode reports repeats in :meth:`add`)."""
        if self._pages is not None or not self._flat:
            return None
        import numpy as np  # sparse ids only: a dense list never gets here

        ids = np.frombuffer(self._flat, dtype=np.uint64).copy()
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
            raise _too_long(uri, lineno)
        yield raw


def _too_long(uri: str, lineno: int) -> FormatError:
    return FormatError(f"line longer than {MAX_LINE} characters", path=uri, line=lineno)


def _parse_raw(raw: bytes, uri: str, lineno: int, columns: int | None) -> LstItem | None:
    """One line as bytes, parsed by :func:`parse_line`; None for a blank line."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text ({exc.reason})", path=uri, line=lineno) from None
    if not line.strip():
        return None
    return parse_line(line, path=uri, lineno=lineno, columns=columns)


def _split_raw(raw: bytes) -> LstItem | None:
    """One line validated before (by :func:`_parse_raw`), only split and converted; None for a
    blank line (blank as ``str.strip`` sees it, as in validation: U+3000 and U+0085 are space)."""
    line = raw.decode("utf-8")
    if not line.strip():
        return None
    fields = line.rstrip("\r\n").split("\t")
    return LstItem(int(fields[0]), tuple(map(float, fields[1:-1])), fields[-1])


# What a list yields in native reading: (line number, batch), the batch either one LstItem that
# Python parsed or the scanner's consecutive lines: an array of their ids (validating) or a list
# of their items (iterating).
Batch = tuple[int, "LstItem | array | list[LstItem]"]


class ListStream:
    """One or more ``.lst`` files (local or ``s3://``), validated up front, iterated lazily.

    Supports ``len()`` and iteration (each iteration re-reads the files); no indexing.
    """

    def __init__(self, uris: Sequence[str | os.PathLike[str]], storage: Store) -> None:
        self.uris = [os.fspath(uri) for uri in uris]
        self._storage = storage
        self._scan = _lst_scan if switch() is not False else None
        digest = hashlib.sha256()
        ids = IndexSet()
        for uri in self.uris:
            if self._scan is None:
                for _, item, _ in self._lines(uri, digest):
                    if not ids.add(item.index):
                        raise self._duplicate(item.index)
                continue
            for _, batch in self._batches(uri, digest):
                if isinstance(batch, LstItem):
                    if not ids.add(batch.index):
                        raise self._duplicate(batch.index)
                elif (at := ids.add_many(batch)) is not None:  # type: ignore[arg-type]
                    raise self._duplicate(int(batch[at]))  # type: ignore[index]
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
        """The pure-Python reading, line by line (the reference the native reading matches)."""
        columns: int | None = None
        with self._open(uri) as fh:
            for lineno, raw in enumerate(_raw_lines(fh, uri), 1):
                if digest is not None:
                    digest.update(raw)
                item = _parse_raw(raw, uri, lineno, columns)
                if item is None:
                    continue
                columns = len(item.labels) + 2
                yield lineno, item, raw

    def _batches(self, uri: str, digest: Any = None, *, items: bool = False) -> Iterator[Batch]:
        """The native reading: blocks of :data:`_BLOCK` bytes, whole lines scanned in C, any line
        the scanner leaves parsed by :func:`_parse_raw` (or, iterating a list validated before, by
        :func:`_split_raw`), with the line rules of :func:`_raw_lines` (its first line read the
        same way, so a byte order mark is handled in one place)."""
        scan, cls = self._scan, (LstItem if items else None)
        limit = _ITEMS_PER_CALL if items else _BLOCK
        with self._open(uri) as fh:
            first = next(_raw_lines(fh, uri), b"")
            if digest is not None:
                digest.update(first)
            item = _parse_raw(first, uri, 1, None) if first else None
            columns, lineno = (len(item.labels) + 2 if item else 0), 1
            if item is not None:
                yield 1, item
            buf, pos, eof = b"", 0, not first
            # A list the scanner keeps leaving (labels such as 1e-3, say) is read by Python for a
            # while (as many lines as it has just left in a row) instead of asking it every line.
            left = python_lines = 0
            while True:
                if not python_lines:
                    end, count, columns, ids, got = scan(buf, pos, columns, limit, cls)  # type: ignore[misc]
                    if count:
                        yield lineno + 1, (got if items else array("Q", ids))
                        lineno, pos, left = lineno + count, end, 0
                        continue
                newline = buf.find(b"\n", pos, pos + MAX_LINE + 1)
                if newline < 0 and len(buf) - pos > MAX_LINE:
                    raise _too_long(uri, lineno + 1)
                if newline < 0 and not eof:
                    block = fh.read(_BLOCK)
                    if digest is not None:
                        digest.update(block)
                    buf, pos, eof = buf[pos:] + block, 0, not block
                    continue
                if pos == len(buf):
                    return
                if python_lines:
                    python_lines -= 1
                else:
                    left += 1
                    python_lines = min(left, 1024) if left > 4 else 0
                raw = buf[pos : newline + 1] if newline >= 0 else buf[pos:]
                lineno, pos = lineno + 1, pos + len(raw)
                item = _split_raw(raw) if items else _parse_raw(raw, uri, lineno, columns or None)
                if item is not None:
                    columns = len(item.labels) + 2
                    yield lineno, item

    def _places(self, index: int) -> Iterator[tuple[int, int]]:
        """(list number, line number) of every line holding ``index``."""
        for k, uri in enumerate(self.uris):
            if self._scan is None:
                yield from ((k, n) for n, item, _ in self._lines(uri) if item.index == index)
                continue
            for lineno, batch in self._batches(uri):
                if isinstance(batch, LstItem):
                    if batch.index == index:
                        yield k, lineno
                else:
                    yield from ((k, lineno + at) for at, found in enumerate(batch) if found == index)  # type: ignore[arg-type]

    def _duplicate(self, index: int) -> FormatError:
        """The error for ``index`` seen twice, naming both places (found by reading the lists again)."""
        (first, first_line), (second, second_line) = itertools.islice(self._places(index), 2)
        first_uri, second_uri = self.uris[first], self.uris[second]
        if first == second:
            return FormatError(f"duplicate index {index} (first on line {first_line})", path=second_uri,
                               line=second_line)
        return FormatError(f"index {index} also appears in {first_uri}", path=second_uri)

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[LstItem]:
        if self._scan is None:
            return self._parsed_items()
        # chain in C: no Python frame resumed per item, only per batch
        return itertools.chain.from_iterable(self._item_batches())

    def _item_batches(self) -> Iterator[Sequence[LstItem]]:
        for uri in self.uris:
            for _, batch in self._batches(uri, items=True):
                yield (batch,) if isinstance(batch, LstItem) else batch  # type: ignore[misc]

    def _parsed_items(self) -> Iterator[LstItem]:
        # The lines were validated in the first pass: split and convert only (half the cost).
        for uri in self.uris:
            with self._open(uri) as fh:
                for raw in _raw_lines(fh, uri):
                    if (item := _split_raw(raw)) is not None:
                        yield item
