"""Several byte ranges of one object at once: the training reader's record reads.

On S3 the ranges go out together through obstore (:mod:`imgprep.storage.s3_ranges`); a local
file is read with ``pread`` on one descriptor; any other store through its ``open_read``.  The
caller decides which records share a range (:mod:`imgprep.data.fetch` coalesces neighbours), so
one range here is one request.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from imgprep.errors import StorageError
from imgprep.storage.base import Store


def read_ranges(storage: Store, uri: str, ranges: Sequence[tuple[int, int]], version: str | None = None) -> list:
    """The bytes of each ``(start, end)`` of ``uri``, each range one request (the caller coalesces).

    On S3 the ranges go out together through obstore (:mod:`imgprep.storage.s3_ranges`, with
    ``If-Match: version`` when given); a local file is read with ``pread`` on one descriptor; any
    other store, or a local file with a pinned ``version``, through its ``open_read`` (which checks
    the version).  A range the object does not hold whole comes back short, for the caller to name."""
    store = storage.for_uri(uri) if hasattr(storage, "for_uri") else storage
    if hasattr(store, "object_store"):
        from imgprep.storage.s3_ranges import get_ranges

        return get_ranges(store, uri, ranges, version)  # type: ignore[arg-type]
    path = store.local_path(uri)
    if path is not None and version is None:
        return _pread(path, ranges)
    out = []
    pinned = {} if version is None else {"version": version}
    for start, end in ranges:
        with store.open_read(uri, start, end, **pinned) as fh:
            out.append(fh.read())
    return out


def read_bound(storage: Store, uri: str) -> float | None:
    """Seconds after which an unanswered read of ``uri`` is given up (S3), or None (local files)."""
    store = storage.for_uri(uri) if hasattr(storage, "for_uri") else storage
    if not hasattr(store, "object_store"):
        return None
    from imgprep.storage.s3_ranges import read_bound as bound

    return bound(store)  # type: ignore[arg-type]


def _pread(path: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise StorageError(f"cannot read ({exc.strerror})", path=path) from None
    try:
        return [os.pread(fd, end - start, start) for start, end in ranges]
    except OSError as exc:
        raise StorageError(f"cannot read ({exc.strerror})", path=path) from None
    finally:
        os.close(fd)
