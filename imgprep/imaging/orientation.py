"""A JPEG's EXIF orientation from its header bytes, without decoding or importing Pillow.

Pack applies the orientation and drops the EXIF block, so only ``--pass-through`` records (and
records other tools stored as files) still carry one.  The training reader asks this of every
JPEG to send the few that need turning to the Pillow path, which turns them as pack does
(:func:`imgprep.imaging.pillow.as_packed`); the rest keep the native crop decode.
"""

from __future__ import annotations

import struct

_EXIF = b"Exif\x00\x00"
_TAG = 0x0112
_SHORT = 3


def jpeg_orientation(data: bytes | memoryview) -> int:
    """The orientation tag (1..8) of a JPEG's EXIF block; 1 when there is none or it is unreadable."""
    pos, size = 2, len(data)
    while pos + 4 <= size:
        if data[pos] != 0xFF:
            return 1
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = (data[pos + 2] << 8) | data[pos + 3]
        if marker == 0xDA or (0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC)) or length < 2:
            return 1  # EXIF comes before the frame header
        if marker == 0xE1 and bytes(data[pos + 4 : pos + 10]) == _EXIF:
            return _tiff_orientation(bytes(data[pos + 10 : pos + 2 + length]))
        pos += 2 + length
    return 1


def _tiff_orientation(tiff: bytes) -> int:
    """Tag 0x0112 of IFD0 of the TIFF structure inside an APP1 Exif segment."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return 1
    first = struct.unpack_from(order + "I", tiff, 4)[0]
    if first + 2 > len(tiff):
        return 1
    count = struct.unpack_from(order + "H", tiff, first)[0]
    for at in range(first + 2, min(first + 2 + 12 * count, len(tiff) - 11), 12):
        tag, kind = struct.unpack_from(order + "HH", tiff, at)
        if tag == _TAG:
            value = struct.unpack_from(order + "H", tiff, at + 8)[0] if kind == _SHORT else 1
            return value if 1 <= value <= 8 else 1
    return 1
