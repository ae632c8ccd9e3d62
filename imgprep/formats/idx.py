"""IDX files (MNIST, Fashion-MNIST): a big-endian header, then one dense array.

Layout: two zero bytes, a type code, the number of dimensions, one big-endian u32 per
dimension, then the data.  python-mnist checks only the magic and silently accepts
truncated data and trailing garbage, so every size is checked here and each problem is a
one-line :class:`FormatError` naming the file.  Gzip is recognised by its magic bytes, not by
the file name.  Parsing is one ``numpy.frombuffer`` call (no Python loop over pixels).
"""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np

from imgprep.errors import FormatError
from imgprep.formats.paths import check_regular

# type code -> numpy dtype (big-endian as stored)
DTYPES: dict[int, str] = {
    0x08: "u1",
    0x09: "i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}
IMAGES_MAGIC = 0x00000803  # 2051: u8, 3 dims (n, rows, cols)
LABELS_MAGIC = 0x00000801  # 2049: u8, 1 dim (n)
_GZIP_MAGIC = b"\x1f\x8b"
# Largest IDX content accepted (MNIST's training images are 47 MB): bounds memory before reading.
MAX_BYTES = 1 << 32
# Most inflated bytes per compressed byte (MNIST's .gz files are about 5:1; zeros reach 1000:1).
MAX_RATIO = 200
# Inflated sizes below this are never refused for their ratio (tiny all-zero test files).
RATIO_FREE_BYTES = 1 << 20


class _Inflater:
    """Gzip data inflated on demand, never past what was asked for (so a bomb costs nothing)."""

    def __init__(self, raw: bytes, name: str) -> None:
        self.raw = raw
        self.name = name
        self.inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self.pending = raw

    def read(self, size: int) -> bytes:
        """Up to ``size`` inflated bytes (fewer only at the end of the data)."""
        out = bytearray()
        try:
            while len(out) < size:
                tail = self.inflater.unconsumed_tail
                if tail:
                    chunk = self.inflater.decompress(tail, size - len(out))
                    if not chunk and self.inflater.unconsumed_tail == tail:
                        raise FormatError("corrupt gzip data (inflating makes no progress)", path=self.name)
                elif self.pending:
                    chunk = self.inflater.decompress(self.pending, size - len(out))
                    self.pending = b""
                elif self.inflater.eof and self.inflater.unused_data:
                    # another gzip member follows (gzip files may be concatenated)
                    rest = self.inflater.unused_data
                    self.inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                    self.pending = rest
                    continue
                else:
                    break
                out += chunk
        except zlib.error as exc:
            raise FormatError(f"corrupt gzip data ({exc})", path=self.name) from None
        return bytes(out)

    def finished(self) -> bool:
        return self.inflater.eof and not self.inflater.unused_data and not self.pending


def _declared_size(head: bytes, name: str) -> int:
    """Header + data bytes the header promises (checks the magic's shape, not the expected one)."""
    if len(head) < 4:
        raise FormatError(f"too short for an IDX header ({len(head)} bytes)", path=name)
    ndim = head[3]
    if len(head) < 4 + 4 * ndim:
        raise FormatError(
            f"truncated IDX header: {ndim} dimensions need {4 + 4 * ndim} bytes, file has {len(head)}", path=name
        )
    dtype = DTYPES.get(head[2])
    total = np.dtype(dtype).itemsize if dtype else 1
    for d in struct.unpack(f">{ndim}I", head[4 : 4 + 4 * ndim]):
        total *= d
    return 4 + 4 * ndim + total


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic.

    Gzip data is inflated header first; the rest is inflated only up to the size that header
    declares (one byte more tells trailing garbage), and only when that size is at most
    :data:`MAX_RATIO` times the compressed size (or under :data:`RATIO_FREE_BYTES`) and at most :data:`MAX_BYTES`.
    """
    name = os.fspath(path)
    try:
        check_regular(name)
        with open(name, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(2)
            if head != _GZIP_MAGIC and size > MAX_BYTES:
                raise FormatError(f"{size} bytes is above the IDX size limit of {MAX_BYTES}", path=name)
            data = head + fh.read()
    except OSError as exc:
        raise FormatError(f"cannot read IDX file ({exc.strerror})", path=name) from None
    if data[:2] != _GZIP_MAGIC:
        return data
    stream = _Inflater(data, name)
    head = stream.read(4)
    head += stream.read(4 * head[3]) if len(head) == 4 else b""
    declared = _declared_size(head, name)
    if declared > MAX_BYTES:
        raise FormatError(f"IDX header declares {declared} bytes, above the limit of {MAX_BYTES}", path=name)
    if declared > max(MAX_RATIO * len(data), RATIO_FREE_BYTES):
        raise FormatError(
            f"IDX header declares {declared} bytes from {len(data)} compressed bytes, more than {MAX_RATIO} times "
            "as many (a decompression bomb?)",
            path=name,
        )
    body = stream.read(declared - len(head) + 1)
    if len(head) + len(body) == declared and not stream.finished():
        raise FormatError("corrupt or truncated gzip data (the compressed stream does not end)", path=name)
    return head + body


def parse_idx(data: bytes, *, path: str = "<idx>", magic: int | None = None) -> np.ndarray:
    """Decode IDX bytes into an array of the stored shape; ``magic`` pins the expected header."""
    if len(data) < 4:
        raise FormatError(f"too short for an IDX header ({len(data)} bytes)", path=path)
    (found,) = struct.unpack(">I", data[:4])
    if magic is not None and found != magic:
        raise FormatError(f"bad IDX magic 0x{found:08x} (expected 0x{magic:08x})", path=path)
    if data[0] or data[1]:
        raise FormatError(f"bad IDX magic 0x{found:08x} (the first two bytes must be zero)", path=path)
    code, ndim = data[2], data[3]
    dtype = DTYPES.get(code)
    if dtype is None:
        raise FormatError(f"bad IDX magic 0x{found:08x} (unknown type code 0x{code:02x})", path=path)
    if ndim == 0:
        raise FormatError("IDX header declares 0 dimensions", path=path)
    header = 4 + 4 * ndim
    if len(data) < header:
        raise FormatError(
            f"truncated IDX header: {ndim} dimensions need {header} bytes, file has {len(data)}", path=path
        )
    dims = struct.unpack(f">{ndim}I", data[4:header])
    itemsize = np.dtype(dtype).itemsize
    extent = itemsize
    for d in dims:
        extent *= max(d, 1)
    if extent > MAX_BYTES:
        # even an empty array of this shape is more than numpy (or any reader) should size
        shape = "x".join(str(d) for d in dims)
        raise FormatError(f"IDX shape {shape} is above the size limit of {MAX_BYTES} bytes", path=path)
    expected = itemsize
    for d in dims:
        expected *= d
    available = len(data) - header
    shape = "x".join(str(d) for d in dims)
    if available < expected:
        raise FormatError(
            f"truncated IDX data: shape {shape} needs {expected} bytes, only {available} present", path=path
        )
    if available > expected:
        raise FormatError(f"{available - expected} trailing bytes after the IDX data of shape {shape}", path=path)
    array = np.frombuffer(data, dtype=dtype, count=expected // itemsize, offset=header)
    return array.reshape(dims)


def read_idx(path: str | os.PathLike[str], *, magic: int | None = None) -> np.ndarray:
    """Read and validate an IDX file (raw or gzipped)."""
    name = os.fspath(path)
    return parse_idx(read_bytes(name), path=name, magic=magic)


def encode_idx(array: np.ndarray) -> bytes:
    """IDX bytes for ``array`` (the inverse of :func:`parse_idx`)."""
    codes = {np.dtype(v).newbyteorder(">").str: k for k, v in DTYPES.items()}
    big = array.astype(np.dtype(array.dtype).newbyteorder(">"), copy=False)
    code = codes.get(big.dtype.str)
    if code is None:
        raise FormatError(f"dtype {array.dtype} cannot be stored in IDX")
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(big).tobytes()
