"""One byte budget for the part buffers of every S3 output a store has open (as s3transfer bounds memory).

A part's bytes are reserved before its buffer is allocated and released once the part has been
uploaded (or dropped by an abort), so rolled-over shards still uploading, the shard being filled,
a merge's output and a list written at the end all draw on the same ``limit``.

An output that holds no reservation may always take one part, even over the limit: otherwise a
writer could wait for bytes that only another output it is itself feeding can free.  So the bound
is ``limit`` plus one part for each further output opened while the budget is spent, and never
less than one part (see :class:`~imgprep.storage.s3_config.S3Config` for the part sizes).
"""

from __future__ import annotations

import threading


class UploadBudget:
    """A counting semaphore of bytes, with per-holder accounts."""

    def __init__(self, limit: int) -> None:
        self.limit = int(limit)
        self.used = 0
        self.peak = 0  # the most ever reserved at once (tests and benchmarks read it)
        self._held: dict[int, int] = {}
        self._cond = threading.Condition()

    def acquire(self, holder: object, n: int) -> None:
        """Reserve ``n`` bytes for ``holder``; wait (interruptibly) while the budget is spent."""
        key = id(holder)
        with self._cond:
            while self.used + n > self.limit and self._held.get(key, 0) > 0:
                self._cond.wait()
            self.used += n
            self._held[key] = self._held.get(key, 0) + n
            self.peak = max(self.peak, self.used)

    def release(self, holder: object, n: int) -> None:
        """Give back up to ``n`` of ``holder``'s bytes (never more than it holds)."""
        key = id(holder)
        with self._cond:
            n = min(n, self._held.get(key, 0))
            if n <= 0:
                return
            self.used -= n
            self._held[key] -= n
            if not self._held[key]:
                del self._held[key]
            self._cond.notify_all()

    def release_all(self, holder: object) -> None:
        with self._cond:
            n = self._held.pop(id(holder), 0)
            if n:
                self.used -= n
                self._cond.notify_all()
