"""MXNet RecordIO, byte-compatible with dmlc-core and ``mxnet.recordio`` — no mxnet import.

A record is one or more *parts*, each ``magic:u32 | lrec:u32 | data | zero padding to 4 bytes``
(little-endian).  ``lrec = cflag << 29 | length`` with cflag 0 (whole record), 1 (first part),
2 (middle) or 3 (last).  The writer looks for the magic word only at 4-byte-aligned offsets of
the payload; wherever it stands it ends the current part and drops those four bytes, and the
reader puts the magic back between parts.  This is exactly dmlc-core's ``RecordIOWriter``.

An image record's payload is ``IRHeader`` (struct ``'IfQQ'``: flag, label, id, id2), then
``flag`` float32 labels when ``flag > 0`` (multi-label; the header label is then 0), then the
encoded image.

The ``.idx`` file is text, ``key<TAB>offset<LF>`` per record, offset of the record's first part,
parsed by :mod:`imgprep.formats.rioindex` for every reader.

Readers of records come in three modes, all here: strict (:class:`RecordReader`: the first
damage is an error), report-and-continue (:meth:`RecordReader.salvage`: damage reported, reading
resynchronised at the next record start; what verify walks with) and fast (:func:`unframe` of
one record's byte range fetched whole; the training reader).  :func:`walk` is the one part-header
walk of a stream read once (rebuilding an index, checksumming a shard); :func:`image_header` the
one reading of the image record header.
"""

from __future__ import annotations

import io
import os
import struct
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple

from imgprep.errors import FormatError, UsageError

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
MAX_LENGTH = (1 << 29) - 1
_WORD = struct.Struct("<I")
_PART_HEAD = struct.Struct("<II")
_IR = struct.Struct("<IfQQ")
IR_SIZE = _IR.size  # 24


class IRHeader(NamedTuple):
    """MXNet's image record header."""

    flag: int
    label: float
    id: int
    id2: int


# --------------------------------------------------------------------------- framing (pure)


def _lrec(cflag: int, length: int) -> bytes:
    return _PART_HEAD.pack(MAGIC, (cflag << 29) | length)


def frame(payload: bytes | bytearray | memoryview) -> bytes:
    """Frame one record the way dmlc-core's ``RecordIOWriter::WriteRecord`` does."""
    data = bytes(payload)
    size = len(data)
    if size > MAX_LENGTH:
        raise FormatError(f"record of {size} bytes exceeds RecordIO's limit of {MAX_LENGTH} bytes")
    out: list[bytes] = []
    start = 0
    pos = data.find(MAGIC_BYTES)
    lower_align = size & ~3
    while pos != -1:
        if pos % 4:
            # Unaligned occurrences stay inside the data; keep looking from the next byte.
            pos = data.find(MAGIC_BYTES, pos + 1)
            continue
        if pos >= lower_align:
            break
        out.append(_lrec(1 if start == 0 else 2, pos - start))
        out.append(data[start:pos])
        start = pos + 4
        pos = data.find(MAGIC_BYTES, start)
    out.append(_lrec(3 if start else 0, size - start))
    out.append(data[start:])
    pad = -size % 4
    if pad:
        out.append(b"\0" * pad)
    return b"".join(out)


# --------------------------------------------------------------------------- image records (pure)


def pack_header(label: float | Sequence[float], id: int, id2: int = 0) -> bytes:
    """Header (+ packed labels) for an image record.

    A number gives ``flag = 0``; a sequence of N labels gives ``flag = N`` and the labels as
    float32 after the header, as ``mxnet.recordio.pack`` does.
    """
    if isinstance(label, int | float):
        return _IR.pack(0, float(label), id, id2)
    labels = [float(x) for x in label]
    return _IR.pack(len(labels), 0.0, id, id2) + struct.pack(f"<{len(labels)}f", *labels)


def pack_image_record(label: float | Sequence[float], id: int, image: bytes, id2: int = 0) -> bytes:
    """Payload of an image record: header, optional labels, encoded image."""
    return pack_header(label, id, id2) + bytes(image)


