"""Reading fingerprint files (:mod:`imgprep.formats.prints`) as :class:`~imgprep.splits.dedup.Prints` columns.

A file is trusted only as the dataset record lists it: its size, SHA-256 and row count must match
the record (and its rows the records' count), and it must hold every column the search needs with
the typecode it expects; anything else is one :class:`FormatError` naming the file.  Columns are
mapped one at a time when the search asks for them (:meth:`FilePrints.column`), not loaded: a
local file is memory-mapped, a remote one read by range, so only the columns in use are held.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

import numpy as np

from imgprep.errors import FormatError
from imgprep.formats.dataset import DatasetRecord, PrintsEntry, from_json, record_folder, record_name
from imgprep.formats.prints import Header, header_size, parse, row_layout
from imgprep.imaging.phash import KIND
from imgprep.splits.dedup import UNREADABLE, Groups, Prints, find_groups, low_detail
from imgprep.storage.base import Store


def needed() -> dict[str, str]:
    """Column name -> typecode of every column the search reads."""
    blank = Prints()
    return {f.name: getattr(blank, f.name).typecode for f in dataclasses.fields(Prints)}


class FilePrints:
    """One fingerprint file's columns, with ``len()`` and ``column(name)`` like :class:`Prints`."""

    def __init__(self, storage: Store, uri: str, header: Header) -> None:
        self.storage, self.uri, self.header = storage, uri, header
        self._by: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def by_row(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """For the row-number column ``name``: its values' positions in row order, and where each
        row's run starts in that order (``len(self) + 1`` entries); kept (rows are picked often)."""
        if name not in self._by:
            owner = self.column(name).astype(np.int64)
            order = np.argsort(owner, kind="stable")
            self._by[name] = order, np.searchsorted(owner[order], np.arange(len(self) + 1))
        return self._by[name]

    def __len__(self) -> int:
        return self.header.rows

    def column(self, name: str, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Values ``lo:hi`` of a column (all by default), mapped (or read) alone: only what is asked
        for is held, and only while the array lives."""
        col = self.header.column(name)
        if col is None:
            raise FormatError(f"fingerprint file has no column {name!r}", path=self.uri)
        lo, hi, _ = slice(lo, hi).indices(col.count)
        if hi <= lo:
            return np.zeros(0, col.typecode)
        start = col.offset + lo * np.dtype(col.typecode).itemsize
        end = start + (hi - lo) * np.dtype(col.typecode).itemsize
        return np.frombuffer(self.storage.read_view(self.uri, start, end), dtype=col.typecode)


class JoinedPrints:
    """Several files' rows one after another (the splits of a folder); row-number columns shifted."""

    def __init__(self, parts: Sequence[FilePrints]) -> None:
        self.parts = list(parts)
        self.rows = np.cumsum([0] + [len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self.rows[-1])

    def column(self, name: str, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Values ``lo:hi`` of the joined column, copied from one part's mapped values at a time."""
        if len(self.parts) == 1:
            return self.parts[0].column(name, lo, hi)
        cols = [p.header.column(name) for p in self.parts]
        if any(c is None for c in cols):
            raise FormatError(f"fingerprint file has no column {name!r}", path=self.parts[0].uri)
        counts = [c.count for c in cols if c is not None]
        lo, hi, _ = slice(lo, hi).indices(sum(counts))
        out = np.empty(max(0, hi - lo), np.dtype(cols[0].typecode))  # type: ignore[union-attr]
        first = 0  # the part's first value in the joined column
        for part, base, count in zip(self.parts, self.rows, counts, strict=False):
            a, b = max(lo, first), min(hi, first + count)
            if a < b:
                col = part.column(name, a - first, b - first)
                out[a - lo: b - lo] = col + int(base) if name.endswith("_row") else col
                del col
            first += count
        return out


def local_prints(path: str, storage: Store) -> FilePrints:
    """A fingerprint file this run wrote itself (no dataset record lists it yet)."""
    size = storage.size(path)
    with storage.open_read(path, 0, min(size, 1 << 16)) as fh:
        head = fh.read()
    if len(head) < header_size(head[:64]):
        with storage.open_read(path, 0, header_size(head[:64])) as fh:
            head = fh.read()
    return FilePrints(storage, path, parse(head, path, size))


def pick(sources: Sequence[FilePrints], source: np.ndarray, row: np.ndarray) -> dict[str, np.ndarray]:
    """Columns of the rows ``row[i]`` of ``sources[source[i]]``, in that order (a block of records
    from parts, or from a file in another order); row-number columns renumbered from 0."""
    layout = row_layout(sources[0].header)
    out: dict[str, np.ndarray] = {}
    for name, (kind, arg) in layout.items():
        pieces: list[tuple[np.ndarray, np.ndarray]] = []  # (block position of each value, values)
        for k, part in enumerate(sources):
            at = np.flatnonzero(source == k)
            if not len(at):
                continue
            rows = row[at].astype(np.int64)
            col = part.column(name)
            if kind == "rows":
                width = int(arg)
                values = col.reshape(-1, width)[rows].ravel() if width else col[:0]
                pieces.append((np.repeat(at, width), values))
                continue
            order, start = part.by_row(str(arg))
            counts = start[rows + 1] - start[rows]
            first = np.repeat(start[rows] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
            taken = order[first + np.arange(int(counts.sum()))]
            where = np.repeat(at, counts)
            pieces.append((where, where.astype(col.dtype) if name == arg else col[taken]))
        where = np.concatenate([w for w, _ in pieces]) if pieces else np.zeros(0, np.int64)
        values = np.concatenate([v for _, v in pieces]) if pieces else part_dtype(sources[0], name)
        out[name] = values[np.argsort(where, kind="stable")]
    return out


def part_dtype(part: FilePrints, name: str) -> np.ndarray:
    col = part.header.column(name)
    return np.zeros(0, col.typecode if col is not None else "Q")


def recorded(storage: Store, prefix: str) -> tuple[DatasetRecord, FilePrints] | None:
    """The dataset record of the packed output ``prefix`` and the fingerprint file it lists,
    checked (:func:`open_prints`); None when there is no record or it lists no file."""
    uri = record_name(prefix)
    if not storage.exists(uri):
        return None
    record = from_json(storage.read_bytes(uri), uri)
    if record.fingerprints is None:
        return None
    return record, open_prints(storage, record_folder(prefix), record.fingerprints, record.records)


def open_prints(storage: Store, folder: str, entry: PrintsEntry, records: int) -> FilePrints:
    """The fingerprint file the dataset record lists (``entry``, names relative to ``folder``),
    checked against the record: size, SHA-256, rows = ``records``, the columns the search needs."""
    uri = folder + entry.name
    if not storage.exists(uri):
        raise FormatError("fingerprint file listed in the dataset record is missing", path=uri)
    size = storage.size(uri)
    if size != entry.bytes:
        raise FormatError(f"fingerprint file holds {size:,} bytes, the dataset record says {entry.bytes:,}", path=uri)
    digest = hashlib.sha256()
    head = b""
    with storage.open_read(uri) as fh:
        while piece := fh.read(8 << 20):
            if len(head) < 1 << 16:
                head += piece[: (1 << 16) - len(head)]
            digest.update(piece)
    if digest.hexdigest() != entry.sha256:
        raise FormatError("fingerprint file does not match its SHA-256 in the dataset record (damaged or "
                          "replaced)", path=uri)
    if len(head) < header_size(head[:64]):
        with storage.open_read(uri, 0, header_size(head[:64])) as fh:
            head = fh.read()
    header = parse(head, uri, size)
    if header.kind != KIND:
        raise FormatError(f"fingerprint file holds fingerprints of another kind ({header.kind or 'unnamed'}; this "
                          f"imgprep computes {KIND}): not comparable", path=uri)
    if header.rows != entry.rows or header.rows != records:
        raise FormatError(f"fingerprint file holds {header.rows:,} rows for {records:,} records", path=uri)
    for name, typecode in {**needed(), "id": "q"}.items():
        col = header.column(name)
        if col is None or col.typecode != typecode:
            raise FormatError(f"fingerprint file has no column {name!r} of typecode {typecode!r} (written by "
                              "another imgprep version)", path=uri)
    return FilePrints(storage, uri, header)


def groups_by_id(prints: FilePrints | JoinedPrints, n: int, threshold: int, *,
                 workers: int | None = None) -> Groups:
    """The groups of images ``0..n-1`` from fingerprint rows whose ``id`` column names the image
    (prepare: the record id is the image's index); images without a row are unreadable.

    The search's answer does not depend on the rows' order, but its representative is the first
    row of the centre's hash: here that is made the smallest image index among them, so the
    groups equal those the same fingerprints give in image order (the pre-pass's)."""
    found = find_groups(prints, threshold, workers=workers)  # type: ignore[arg-type]
    ids = prints.column("id").astype(np.int64)
    if len(ids) and (ids.min() < 0 or ids.max() >= n or len(np.unique(ids)) != len(ids)):
        raise FormatError(f"fingerprint rows name record ids outside 0..{n - 1} or twice")
    hashes, digest = prints.column("hash"), prints.column("digest")
    rep = found.group
    centre = hashes == hashes[rep]
    first = np.full(len(rep), n, np.int64)
    np.minimum.at(first, rep[centre], ids[centre])
    group = np.arange(n, dtype=np.int64)
    group[ids] = first[rep]
    kind = np.full(n, UNREADABLE, found.kind.dtype)
    kind[ids] = found.kind
    by_id = np.zeros(n, digest.dtype)
    by_id[ids] = digest
    low = np.zeros(n, bool)
    low[ids] = low_detail(prints.column("detail"))
    return Groups(group, kind, by_id == by_id[group], found.hits, low)
