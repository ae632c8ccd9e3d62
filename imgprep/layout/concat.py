"""Concatenation of whole files into one output: the routine merge and the Processing join share.

Each piece goes through :meth:`Output.append_object`, so an S3 output joins S3 pieces
server-side (UploadPartCopy) and everything else streams through this process.
"""

from __future__ import annotations

from collections.abc import Iterable

from imgprep.errors import FormatError
from imgprep.storage.base import Output, Store


def concatenate(store: Store, pieces: Iterable[tuple[str, int]], out: Output) -> None:
    """Append every ``(uri, size)`` to ``out`` in order; fail unless exactly their sizes arrived."""
    expected = out.bytes_written
    for uri, size in pieces:
        if size:
            out.append_object(store, uri, size)
            expected += size
    if out.bytes_written != expected:
        raise FormatError(f"wrote {out.bytes_written} bytes but the pieces hold {expected}", path=out.uri)