def image_header(payload: bytes | memoryview) -> tuple[IRHeader, int]:
    """The header of an image record and where its image starts (after ``flag`` float32 labels):
    the one reading of MXNet's header that packing, verify and the training reader share."""
    if len(payload) < IR_SIZE:
        raise FormatError(f"image record of {len(payload)} bytes is shorter than its {IR_SIZE}-byte header")
    header = IRHeader(*_IR.unpack_from(payload))
    end = IR_SIZE + 4 * header.flag
    if end > len(payload):
        raise FormatError(f"image record header says {header.flag} labels but the record holds {len(payload)} bytes")
    return header, end


def header_id(payload: bytes | memoryview) -> int | None:
    """The id in an image record's header, when the payload is long enough to hold one (what names
    a record whose framing or labels are damaged)."""
    return IRHeader(*_IR.unpack_from(payload)).id if len(payload) >= IR_SIZE else None


def unpack_image_record(payload: bytes | memoryview) -> tuple[IRHeader, tuple[float, ...], bytes]:
    """Split an image record payload into (header, labels, image bytes).

    ``labels`` is ``(header.label,)`` for single-label records and the packed vector otherwise.
    """
    data = memoryview(payload)
    header, end = image_header(data)
    if header.flag == 0:
        return header, (header.label,), bytes(data[IR_SIZE:])
    labels = struct.unpack_from(f"<{header.flag}f", data, IR_SIZE)
    return header, labels, bytes(data[end:])


class ChunkStream:
    """A byte stream given as chunks in order, read forward once: ``buf[pos:]`` holds the stream
    from byte ``base + pos`` on (``base`` starts at the first chunk's file offset)."""

    def __init__(self, chunks: Iterable[bytes], start: int = 0) -> None:
        self._source = iter(chunks)
        self.buf, self.base, self.pos = bytearray(), start, 0

    def fill(self, n: int) -> bool:
        """At least ``n`` bytes held from ``pos`` on; False when the stream ends first."""
        while len(self.buf) - self.pos < n:
            chunk = next(self._source, None)
            if chunk is None:
                return False
            del self.buf[: self.pos]
            self.base, self.pos = self.base + self.pos, 0
            self.buf += chunk
        return True


def walk(chunks: Iterable[bytes], start: int = 0, *, crc: bool = False,
         framed: Callable[[bytes], None] | None = None) -> Iterator[tuple[int, bytes, int]]:
    """``(offset, payload head, checksum)`` of each record of a RecordIO stream given as byte
    chunks in order, read once: the one part-header walk.  The head is the payload's first
    :data:`IR_SIZE` bytes (fewer when the record is shorter); the checksum is the CRC-32 of the
    record's framed bytes when ``crc`` (else 0); ``framed``, when given, also receives those bytes.
    ``start`` is the file offset of the first chunk (offsets and messages count from the file's
    start)."""
    s = ChunkStream(chunks, start)
    first: int | None = None  # of the record whose parts are being read
    head, value, whole = b"", 0, bytearray()
    while s.fill(8):
        at = s.base + s.pos
        magic, lrec = _PART_HEAD.unpack_from(s.buf, s.pos)
        if magic != MAGIC:
            raise FormatError(f"no RecordIO magic number at byte {at}")
        cflag, length = lrec >> 29, lrec & MAX_LENGTH
        size = 8 + length + (-length % 4)
        if not s.fill(size):
            raise FormatError(f"record part at byte {at} is truncated")
        data = bytes(s.buf[s.pos + 8 : s.pos + 8 + min(length, IR_SIZE)])
        if cflag in (0, 1):
            if first is not None:
                raise FormatError(f"record at byte {first} has no last part")
            first, head, value = at, data, 0
            whole.clear()
        elif first is None:
            raise FormatError(f"byte {at} is inside a record, not at its start (cflag {cflag})")
        elif len(head) < IR_SIZE:
            head = (head + MAGIC_BYTES + data)[:IR_SIZE]
        if crc:
            value = zlib.crc32(memoryview(s.buf)[s.pos : s.pos + size], value)
        if framed is not None:
            whole += s.buf[s.pos : s.pos + size]
        s.pos += size
        if cflag in (0, 3):
            if framed is not None:
                framed(bytes(whole))
            yield first, head, value
            first = None
    if first is not None:
        raise FormatError(f"record at byte {first} has no last part")
    if len(s.buf) > s.pos:
        raise FormatError(f"truncated record: {len(s.buf) - s.pos} stray bytes at byte {s.base + s.pos}")


