"""Batches for a training loop: threads decode ahead, batches come out in the order's sequence.

The sequence (which records, in which order, with which augmentation) is fixed by the
:class:`~imgprep.data.order.Order` and the dataset's seed; ``threads`` only decides how many
samples are decoded at once, so it can change between runs — also when resuming — without
changing a single pixel.  At most ``prefetch`` batches are decoded ahead of the one the caller
holds; reads run further ahead, in windows of ``read_ahead`` batches planned together so that
neighbours in any of them share a request (on S3 a request costs the server far more than the
bytes between close records), each window cut to ``read_bytes``, so memory stays bounded.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any, NamedTuple

import numpy as np

from imgprep.data.dataset import Dataset
from imgprep.data.fetch import GAP, Fetcher, Stats
from imgprep.data.order import Order
from imgprep.errors import UsageError
from imgprep.storage.threads import DaemonExecutor

READ_AHEAD = 32  # batches whose reads are planned together once the first batch is out
READ_BYTES = 48 << 20  # bytes one such window's requests may hold (a window is cut to fewer batches)


class Batch(NamedTuple):
    """``images``: uint8 ``(n, H, W, 3)`` (or ``(n, 3, H, W)``); ``labels``: int64 class ids ``(n,)`` or
    float32 multi-hot ``(n, width)``; ``ids``: the records' ids; ``indices``: their numbers in the
    dataset; ``valid``: False for padding repeats (``drop_last=False`` with several ranks)."""

    images: np.ndarray
    labels: np.ndarray
    ids: np.ndarray
    indices: np.ndarray
    valid: np.ndarray

    def torch(self) -> tuple[Any, Any]:
        """``(images, labels)`` as torch tensors sharing this batch's memory (``torch.from_numpy``)."""
        import torch

        return torch.from_numpy(self.images), torch.from_numpy(self.labels)


