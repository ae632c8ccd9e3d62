"""The same order for ``torch.utils.data.DataLoader`` (or any framework that takes an index sampler).

:class:`Sampler` yields ``(index, epoch)`` pairs, which :class:`~imgprep.data.Dataset` (and
:class:`~imgprep.data.mixture.Mixture`) accept as keys, so a sample's augmentation follows the
epoch even inside persistent worker processes.  DataLoader keeps the sampler's order whatever
its ``num_workers``, so the sequence is the :class:`~imgprep.data.order.Order`'s for any worker
count; its states resume on any world size as the :class:`~imgprep.data.Loader`'s do.  No torch
import here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from imgprep.data.order import Order


class Sampler:
    """Iterate over the rest of the current epoch; the next iteration starts the next epoch.

    ``dataset``: the dataset (or mixture) the DataLoader reads — its length, and its ``seed``
    unless ``seed`` is given, as :class:`~imgprep.data.Loader` takes them — or a record count
    (then ``seed`` defaults to 0).  A DataLoader takes indices ahead of the batches it hands out,
    so the sampler cannot know what was consumed: :meth:`state_dict` takes the number of samples
    the training loop has received this epoch (batches × batch size).
    """

    def __init__(self, dataset: Any, *, batch_size: int = 1, shuffle: bool = True, seed: int | None = None,
                 rank: int = 0, world_size: int = 1, drop_last: bool = False) -> None:
        records = int(dataset) if isinstance(dataset, int) else len(dataset)
        if seed is None:
            seed = 0 if isinstance(dataset, int) else int(dataset.seed)
        identity = "" if isinstance(dataset, int) else getattr(dataset, "identity", "")
        self.order = Order(records, int(seed), shuffle, rank, world_size, batch_size, drop_last, identity)
        self.epoch = 0
        self.start = 0  # global position where the current segment of the epoch begins
        self.position = 0
        self._running: tuple[int, int, int] | None = None  # (epoch, start, first position) of the iteration

    def __len__(self) -> int:
        left = self.order.length(self.start) - self.position
        return left if left > 0 else len(self.order)  # a finished epoch: the next iteration is a whole one

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.start, self.position = int(epoch), 0, 0

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, start, position = self.epoch, self.start, self.position
        if position >= self.order.length(start):  # the epoch was finished (or resumed at its end)
            epoch, start, position = epoch + 1, 0, 0
        indices, _ = self.order.share(epoch, start)
        self._running = (epoch, start, position)
        self.epoch, self.start, self.position = epoch + 1, 0, 0  # the next iteration is the next epoch
        for i in indices[position:].tolist():
            yield i, epoch

    def state_dict(self, consumed: int) -> dict[str, object]:
        """The state after the loop has received ``consumed`` samples from the iteration under way
        (or, before any, from the current position)."""
        epoch, start, position = self._running or (self.epoch, self.start, self.position)
        return self.order.state(epoch, start, min(position + int(consumed), self.order.length(start)))

    def load_state_dict(self, state: dict[str, object]) -> None:
        epoch, start = self.order.resume(state)
        if start >= self.order.records:  # saved at an epoch's end: the next iteration is the next epoch
            epoch, start = epoch + 1, 0
        self.epoch, self.start, self.position = epoch, start, 0
        self._running = None
