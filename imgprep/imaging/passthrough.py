"""``--pass-through``: store the file's bytes unchanged after a cheap look at them.

No decoder here (and no Pillow import): pass-through must work, and stay fast, with nothing but
the bytes.  The checks catch what would surely fail a trainer's decoder: a file that is no known
image format, and a JPEG cut short before its end marker.
"""

from __future__ import annotations

from imgprep.errors import ImageError

_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def sniff_format(data: bytes) -> str | None:
    """Image format from the first bytes, without decoding (used by --pass-through)."""
    head = bytes(data[:16])
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    return None


def check_passthrough(data: bytes, name: str) -> bytes:
    """Cheap sanity checks for --pass-through: a known image signature and, for JPEG, an end marker."""
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError("not an image (unknown file signature)", path=name)
    if fmt == "JPEG" and data.rfind(b"\xff\xd9") < 2:
        raise ImageError("truncated JPEG (no end-of-image marker)", path=name)
    return data