def record_ids(chunks: Iterable[bytes], start: int = 0) -> Iterator[tuple[int, int]]:
    """``(offset, header id)`` of each image record of a RecordIO stream given as byte chunks in
    order (:func:`walk`): what rebuilds the ``.idx`` of a ``.rec`` read once from its start (an
    S3 upload continued after a kill, whose first records were written by the killed run)."""
    for offset, head, _ in walk(chunks, start):
        if len(head) < IR_SIZE:
            raise FormatError(f"record at byte {offset} is shorter than an image record header")
        yield offset, IRHeader(*_IR.unpack_from(head)).id


def unframe(buf: bytes | memoryview, offset: int = 0) -> memoryview:
    """The payload of the one record framed in ``buf`` (bytes ``offset`` on of its file, for
    messages): what a reader that fetched a record's byte range whole (a ranged GET) takes apart.
    A record in one part comes back as a view into ``buf`` (no copy).  Bytes after the record
    are allowed only as its padding."""
    data = memoryview(buf)
    pos, pieces = 0, []
    while True:
        at = offset + pos
        if len(data) - pos < 8:
            raise FormatError(f"truncated record header at byte {at}")
        magic, lrec = _PART_HEAD.unpack_from(data, pos)
        if magic != MAGIC:
            raise FormatError(f"no RecordIO magic number at byte {at}")
        cflag, length = lrec >> 29, lrec & MAX_LENGTH
        if (cflag in (0, 1)) != (pos == 0):
            raise FormatError(f"record part at byte {at} has an unexpected cflag {cflag}")
        end = pos + 8 + length
        if end > len(data):
            raise FormatError(f"record at byte {offset} is truncated (part at byte {at} needs {length} bytes, "
                              f"{len(data) - pos - 8} follow)")
        pieces.append(data[pos + 8 : end])
        pos = end + (-length % 4)
        if cflag in (0, 3):
            break
    if len(data) - pos > 3 or any(data[pos:]):
        raise FormatError(f"record at byte {offset} ends at byte {offset + pos}, but {len(data) - pos} more bytes "
                          "follow before the next indexed record")
    return pieces[0] if len(pieces) == 1 else memoryview(MAGIC_BYTES.join(pieces))


# --------------------------------------------------------------------------- index files


def output_prefix(output: str) -> str:
    """``out.rec`` and ``out`` both mean the prefix ``out``; a prefix must end in a file name
    (``dir/`` or ``''`` would write the hidden files ``dir/.rec`` and ``.idx``)."""
    prefix = output[: -len(".rec")] if output.endswith(".rec") else output
    base = prefix.replace("\\", "/").rsplit("/", 1)[-1]
    if not base or base in (".", ".."):
        raise UsageError(f"output {output!r} names no file; give a prefix such as out/train")
    return prefix


def shard_names(prefix: str, number: int | None) -> tuple[str, str]:
    """``PREFIX.rec``/``.idx``, or shard ``number``'s ``PREFIX-00000.rec``/``.idx``."""
    base = prefix if number is None else f"{prefix}-{number:05d}"
    return base + ".rec", base + ".idx"


def format_index_line(key: int, offset: int) -> str:
    return f"{key}\t{offset}\n"


def parse_index(text: str, path: str = "<idx>") -> list[tuple[int, int]]:
    """Parse ``.idx`` text into ``[(key, offset), ...]`` in file order, validating every line
    (:mod:`imgprep.formats.rioindex`'s strict mode, the one parser every reader uses)."""
    from imgprep.formats import rioindex  # numpy: not for what never reads an index (pass-through pack)

    return rioindex.parse(text, path).entries()


