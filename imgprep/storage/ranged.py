"""A seekable stream over an object that is read in ranges, never held whole.

``verify`` walks a shard from byte 0 and seeks back where framing is damaged; reading an S3
shard into memory first made its memory grow with the shard (a 145 MB shard: 215 MB RSS).
:class:`RangedReader` fetches ``block`` bytes at a time with ranged reads (``Store.open_read``
with ``start``/``end``), keeping only the block being read, so memory is one block whatever the
object's size.  Reading forward is one request per block; a seek inside the block costs nothing.
While the blocks are fetched in order from the first, their SHA-256 is kept as they pass
(:meth:`RangedReader.sha256`), so a reader that checks a whole object's checksum after walking
it does not download it twice.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import IO

BLOCK = 8 << 20  # bytes per ranged read: few requests, bounded memory

OpenRange = Callable[[int, int], IO[bytes]]  # (start, end) -> a stream of bytes [start, end)


class RangedReader(io.RawIOBase):
    """``size`` bytes read through ``open_range(start, end)``, one ``block`` at a time."""

    def __init__(self, open_range: OpenRange, size: int, block: int | None = None) -> None:
        super().__init__()
        self._open_range = open_range
        self._size = size
        self._block = max(1, block or BLOCK)
        self._pos = 0
        self._start = 0  # where the held block starts
        self._data = b""
        self._digest: hashlib._Hash | None = hashlib.sha256()  # of blocks fetched in order from 0
        self._hashed = 0  # bytes the digest holds

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        out = memoryview(buffer).cast("B")
        done = 0
        while done < len(out) and self._pos < self._size:
            if not self._start <= self._pos < self._start + len(self._data):
                self._fetch(self._pos)
            at = self._pos - self._start
            n = min(len(out) - done, len(self._data) - at)
            out[done:done + n] = self._data[at:at + n]
            done += n
            self._pos += n
        return done

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(self._size - self._pos, 0)
        buffer = bytearray(min(size, max(self._size - self._pos, 0)))
        return bytes(buffer[: self.readinto(buffer)])

    def _fetch(self, pos: int) -> None:
        start = pos - pos % self._block
        end = min(start + self._block, self._size)
        with self._open_range(start, end) as stream:
            data = stream.read(end - start)
        if len(data) != end - start:
            raise OSError(f"ranged read of bytes {start}..{end} returned {len(data)} bytes")
        self._start, self._data = start, data
        if self._digest is not None and start == self._hashed:
            self._digest.update(data)
            self._hashed = end
        elif start > self._hashed:  # a block was skipped: the digest cannot be completed
            self._digest = None

    def sha256(self) -> str | None:
        """SHA-256 of the whole object when every block was fetched in order, else None (read it again)."""
        if self._digest is None or self._hashed != self._size:
            return None
        return self._digest.hexdigest()

    def close(self) -> None:
        self._data = b""
        super().close()
