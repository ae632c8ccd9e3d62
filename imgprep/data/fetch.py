"""A batch's records in few requests: neighbours coalesced, requests in flight ahead of decoding.

One ranged GET per record made S3 training several times slower than local disk: each request
costs client CPU and (on a loopback server sharing the cores) server CPU, whatever its size.  The
loader hands a whole batch here; its records are sorted by shard and offset, and records less
than ``gap`` bytes apart join one request of at most ``span`` bytes (the bytes between them are
read and dropped: cheaper than a request while the gap is small).  A shard's requests go out
a few at a time per I/O thread (on S3 as one obstore call that runs them concurrently), so the
latency of a batch is about one request's, and the loader's ``prefetch`` bounds how many
batches — and so how many bytes — are in flight.

Each record comes back as a :class:`Pending` that the decoding thread resolves: it waits (at
most the store's read bound, so a frozen endpoint is an error, not a hang), then slices and
parses its record through the dataset (which checks it), so no record bytes are copied.  A
shard whose generation the dataset pinned (``Dataset.versions``) is read only in that generation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgprep.errors import ChangedError, FormatError, ImageError, StorageError
from imgprep.storage.ranges import read_bound, read_ranges

GAP = 256 << 10  # bytes between two records below which one request takes both
SPAN = 8 << 20  # bytes one request may cover
PER_CALL = 8  # requests per store call: obstore runs a call's requests concurrently (10 at most), the
# I/O threads run calls concurrently, so a batch of scattered records is not 10 requests at a time


@dataclass
class Stats:
    """What the fetches cost, for benchmarks and tests: requests made, records and bytes read."""

    requests: int = 0
    records: int = 0
    bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, requests: int, records: int, nbytes: int) -> None:
        with self._lock:
            self.requests += requests
            self.records += records
            self.bytes += nbytes


def plan(starts: np.ndarray, ends: np.ndarray, gap: int = GAP, span: int = SPAN) -> list[tuple[int, int, list[int]]]:
    """Requests ``(start, end, members)`` covering the ranges ``[starts[i], ends[i])`` of one
    object: ranges sorted by start, a new request wherever the gap to the previous one exceeds
    ``gap`` or the request would pass ``span`` bytes; ``members`` index the ranges it holds."""
    order = np.argsort(starts, kind="stable").tolist()
    out: list[tuple[int, int, list[int]]] = []
    for i in order:
        a, b = int(starts[i]), int(ends[i])
        if out and a - out[-1][1] <= gap and max(b, out[-1][1]) - out[-1][0] <= span:
            first, last, members = out[-1]
            members.append(i)
            out[-1] = (first, max(last, b), members)
        else:
            out.append((a, b, [i]))
    return out


class Pending:
    """One record of a fetch under way: :meth:`result` gives ``(id, label, image bytes)`` or the
    record's :class:`FormatError` (returned, as :meth:`Dataset.fetch` does)."""

    __slots__ = ("bound", "dataset", "future", "index", "length", "number", "offset")

    def __init__(self, dataset: Any, index: int, future: Future, number: int, offset: int, length: int,
                 bound: float | None) -> None:
        self.dataset, self.index, self.future = dataset, index, future
        self.number, self.offset, self.length, self.bound = number, offset, length, bound

    def result(self) -> Any:
        try:
            blocks = self.future.result(self.bound)
        except ChangedError as exc:
            raise changed(exc, self.index) from None
        except FutureTimeout:
            where = self.dataset.index.locate(self.index)
            raise StorageError(f"a ranged read got no answer within {self.bound:.0f} s (the store's timeouts and "
                               "retries): the endpoint is not responding", path=where.uri) from None
        data = memoryview(blocks[self.number])[self.offset : self.offset + self.length]
        try:
            return self.dataset.parse_record(self.index, _whole(data, self.length, self.dataset, self.index))
        except (FormatError, ImageError) as exc:  # the record's fault: the caller raises or skips it
            return exc

    def cancel(self) -> bool:
        return self.future.cancel()


def changed(exc: ChangedError, index: int) -> ChangedError:
    """What a read of a pinned file that changed tells the user (one record's read or a batch's)."""
    return ChangedError(f"the dataset changed while it was read (a pack or prepare republished it after this "
                        f"Dataset opened it; record {index} would come from the new files through the old index): "
                        f"open it again ({exc.message})", path=exc.path)


def _whole(data: memoryview, length: int, dataset: Any, index: int) -> memoryview:
    if len(data) != length:
        where = dataset.index.locate(index)
        raise FormatError(f"record {index} at byte {where.start}: the shard ends after {len(data)} of its "
                          f"{length} bytes", path=where.uri)
    return data