class Loader:
    """Iterate over the rest of the current epoch in batches; the next loop starts the next epoch.

    ``for batch in loader`` yields :class:`Batch` objects; :meth:`state_dict` (a small JSON-able
    dict) taken between batches and given to :meth:`load_state_dict` of a new loader — in
    another process, with any ``threads``, and with any ``world_size`` (see
    :mod:`imgprep.data.order`) — continues with exactly the samples that were still to come.
    ``rank``/``world_size``: this process's share (see :mod:`imgprep.data.order` for
    ``drop_last``).  A damaged record raises, or with the dataset's ``errors="skip"`` is left out
    of its batch and counted in :attr:`skipped`.  ``threads`` decode; ``io_threads`` read each
    batch ahead of them, neighbouring records coalesced into one request when less than
    ``coalesce`` bytes apart (:mod:`imgprep.data.fetch`) among the ``read_ahead`` batches of a
    window (fewer where its requests would hold more than ``read_bytes``); :attr:`stats` counts
    the requests.
    ``dataset``: a :class:`Dataset` or a :class:`~imgprep.data.mixture.Mixture`.
    """

    def __init__(self, dataset: Dataset, batch_size: int, *, shuffle: bool = True, seed: int | None = None,
                 rank: int = 0, world_size: int = 1, drop_last: bool = False, threads: int = 2,
                 prefetch: int = 2, io_threads: int = 8, coalesce: int = GAP, read_ahead: int = READ_AHEAD,
                 read_bytes: int = READ_BYTES) -> None:
        if dataset.transform is None:
            raise UsageError("batches need images of one size: open the dataset with a transform "
                             "(Transform.train(224) or Transform.eval(224))")
        if threads < 0 or prefetch < 1 or io_threads < 0 or coalesce < 0 or read_ahead < 1 or read_bytes < 0:
            raise UsageError(f"threads {threads}, io_threads {io_threads}, coalesce {coalesce} and read_bytes "
                             f"{read_bytes} must be >= 0, prefetch {prefetch} and read_ahead {read_ahead} >= 1")
        self.dataset = dataset
        self.order = Order(len(dataset), dataset.seed if seed is None else int(seed), shuffle, rank, world_size,
                           batch_size, drop_last, getattr(dataset, "identity", ""))
        self.batch_size = batch_size
        self.threads = threads
        self.prefetch = prefetch
        self.io_threads = io_threads
        self.coalesce = int(coalesce)
        self.read_ahead, self.read_bytes = int(read_ahead), int(read_bytes)
        self.epoch = 0
        self.start = 0  # global position in the epoch's sequence where this rank's current segment begins
        self.position = 0  # samples of the segment already handed out
        self.skipped = 0
        self.stats = Stats()

    def __len__(self) -> int:
        """Batches per epoch."""
        return self.order.batches()

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.start, self.position = int(epoch), 0, 0

    def state_dict(self) -> dict[str, object]:
        return self.order.state(self.epoch, self.start, self.position)

    def load_state_dict(self, state: dict[str, object]) -> None:
        epoch, start = self.order.resume(state)
        if start >= self.order.records:  # saved after an epoch's last batch: that epoch is done
            epoch, start = epoch + 1, 0
        self.epoch, self.start, self.position = epoch, start, 0

    def __iter__(self) -> Iterator[Batch]:
        epoch, start, position = self.epoch, self.start, self.position
        indices, valid = self.order.share(epoch, start)
        if position >= len(indices):  # the epoch was finished: this loop is the next one
            epoch, start, position = epoch + 1, 0, 0
            indices, valid = self.order.share(epoch)
            self.epoch, self.start, self.position = epoch, 0, 0
        bounds = [(b, min(b + self.batch_size, len(indices))) for b in range(position, len(indices), self.batch_size)]
        # Daemon threads: a read stuck on a silent endpoint must not keep Ctrl-C from ending the process.
        pool = DaemonExecutor(self.threads, "imgprep-data") if self.threads else None
        reads = DaemonExecutor(self.io_threads, "imgprep-read") if pool and self.io_threads else None
        fetcher = Fetcher(reads, gap=self.coalesce)
        fetcher.stats = self.stats
        pending: deque[tuple[np.ndarray, list[Future], int, int]] = deque()  # images, futures, begin, end
        ahead: deque[list] = deque()  # the reads of the batches after the one being submitted
        interrupted = True  # by an error or Ctrl-C: then nothing waits for the threads
        try:
            planned = 0  # batches whose reads are under way
            for number, (begin, end) in enumerate(bounds):
                while planned < len(bounds) and len(ahead) < self._keep(number):
                    window = self._read_window(fetcher, bounds, planned, indices, epoch)
                    ahead.extend(window)
                    planned += len(window)
                pending.append((*self._submit(pool, indices[begin:end], ahead.popleft(), epoch), begin, end))
                if len(pending) > self.prefetch or number == 0:  # the first batch as soon as it is decoded
                    yield self._finish(pending.popleft(), indices, valid, epoch, start)
            while pending:
                yield self._finish(pending.popleft(), indices, valid, epoch, start)
            self.epoch, self.start, self.position = epoch + 1, 0, 0
            interrupted = False
        except GeneratorExit:  # the loop left early: let the running chunks end
            interrupted = False
            raise
        finally:
            for *_, futures, _b, _e in pending:
                for future in futures:
                    future.cancel()
            for executor in (pool, reads):
                if executor is not None:
                    executor.shutdown(wait=not interrupted, cancel_futures=True)

    def _keep(self, number: int) -> int:
        """Batches whose reads must be under way from batch ``number`` on when it is submitted: the
        first batch alone (it is handed out as soon as it is decoded, nothing competing with it),
        then ``prefetch + 1`` while the pipeline fills, then ``read_ahead``, so that a window's
        reads have a window's decoding to arrive in."""
        return 1 if number == 0 else self.prefetch + 1 if number == 1 else self.read_ahead

    def _read_window(self, fetcher: Fetcher, bounds: list[tuple[int, int]], number: int, indices: np.ndarray,
                     epoch: int) -> list[list]:
        """Start the reads of the batches from ``number`` on, planned together so that neighbours
        in any of them share a request: the first batch of a loop alone (it comes soon), then
        ``prefetch + 1`` batches, then windows of ``read_ahead`` batches, each cut to fewer batches
        where its requests would hold more than ``read_bytes``."""
        size = 1 if number == 0 else self.prefetch + 1 if number == 1 else self.read_ahead
        window = bounds[number : number + size]
        while True:
            first = window[0][0]
            records = _records(self.dataset, indices[first : window[-1][1]], epoch)
            if len(window) == 1 or fetcher.cost(records) <= self.read_bytes:
                break
            window = window[: len(window) // 2]
        # The first batch alone is read without gaps: its records are far apart, and bytes read
        # between them would only delay it.
        fetched = fetcher.submit(records, gap=0 if number == 0 else None)
        return [fetched[a - first : b - first] for a, b in window]

    def _submit(self, pool: DaemonExecutor | None, chosen: np.ndarray, fetched: list, epoch: int) -> tuple:
        """Queue one batch's decoding in ``threads`` chunks that take its reads (under way on the I/O
        threads) in order."""
        images = np.empty((len(chosen), *self.dataset.transform.shape), np.uint8)
        parts = max(1, min(self.threads, len(chosen)))
        cuts = np.linspace(0, len(chosen), parts + 1).astype(int)
        futures = []
        for a, b in itertools.pairwise(cuts):
            job = (self.dataset.samples, chosen[a:b], epoch, images[a:b], fetched[a:b])
            futures.append(pool.submit(*job) if pool is not None else _Done(job[0](*job[1:])))
        return (images, futures)

    def _finish(self, job: tuple, indices: np.ndarray, valid: np.ndarray, epoch: int, start: int) -> Batch:
        images, futures, begin, end = job
        samples = [s for future in futures for s in future.result()]
        labels = self.dataset.labels.empty(len(samples))
        for k, sample in enumerate(samples):
            labels[k] = sample.label
        if len(samples) < end - begin:  # damaged records left out (errors="skip")
            self.skipped += end - begin - len(samples)
            images = np.stack([s.image for s in samples]) if samples else images[:0]
        chosen = np.fromiter((s.index for s in samples), np.int64, len(samples))
        keep = np.isin(indices[begin:end], chosen) if len(samples) < end - begin else slice(None)
        self.epoch, self.start, self.position = epoch, start, end
        return Batch(images, labels, np.fromiter((s.id for s in samples), np.int64, len(samples)), chosen,
                     valid[begin:end][keep])


def _records(dataset: Any, chosen: np.ndarray, epoch: int) -> list[tuple[Any, int]]:
    """``(dataset, record)`` of each chosen sample: a mixture says which of its datasets holds it."""
    if hasattr(dataset, "resolve"):
        return dataset.resolve(chosen, epoch)
    return [(dataset, i) for i in chosen.tolist()]


class _Done:
    """A finished result where no pool runs (``threads=0``)."""

    def __init__(self, value: object) -> None:
        self.value = value

    def result(self) -> object:
        return self.value

    def cancel(self) -> bool:
        return False