def read_index(path: str | os.PathLike[str]) -> list[tuple[int, int]]:
    """Read an ``.idx`` file into ``[(key, offset), ...]`` in file order."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as fh:
            return parse_index(fh.read(), name)
    except FileNotFoundError:
        raise FormatError("no such index file", path=name) from None
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text ({exc.reason} at byte {exc.start}): not an index", path=name) from None
    except OSError as exc:
        raise FormatError(f"cannot read index ({exc.strerror})", path=name) from None


# --------------------------------------------------------------------------- writer


class RecordWriter:
    """Write records to a ``.rec`` (and optionally an ``.idx``).

    ``rec`` and ``idx`` may be paths or binary/text file objects (any object with ``write``);
    offsets are counted here, so the stream need not be seekable (an S3 upload, a pipe).
    Files opened here are closed on ``close()`` / leaving the ``with`` block; file objects
    passed in stay open (their owner commits or aborts them).
    """

    def __init__(
        self,
        rec: str | os.PathLike[str] | BinaryIO,
        idx: str | os.PathLike[str] | io.TextIOBase | BinaryIO | None = None,
    ) -> None:
        self._owned: list[object] = []
        if isinstance(rec, str | os.PathLike):
            self._rec: BinaryIO = open(rec, "wb")  # noqa: SIM115 - closed in close()
            self._owned.append(self._rec)
        else:
            self._rec = rec
        self._idx = None
        if idx is not None:
            if isinstance(idx, str | os.PathLike):
                self._idx = open(idx, "wb")  # noqa: SIM115
                self._owned.append(self._idx)
            else:
                self._idx = idx
        self.offset = 0
        self.count = 0

    def write(self, payload: bytes, key: int | None = None) -> int:
        """Frame and write one record; return its offset."""
        return self.write_framed(frame(payload), key)

    def write_framed(self, framed: bytes, key: int | None = None) -> int:
        """Write a record already framed with :func:`frame` (workers frame in parallel)."""
        offset = self.offset
        self._rec.write(framed)
        self.offset += len(framed)
        if self._idx is not None:
            line = format_index_line(self.count if key is None else key, offset)
            self._idx.write(line if isinstance(self._idx, io.TextIOBase) else line.encode("ascii"))
        self.count += 1
        return offset

    def close(self) -> None:
        while self._owned:
            self._owned.pop().close()  # type: ignore[attr-defined]

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- reader


class RecordReader:
    """Read a ``.rec`` sequentially, by offset, by key (with an ``.idx``), or from any byte offset.

    Safe to share: every read names its own offset (``os.pread`` on a path; a lock around
    seek + read on a file object), so threads may read through one reader at once.  A reader
    opened on a path can be pickled (the copy reopens the path, keeping the index) and keeps
    working in a forked child (``pread`` never moves a shared file position).  One opened on a
    file object cannot be pickled: the object is not ours to reopen.  ``len()`` is the number of
    records: the index's, or counted by walking the file once when there is no index.
    """

    def __init__(self, rec: str | os.PathLike[str] | BinaryIO, idx: str | os.PathLike[str] | None = None) -> None:
        self._fd: int | None = None
        self._fh: BinaryIO | None = None
        self._lock = threading.Lock()
        if isinstance(rec, str | os.PathLike):
            self.path = os.fspath(rec)
            self._open()
        else:
            self.path = getattr(rec, "name", "<stream>")
            self._fh = rec
        self._index: dict[int, int] = {}
        self._keys: list[int] = []
        self._count: int | None = None
        if idx is not None:
            entries = read_index(idx)
            self._keys = [k for k, _ in entries]
            self._index = dict(entries)
            self._count = len(entries)

    def _open(self) -> None:
        try:
            self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise FormatError(f"cannot open RecordIO file ({exc.strerror})", path=self.path) from None

    def __getstate__(self) -> dict[str, object]:
        if self._fd is None:
            raise TypeError(f"a RecordReader over a file object ({self.path}) cannot be pickled: open it by path")
        return {"path": self.path, "_index": self._index, "_keys": self._keys, "_count": self._count}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._fh = None
        self._lock = threading.Lock()
        self._open()

    def _pread(self, size: int, offset: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` (fewer only at the end of the file)."""
        if self._fd is not None:
            try:
                data = os.pread(self._fd, size, offset)
                while len(data) < size:  # pread may return short on some file systems
                    more = os.pread(self._fd, size - len(data), offset + len(data))
                    if not more:
                        break
                    data += more
                return data
            except OSError as exc:
                raise FormatError(f"cannot read at byte {offset} ({exc.strerror})", path=self.path) from None
        if self._fh is None:
            raise ValueError(f"{self.path}: the reader is closed")
        with self._lock:
            self._fh.seek(offset)
            return self._fh.read(size)

    @property
    def keys(self) -> list[int]:
        return list(self._keys)

    def __len__(self) -> int:
        if self._count is None:
            self._count = sum(1 for _ in self.records())
        return self._count

    def _read_part(self, offset: int) -> tuple[int, bytes, int]:
        """Read the part at ``offset``: (cflag, data, offset of the next part)."""
        head = self._pread(8, offset)
        if len(head) < 8:
            raise FormatError(f"truncated record header at byte {offset}", path=self.path)
        magic, lrec = _PART_HEAD.unpack(head)
        if magic != MAGIC:
            raise FormatError(f"no RecordIO magic number at byte {offset}", path=self.path)
        cflag, length = lrec >> 29, lrec & MAX_LENGTH
        data = self._pread(length, offset + 8)
        if len(data) < length:
            raise FormatError(f"record at byte {offset} is truncated ({len(data)} of {length} bytes)", path=self.path)
        return cflag, data, offset + 8 + length + (-length % 4)

    def read_record(self, offset: int) -> tuple[bytes, int]:
        """Read the record starting at ``offset``: (payload, offset of the next record)."""
        cflag, data, nxt = self._read_part(offset)
        if cflag == 0:
            return data, nxt
        if cflag != 1:
            raise FormatError(f"byte {offset} is inside a record, not at its start (cflag {cflag})", path=self.path)
        pieces = [data]
        while True:
            part_at = nxt
            cflag, data, nxt = self._read_part(part_at)
            if cflag not in (2, 3):
                raise FormatError(f"record split at byte {part_at} has an unexpected cflag {cflag}", path=self.path)
            pieces.append(data)
            if cflag == 3:
                return MAGIC_BYTES.join(pieces), nxt

    def read_at(self, offset: int) -> bytes:
        return self.read_record(offset)[0]

    def read_key(self, key: int) -> bytes:
        try:
            offset = self._index[key]
        except KeyError:
            raise FormatError(f"key {key} is not in the index", path=self.path) from None
        return self.read_at(offset)

    def records(self, start: int = 0) -> Iterator[tuple[int, bytes]]:
        """Yield ``(offset, payload)`` from a record start to the end of the file."""
        offset = start
        while self._pread(1, offset):
            payload, nxt = self.read_record(offset)
            yield offset, payload
            offset = nxt

    def __iter__(self) -> Iterator[bytes]:
        for _, payload in self.records(0):
            yield payload

    def find_record_start(self, offset: int) -> int | None:
        """First record start at or after ``offset``, or None at end of file.

        A record starts at an aligned magic word whose lrec has cflag 0 or 1 — the rule
        dmlc's splitters use to resynchronise when a file is divided between workers.
        """
        pos = (offset + 3) & ~3
        chunk_size = 1 << 20
        while True:
            chunk = self._pread(chunk_size + 8, pos)
            if len(chunk) < 8:
                return None
            limit = min(chunk_size, len(chunk) - 7)
            i = chunk.find(MAGIC_BYTES)
            while i != -1 and i < limit:
                if i % 4 == 0 and (_WORD.unpack_from(chunk, i + 4)[0] >> 29) in (0, 1):
                    return pos + i
                i = chunk.find(MAGIC_BYTES, i + 1)
            pos += limit

    def salvage(self, size: int,
                damaged: Callable[[int, int, str, int | None], None]) -> Iterator[tuple[int, int, bytes]]:
        """Report-and-continue: ``(ordinal, offset, payload)`` of every readable record of the
        first ``size`` bytes.  Where framing breaks, ``damaged(ordinal, offset, message, resync)``
        is told (``resync``: where reading goes on, None when no record start follows) and the
        walk resynchronises at the next record start, so one bad record never hides the rest."""
        offset, ordinal = 0, 0
        while offset < size:
            try:
                payload, nxt = self.read_record(offset)
            except FormatError as exc:
                resync = self.find_record_start(offset + 4)
                damaged(ordinal, offset, exc.message, resync)
                if resync is None:
                    return
                offset, ordinal = resync, ordinal + 1
                continue
            yield ordinal, offset, payload
            offset, ordinal = nxt, ordinal + 1

    def scan(self, start: int) -> Iterator[tuple[int, bytes]]:
        """Resynchronise at the first record start at or after ``start`` and read to the end."""
        first = self.find_record_start(start)
        if first is None:
            return iter(())
        return self.records(first)

    def close(self) -> None:
        """Close a file this reader opened (a file object passed in stays open: its owner closes it)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> RecordReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def count_records(path: str | Path) -> int:
    """Number of records in a ``.rec`` file (reads it sequentially)."""
    with RecordReader(path) as reader:
        return sum(1 for _ in reader.records())
