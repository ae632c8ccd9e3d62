"""Several byte ranges of one S3 object in one call, through obstore: the training reader's reads.

Why obstore and not botocore: a record is a small ranged GET, and botocore spends about 3 ms of
client CPU on each; obstore's Rust client a tenth of that, and :func:`get_ranges` runs the ranges
of one call concurrently without a Python thread each.  The caller decides which records share a
request (:mod:`imgprep.data.fetch` coalesces neighbours), so obstore's own coalescing is off: one
range given here is one GET, which keeps the request count the caller reports true.

``version``: the ETag the reader pinned when it opened the object (``Store.version``); every
request then carries ``If-Match``, so a republished object is a :class:`ChangedError`, never new
bytes read through an old index.
"""

from __future__ import annotations

import asyncio
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

    bucket, key = parse_s3_uri(uri)
    objects = store.object_store(bucket)
    try:
        if version is None:
            return obstore.get_ranges(objects, key, starts=[a for a, _ in ranges], ends=[b for _, b in ranges],
                                      coalesce=0)
        return asyncio.run(_pinned(objects, key, ranges, version))
    except (FileNotFoundError, NotFoundError):
        raise StorageError("no such object", path=uri) from None
    except PreconditionError:
        raise ChangedError(f"changed since it was opened for reading (ETag another, was {version})",
                           path=uri) from None
    except (BaseError, OSError, ValueError) as exc:
        raise StorageError(f"ranged read failed ({_first_line(exc)})", path=uri) from None


async def _pinned(objects: object, key: str, ranges: Sequence[tuple[int, int]], etag: str) -> list:
    import obstore

    async def one(start: int, end: int) -> object:
        got = await obstore.get_async(objects, key, options={"range": (start, end), "if_match": etag})
        return await got.bytes_async()

    return list(await asyncio.gather(*(one(a, b) for a, b in ranges)))


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
