"""Per-record checksums: which record a damaged byte hit, and a check a reader can make as it reads.

A shard's SHA-256 in the dataset record says only that *something* in the ``.rec`` changed.
Beside it the record keeps one CRC-32 per record (``ShardEntry.record_crc32``), computed over
the record's **framed bytes** — exactly the bytes ``.rec[offset : next offset]`` that a reader
using the ``.idx`` slices out (DALI, the dmlc splitter, ``imgprep.data``).  The ``.rec`` and
``.idx`` themselves are untouched, so MXNet and DALI read them as before.

A reader that gets the record's payload instead (``MXRecordIO.read``) can check it too:
framing is deterministic, so :func:`payload_crc` frames the payload again and hashes that.

CRC-32 (zlib's) finds every burst of damage up to 32 bits and costs about a memory copy; the
shard's SHA-256 stays the guard against anything a CRC could miss.  Stored as base64 of the
little-endian 32-bit values in file order, so the record grows by about 5.3 bytes per record.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence

from imgprep.errors import FormatError
from imgprep.formats.recordio import frame, walk


def record_crc(framed: bytes | bytearray | memoryview) -> int:
    """The checksum of one framed record (its bytes in the ``.rec``, padding included)."""
    return zlib.crc32(framed)


def payload_crc(payload: bytes | bytearray | memoryview) -> int:
    """The checksum of a record given by its payload (what ``MXRecordIO.read`` returns)."""
    return zlib.crc32(frame(payload))


class RecordChecksumError(FormatError):
    """A record's bytes differ from what was packed."""


def check_record(data: bytes | bytearray | memoryview, expected: int, *, framed: bool = True,
                 where: str = "record") -> None:
    """Raise :class:`RecordChecksumError` naming ``where`` unless ``data`` is the record that was
    packed.  ``data`` is the framed record (``framed=True``: the slice of the ``.rec`` between two
    index offsets) or its payload (``framed=False``).  ``expected`` comes from :func:`decode`."""
    found = record_crc(data) if framed else payload_crc(data)
    if found != expected:
        raise RecordChecksumError(f"{where}: CRC-32 {found:08x} differs from the packed record's {expected:08x} "
                                  "(the bytes changed after packing)")


_PIECE = 3 << 18  # bytes base64-encoded at a time: a multiple of 3, so the pieces join exactly


def encode(crcs: Sequence[int] | array) -> str:
    """The stored form: base64 of little-endian 32-bit values."""
    return "".join(piece.decode("ascii") for piece in encoded_pieces(crcs))


def encoded_pieces(crcs: Sequence[int] | array) -> Iterator[bytes]:
    """:func:`encode`'s text as ASCII bytes, a piece at a time from the array's own memory: a
    million records' checksums are 4 MB and their text 5.3 MB, and the packer writes them into
    the dataset record without holding either twice."""
    values = crcs if isinstance(crcs, array) and crcs.typecode == "I" else array("I", crcs)
    data = memoryview(values if _LITTLE else _swapped(values)).cast("B")
    return (base64.b64encode(data[at : at + _PIECE]) for at in range(0, len(data), _PIECE))


def encoded_size(count: int) -> int:
    """Length of :func:`encode`'s text for ``count`` checksums."""
    return 4 * ((4 * count + 2) // 3)


def decode(text: str, records: int, where: str = "record_crc32") -> array:
    """The checksums of ``records`` records from their stored form; :class:`FormatError` if malformed."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise FormatError(f"{where} is not base64") from None
    if len(data) != 4 * records:
        raise FormatError(f"{where} holds {len(data) // 4} checksums for {records} records")
    values = array("I")
    values.frombytes(data)
    return values if _LITTLE else _swapped(values)


def by_offset(crcs: Sequence[int], offsets: Iterable[int]) -> dict[int, int]:
    """Map each record's byte offset (from a ``.idx``, any order) to its checksum: the i-th
    record in the file has the i-th smallest offset."""
    ordered = sorted(set(offsets))
    if len(ordered) != len(crcs):
        raise FormatError(f"{len(ordered)} record offsets for {len(crcs)} checksums")
    return dict(zip(ordered, crcs, strict=True))


def spans(chunks: Iterable[bytes], start: int = 0, *,
          framed: Callable[[bytes], None] | None = None) -> Iterator[tuple[int, int]]:
    """``(offset, checksum)`` of each record of a ``.rec`` given as byte chunks in order, read
    once (a shard checked again after ``--resume``, a joined shard), by the one part walk
    (:func:`imgprep.formats.recordio.walk`).  ``start`` is the first chunk's offset; ``framed``,
    when given, also receives each record's framed bytes."""
    return ((offset, crc) for offset, _, crc in walk(chunks, start, crc=True, framed=framed))


_LITTLE = array("I", [1]).tobytes()[0] == 1


def _swapped(values: array) -> array:
    out = array("I", values)
    out.byteswap()
    return out
