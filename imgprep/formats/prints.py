"""The fingerprint file ``PREFIX.prints``: every record's duplicate fingerprint, in record order.

A pack that fingerprints what it stores (``prepare --dedup``) writes it beside its shards and lists
it in the dataset record (name, rows, bytes, SHA-256), so ``inspect`` reads the very fingerprints
the duplicate report (or the ``same-split`` split) was decided on instead of decoding every record.

Layout: ``MAGIC``, a little-endian u32 header length, a UTF-8 JSON header, then each column's
raw little-endian values, each starting on an 8-byte boundary.  The header names every column
with its array typecode, its value count and its offset, so any column can be mapped alone and
the file holds whatever columns the writer's fingerprint had (columns are not fixed here: a
reader checks the ones it needs).  Columns whose name ends in ``_row`` hold row numbers of the
file (``alt_row``): when files are joined those are shifted by the rows before them.

Pure functions: build and parse the header.  Nothing here reads or writes storage.
"""

from __future__ import annotations

import json
import struct
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from imgprep.errors import FormatError

MAGIC = b"IMGPREP-PRINTS\x00\x01"
VERSION = 1
SUFFIX = ".prints"
ALIGN = 8
_LENGTH = struct.Struct("<I")
_MAX_HEADER = 1 << 20


def prints_name(prefix: str) -> str:
    """``out/train`` -> ``out/train.prints``."""
    return prefix + SUFFIX


@dataclass(frozen=True)
class Column:
    name: str
    typecode: str
    count: int
    offset: int  # from the file's start

    @property
    def nbytes(self) -> int:
        return self.count * array(self.typecode).itemsize


@dataclass(frozen=True)
class Header:
    rows: int
    columns: tuple[Column, ...]
    size: int  # the whole file's size in bytes
    kind: str = ""  # which fingerprint the rows hold (the hash's definition): rows of another are not comparable

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


def _pad(n: int) -> int:
    return -n % ALIGN


def layout(rows: int, columns: Sequence[tuple[str, str, int]], kind: str = "") -> tuple[bytes, Header]:
    """The header bytes (padded to ``ALIGN``) for ``(name, typecode, count)`` columns written in
    that order after it, holding fingerprints of ``kind``, and the header they describe."""
    start = 0
    placed: list[tuple[str, str, int, int]] = []
    for name, typecode, count in columns:  # offsets from the first column's start
        placed.append((name, typecode, count, start))
        nbytes = count * array(typecode).itemsize
        start += nbytes + _pad(nbytes)
    # The header's length depends on the offsets it holds: place the columns after a header long
    # enough for any offset of this many digits, then pad.
    doc = {"version": VERSION, "kind": kind, "rows": rows, "columns": [
        {"name": n, "typecode": t, "count": c, "offset": 0} for n, t, c, _ in placed]}
    width = len(json.dumps(doc)) + 24 * (len(placed) + 1)
    base = len(MAGIC) + _LENGTH.size + width
    base += _pad(base)
    cols = tuple(Column(n, t, c, base + o) for n, t, c, o in placed)
    text = json.dumps({"version": VERSION, "kind": kind, "rows": rows, "columns": [
        {"name": c.name, "typecode": c.typecode, "count": c.count, "offset": c.offset} for c in cols]},
        separators=(",", ":")).encode()
    head = MAGIC + _LENGTH.pack(base - len(MAGIC) - _LENGTH.size) + text
    head += b" " * (base - len(head))
    return head, Header(rows, cols, base + start, kind)


def parse(head: bytes, path: str, size: int) -> Header:
    """The header of a fingerprint file whose first bytes are ``head`` and whose size is ``size``;
    every defect is one :class:`FormatError` naming ``path``."""
    if not head.startswith(MAGIC[:-1]):
        raise FormatError("not an imgprep fingerprint file", path=path)
    if head[len(MAGIC) - 1:len(MAGIC)] != MAGIC[-1:]:
        raise FormatError(f"fingerprint file version {head[len(MAGIC) - 1]} is not supported (this imgprep reads "
                          f"version {VERSION})", path=path)
    if len(head) < len(MAGIC) + _LENGTH.size:
        raise FormatError("fingerprint file is truncated in its header", path=path)
    (length,) = _LENGTH.unpack_from(head, len(MAGIC))
    end = len(MAGIC) + _LENGTH.size + length
    if length > _MAX_HEADER or end > len(head):
        raise FormatError("fingerprint file is truncated in its header", path=path)
    try:
        doc = json.loads(head[len(MAGIC) + _LENGTH.size:end])
        columns = tuple(Column(str(c["name"]), str(c["typecode"]), int(c["count"]), int(c["offset"]))
                        for c in doc["columns"])
        rows = int(doc["rows"])
        kind = str(doc.get("kind", ""))
    except (ValueError, KeyError, TypeError) as exc:
        raise FormatError(f"fingerprint file header is damaged ({exc})", path=path) from None
    for c in columns:
        if c.typecode not in "bBhHiIlLqQfd" or len(c.typecode) != 1:
            raise FormatError(f"fingerprint column {c.name!r} has an unknown typecode {c.typecode!r}", path=path)
        if c.offset < end or c.offset % ALIGN or c.offset + c.nbytes > size or c.count < 0:
            raise FormatError(f"fingerprint column {c.name!r} lies outside the file ({size:,} bytes)", path=path)
    return Header(rows, columns, size, kind)


def header_size(head: bytes) -> int:
    """How many bytes to read to hold the whole header (from its first 64 bytes)."""
    if len(head) < len(MAGIC) + _LENGTH.size:
        return len(MAGIC) + _LENGTH.size
    return len(MAGIC) + _LENGTH.size + min(_LENGTH.unpack_from(head, len(MAGIC))[0], _MAX_HEADER)


def row_layout(header: Header) -> dict[str, tuple[str, int | str]]:
    """How each column's values belong to rows, from the naming rule alone (so a new column needs
    no code here): a column ``X_row`` holds, per value, the row that value belongs to, for itself
    and every column named ``X_*`` (``("by", "X_row")``); any other column holds ``k`` values per
    row (``("rows", k)``).  What lets rows be picked from a file without knowing its columns."""
    owners = {c.name[: -len("row")]: c.name for c in header.columns if c.name.endswith("_row")}
    counts = {c.name: c.count for c in header.columns}
    out: dict[str, tuple[str, int | str]] = {}
    for c in header.columns:
        owner = next((row for lead, row in owners.items() if c.name.startswith(lead)), None)
        if owner is not None:
            if c.count != counts[owner]:
                raise FormatError(f"fingerprint column {c.name!r} holds {c.count} values, {owner!r} {counts[owner]}")
            out[c.name] = ("by", owner)
        elif header.rows and c.count % header.rows == 0:
            out[c.name] = ("rows", c.count // header.rows)
        elif not c.count:
            out[c.name] = ("rows", 0)
        else:
            raise FormatError(f"fingerprint column {c.name!r} holds {c.count} values for {header.rows} rows")
    return out
