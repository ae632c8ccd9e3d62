"""IDX files (MNIST, Fashion-MNIST): a big-endian header, then one dense array.

Layout: two zero bytes, a type code, the number of dimensions, one big-endian u32 per
dimension, then the data.  python-mnist checks only the magic and silently accepts
truncated data and trailing garbage, so every size is checked here and each problem is a
one-line :class:`FormatError` naming the file.  Gzip is recognised by its magic bytes, not by
the file name.  Parsing is one ``numpy.frombuffer`` call (no Python loop over pixels).
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

from imgprep.errors import FormatError

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


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise FormatError(f"cannot read IDX file ({exc.strerror})", path=name) from None
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise FormatError(f"corrupt or truncated gzip data ({exc})", path=name) from None
    return data


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
