"""Batches for a training loop: threads decode ahead, batches come out in the order's sequence.

The sequence (which records, in which order, with which augmentation) is fixed by the
:class:`~imgprep.data.order.Order` and the dataset's seed; ``threads`` only decides how many
samples are decoded at once, so it can change between runs — also when resuming — without
changing a single pixel.  At most ``prefetch`` batches are decoded ahead of the one the caller
holds, so memory (and, on S3, the number of ranged GETs in flight) stays bounded.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np

from imgprep.data.dataset import Dataset
from imgprep.data.order import Order
from imgprep.errors import UsageError


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
    another process, with any ``threads`` — continues with exactly the batches that were still
    to come.  ``rank``/``world_size``: this process's share (see :mod:`imgprep.data.order` for
    ``drop_last``).  A damaged record raises, or with the dataset's ``errors="skip"`` is left out
    of its batch and counted in :attr:`skipped`.  ``threads`` decode; ``io_threads`` read records
    ahead of them (one ranged read each: on S3 their latency, not the CPU, sets the pace).
    """

    def __init__(self, dataset: Dataset, batch_size: int, *, shuffle: bool = True, seed: int | None = None,
                 rank: int = 0, world_size: int = 1, drop_last: bool = False, threads: int = 2,
                 prefetch: int = 2, io_threads: int = 8) -> None:
        if dataset.transform is None:
            raise UsageError("batches need images of one size: open the dataset with a transform "
                             "(Transform.train(224) or Transform.eval(224))")
        if threads < 0 or prefetch < 1 or io_threads < 0:
            raise UsageError(f"threads {threads} and io_threads {io_threads} must be >= 0, prefetch {prefetch} >= 1")
        self.dataset = dataset
        self.order = Order(len(dataset), dataset.seed if seed is None else int(seed), shuffle, rank, world_size,
                           batch_size, drop_last)
        self.batch_size = batch_size
        self.threads = threads
        self.prefetch = prefetch
        self.io_threads = io_threads
        self.epoch = 0
        self.position = 0  # samples of this rank's share already handed out this epoch
        self.skipped = 0

    def __len__(self) -> int:
        """Batches per epoch."""
        return self.order.batches()

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.position = int(epoch), 0

    def state_dict(self) -> dict[str, object]:
        return self.order.state(self.epoch, self.position)

    def load_state_dict(self, state: dict[str, object]) -> None:
        epoch, position = self.order.check(state)
        if position >= len(self.order):  # saved after an epoch's last batch: that epoch is done
            epoch, position = epoch + 1, 0
        self.epoch, self.position = epoch, position

    def __iter__(self) -> Iterator[Batch]:
        epoch, start = self.epoch, self.position
        indices, valid = self.order.share(epoch)
        if start >= len(indices):  # the epoch was finished: this loop is the next one
            epoch, start = epoch + 1, 0
            indices, valid = self.order.share(epoch)
            self.epoch, self.position = epoch, 0
        bounds = [(b, min(b + self.batch_size, len(indices))) for b in range(start, len(indices), self.batch_size)]
        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="imgprep-data") if self.threads else None
        reads = ThreadPoolExecutor(self.io_threads, thread_name_prefix="imgprep-read") if pool and self.io_threads \
            else None
        pending: deque[tuple[np.ndarray, list[Future], int, int]] = deque()  # images, futures, begin, end
        try:
            for begin, end in bounds:
                pending.append((*self._submit(pool, reads, indices[begin:end], epoch), begin, end))
                if len(pending) > self.prefetch:
                    yield self._finish(pending.popleft(), indices, valid, epoch)
            while pending:
                yield self._finish(pending.popleft(), indices, valid, epoch)
            self.epoch, self.position = epoch + 1, 0
        finally:
            for *_, futures, _b, _e in pending:
                for future in futures:
                    future.cancel()
            for executor in (pool, reads):
                if executor is not None:
                    executor.shutdown(wait=True, cancel_futures=True)

    def _submit(self, pool: ThreadPoolExecutor | None, reads: ThreadPoolExecutor | None, chosen: np.ndarray,
                epoch: int) -> tuple:
        """Queue one batch: its records' reads on the I/O threads (many at once: a ranged GET waits
        on the network, not the CPU), its decoding in ``threads`` chunks that take the reads in order."""
        images = np.empty((len(chosen), *self.dataset.transform.shape), np.uint8)
        fetched = [reads.submit(self.dataset.fetch, int(i)) for i in chosen] if reads is not None else None
        parts = max(1, min(self.threads, len(chosen)))
        cuts = np.linspace(0, len(chosen), parts + 1).astype(int)
        futures = []
        for a, b in itertools.pairwise(cuts):
            job = (self.dataset.samples, chosen[a:b], epoch, images[a:b], None if fetched is None else fetched[a:b])
            futures.append(pool.submit(*job) if pool is not None else _Done(job[0](*job[1:])))
        return (images, futures)

    def _finish(self, job: tuple, indices: np.ndarray, valid: np.ndarray, epoch: int) -> Batch:
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
        self.epoch, self.position = epoch, end
        return Batch(images, labels, np.fromiter((s.id for s in samples), np.int64, len(samples)), chosen,
                     valid[begin:end][keep])


class _Done:
    """A finished result where no pool runs (``threads=0``)."""

    def __init__(self, value: object) -> None:
        self.value = value

    def result(self) -> object:
        return self.value

    def cancel(self) -> bool:
        return False
