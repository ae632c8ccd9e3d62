"""Several byte ranges of one S3 object in one call, through obstore: the training reader's reads.

Why obstore and not botocore: a record is a small ranged GET, and botocore spends about 3 ms of
client CPU on each; obstore's Rust client a tenth of that, and :func:`get_ranges` runs the ranges
of one call concurrently without a Python thread each.  The caller decides which records share a
request (:mod:`imgprep.data.fetch` coalesces neighbours), so obstore's own coalescing is off: one
range given here is one GET, which keeps the request count the caller reports true.

A process forked from one that used obstore (a DataLoader worker under the default ``fork``
start method) cannot use obstore's runtime; there the ranges go through botocore instead.

``version``: the ETag the reader pinned when it opened the object (``Store.version``); every
request then carries ``If-Match``, so a republished object is a :class:`ChangedError`, never new
bytes read through an old index.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from imgprep.errors import ChangedError, StorageError
from imgprep.storage.s3_base import parse_s3_uri

if TYPE_CHECKING:
    from imgprep.storage.s3 import S3Store


def get_ranges(store: S3Store, uri: str, ranges: Sequence[tuple[int, int]], version: str | None = None) -> list:
    """The bytes of each ``(start, end)`` of ``uri`` (objects with the buffer protocol), one GET each."""
    import obstore
    from obstore.exceptions import BaseError, NotFoundError, PreconditionError

    if not _obstore_here():
        return _through_botocore(store, uri, ranges, version)
    bucket, key = parse_s3_uri(uri)
    objects = store.object_store(bucket)
    try:
        if version is None:
            return obstore.get_ranges(objects, key, starts=[a for a, _ in ranges], ends=[b for _, b in ranges],
                                      coalesce=0)
        return _loop().run_until_complete(_pinned(objects, key, ranges, version))
    except (FileNotFoundError, NotFoundError):
        raise StorageError("no such object", path=uri) from None
    except PreconditionError:
        raise ChangedError(f"changed since it was opened for reading (ETag another, was {version})",
                           path=uri) from None
    except (BaseError, OSError, ValueError) as exc:
        raise StorageError(f"ranged read failed ({_first_line(exc)})", path=uri) from None


_first_pid: int | None = None  # the process that first used obstore (its runtime's threads live there)


def _obstore_here() -> bool:
    """False in a process forked from one that used obstore: the child inherits obstore's runtime
    without its threads, and any call would wait forever (a forked DataLoader worker)."""
    global _first_pid
    if _first_pid is None:
        _first_pid = os.getpid()
    return _first_pid == os.getpid()


def _through_botocore(store: S3Store, uri: str, ranges: Sequence[tuple[int, int]], version: str | None) -> list:
    """The ranges one ranged GET each through the store's botocore client (made anew in a forked
    process): slower per request, but it works where obstore cannot."""
    pinned = {} if version is None else {"version": version}
    out = []
    for start, end in ranges:
        with store.open_read(uri, start, end, **pinned) as fh:
            out.append(fh.read())
    return out


_local = threading.local()


class _Loop:
    """An event loop closed when its thread's locals go (the thread ended)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __del__(self) -> None:
        # A loop still waiting on a request (its thread cut off at exit) is left open: obstore's
        # runtime would answer into a closed loop and print a traceback after the user's error.
        if not self.loop.is_running() and not asyncio.all_tasks(self.loop):
            self.loop.close()


def _loop() -> asyncio.AbstractEventLoop:
    """This thread's event loop for pinned reads (obstore's ranged GETs with options are async to
    run concurrently); kept, as making one per call costs more than the requests."""
    held = getattr(_local, "held", None)
    if held is None:
        held = _local.held = _Loop()
    return held.loop


async def _pinned(objects: object, key: str, ranges: Sequence[tuple[int, int]], etag: str) -> list:
    import obstore

    async def one(start: int, end: int) -> object:
        got = await obstore.get_async(objects, key, options={"range": (start, end), "if_match": etag})
        return await got.bytes_async()

    # Every range is awaited, failed or not, before the first failure is raised: a request left in
    # flight would finish into a stopped loop, its error printed at exit after the one the user saw.
    got = await asyncio.gather(*(one(a, b) for a, b in ranges), return_exceptions=True)
    for item in got:
        if isinstance(item, BaseException):
            raise item
    return got


def read_bound(store: S3Store) -> float:
    """Seconds after which a read that gets no answer is given up: every attempt's read timeout
    plus the backoff between them (1, 2, 4, 8 s at most), as the store's configuration states."""
    cfg = store.config
    attempts = int(cfg.max_attempts)
    backoff = sum(min(2.0**i, 8.0) for i in range(attempts - 1))
    return attempts * (float(cfg.read_timeout) + float(cfg.connect_timeout)) + backoff


def _first_line(exc: BaseException) -> str:
    for line in str(exc).strip().splitlines():
        if line.strip():
            return line.strip()[:300]
    return type(exc).__name__