class Fetcher:
    """Reads records ``(dataset, index)`` on ``executor``, coalesced per shard; counts in :attr:`stats`."""

    def __init__(self, executor: Executor | None, *, gap: int = GAP, span: int = SPAN) -> None:
        self.executor = executor
        self.gap, self.span = int(gap), int(span)
        self.stats = Stats()

    def cost(self, records: Sequence[tuple[Any, int]]) -> int:
        """Bytes :meth:`submit` would read for ``records``: what their requests hold in memory."""
        return sum(b - a for *_, requests in self._plan(records) for a, b, _ in requests)

    def submit(self, records: Sequence[tuple[Any, int]], gap: int | None = None) -> list[Pending]:
        """A :class:`Pending` per record, in the order given; their reads are under way (or done,
        without an executor).  ``gap``: this call's instead of the fetcher's."""
        out: list[Pending | None] = [None] * len(records)
        for dataset, uri, positions, indices, starts, ends, requests in self._plan(records, gap):
            bound = read_bound(dataset.storage, uri)
            for c in range(0, len(requests), PER_CALL):
                call = requests[c : c + PER_CALL]
                future = self._start(dataset, uri, [(a, b) for a, b, _ in call], sum(len(h) for *_, h in call))
                for number, (first, _last, held) in enumerate(call):
                    for k in held:
                        out[positions[k]] = Pending(dataset, int(indices[k]), future, number,
                                                    int(starts[k]) - first, int(ends[k] - starts[k]), bound)
        return out  # type: ignore[return-value]

    def _plan(self, records: Sequence[tuple[Any, int]], gap: int | None = None) -> Iterator[tuple]:
        """Per dataset and shard: ``(dataset, uri, positions in records, indices, starts, ends,
        requests)``, the requests those of :func:`plan`."""
        datasets: dict[int, tuple[Any, list[int]]] = {}
        for j, (dataset, _) in enumerate(records):
            datasets.setdefault(id(dataset), (dataset, []))[1].append(j)
        for dataset, chosen in datasets.values():
            indices = np.fromiter((records[j][1] for j in chosen), np.int64, len(chosen))
            shards, starts, ends = _ranges(dataset.index, indices)
            for shard in np.unique(shards).tolist():
                here = np.flatnonzero(shards == shard)
                yield (dataset, dataset.index.uris[shard], [chosen[m] for m in here.tolist()], indices[here],
                       starts[here], ends[here], plan(starts[here], ends[here], self.gap if gap is None else gap,
                                                      self.span))

    def _start(self, dataset: Any, uri: str, ranges: list[tuple[int, int]], records: int) -> Future:
        version = getattr(dataset, "versions", {}).get(uri)  # the generation the dataset pinned, if it did
        self.stats.add(len(ranges), records, sum(b - a for a, b in ranges))
        call: Callable[[], list] = lambda: read_ranges(dataset.storage, uri, ranges, version)  # noqa: E731
        if self.executor is not None:
            return self.executor.submit(call)
        future: Future = Future()
        try:
            future.set_result(call())
        except BaseException as exc:  # noqa: BLE001 - raised where the record is taken
            future.set_exception(exc)
        return future


def _ranges(index: Any, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shard, start and end of each record (a :class:`~imgprep.data.index.RecordIndex`'s
    ``locate``, for a whole batch at once)."""
    if indices.size and (indices.min() < 0 or indices.max() >= len(index)):
        bad = int(indices[(indices < 0) | (indices >= len(index))][0])
        raise IndexError(f"record {bad} of a dataset of {len(index)}")
    shards = np.searchsorted(index.starts, indices, side="right") - 1
    starts = np.asarray(index.offsets[indices], np.int64)
    last = indices + 1 >= index.starts[shards + 1]
    ends = np.where(last, index.sizes[shards], np.asarray(index.offsets[np.minimum(indices + 1, len(index) - 1)],
                                                           np.int64))
    return shards, starts, ends


def get_items(dataset: Any, keys: Sequence[Any]) -> list[Any]:
    """``dataset[key]`` for a DataLoader batch of keys (``index`` or ``(index, epoch)``) at once: the
    records read together, coalesced, then decoded — what torch calls ``__getitems__`` for.  A
    damaged record (``errors="skip"``) is None, as ``dataset[key]`` gives it."""
    pairs = [key if isinstance(key, tuple) else (key, 0) for key in keys]
    out: list[Any] = [None] * len(pairs)
    by_epoch: dict[int, list[int]] = {}
    for j, (_, epoch) in enumerate(pairs):
        by_epoch.setdefault(int(epoch), []).append(j)
    for epoch, members in by_epoch.items():
        indices = np.array([int(pairs[j][0]) for j in members], np.int64)
        records = dataset.resolve(indices, epoch) if hasattr(dataset, "resolve") else \
            [(dataset, int(i)) for i in indices]
        samples = iter(dataset.samples(indices, epoch, None, Fetcher(None).submit(records)))
        sample = next(samples, None)
        for j, index in zip(members, indices.tolist()):
            if sample is not None and sample.index == index:
                out[j] = (sample.image, sample.label)
                sample = next(samples, None)
    return out
