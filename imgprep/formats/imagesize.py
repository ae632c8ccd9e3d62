"""Width and height from an encoded image's header, without decoding it.

What ``prepare`` needs to write an ``image_shape`` every packed image fits: the packer notes the
size of each record it writes (JPEG's SOF, PNG's IHDR, GIF's screen, BMP's info header, WebP's
VP8/VP8L/VP8X chunk), which costs a few byte comparisons per image.  None for anything else.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from imgprep.formats.recordio import IR_SIZE, MAGIC, MAX_LENGTH

_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def dimensions(data: bytes | memoryview) -> tuple[int, int] | None:
    """``(width, height)`` of a JPEG, PNG, GIF, BMP or WebP, from its header; None otherwise."""
    head = bytes(data[:32])
    if head[:3] == b"\xff\xd8\xff":
        return _jpeg(data)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24:
        return struct.unpack(">II", head[16:24])
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        return struct.unpack("<HH", head[6:10])
    if head[:2] == b"BM" and len(head) >= 26:
        width, height = struct.unpack("<ii", head[18:26])
        return abs(width), abs(height)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp(bytes(data[:40]))
    return None


def _jpeg(data: bytes | memoryview) -> tuple[int, int] | None:
    pos, size = 2, len(data)
    while pos + 4 <= size:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = (data[pos + 2] << 8) | data[pos + 3]
        if marker in _SOF:
            if pos + 9 > size:
                return None
            height = (data[pos + 5] << 8) | data[pos + 6]
            width = (data[pos + 7] << 8) | data[pos + 8]
            return width, height
        if marker == 0xDA or length < 2:
            return None
        pos += 2 + length
    return None


def _webp(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30:
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 30:
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    return None


def record_image(framed: bytes) -> bytes:
    """The encoded image of a framed image record (``.rec`` bytes of one record): parts joined
    with the magic put back, the header and any packed labels dropped."""
    parts, pos = [], 0
    magic = struct.pack("<I", MAGIC)
    while pos + 8 <= len(framed):
        lrec = int.from_bytes(framed[pos + 4 : pos + 8], "little")
        cflag, length = lrec >> 29, lrec & MAX_LENGTH
        if cflag in (2, 3):
            parts.append(magic)
        parts.append(framed[pos + 8 : pos + 8 + length])
        pos += 8 + length + (-length % 4)
        if cflag in (0, 3):
            break
    payload = b"".join(parts)
    flag = int.from_bytes(payload[:4], "little")
    return payload[IR_SIZE + 4 * flag :]


@dataclass
class SizeRange:
    """The smallest width and height among the packed images (None until one is seen)."""

    min_width: int | None = None
    min_height: int | None = None
    unknown: int = 0  # records whose header names no size (or that an earlier run wrote)

    def note(self, size: tuple[int, int] | None) -> None:
        if size is None:
            self.unknown += 1
            return
        width, height = size
        self.min_width = width if self.min_width is None else min(self.min_width, width)
        self.min_height = height if self.min_height is None else min(self.min_height, height)

    def note_framed(self, framed: bytes) -> None:
        self.note(dimensions(_image_head(framed)))

    @property
    def min_side(self) -> int | None:
        if self.unknown or self.min_width is None or self.min_height is None:
            return None
        return min(self.min_width, self.min_height)

    def add(self, other: SizeRange) -> None:
        """Take in the images ``other`` noted."""
        self.unknown += other.unknown
        if other.min_width is not None and other.min_height is not None:
            self.note((other.min_width, other.min_height))

    @classmethod
    def union(cls, ranges: Iterable[SizeRange]) -> SizeRange:
        out = cls()
        for r in ranges:
            out.add(r)
        return out


def _image_head(framed: bytes) -> bytes | memoryview:
    """The image bytes of a one-part record without copying them (most records), else joined."""
    if len(framed) >= 8 + IR_SIZE and int.from_bytes(framed[4:8], "little") >> 29 == 0:
        flag = int.from_bytes(framed[8:12], "little")
        length = int.from_bytes(framed[4:8], "little") & MAX_LENGTH
        return memoryview(framed)[8 + IR_SIZE + 4 * flag : 8 + length]
    return record_image(framed)
