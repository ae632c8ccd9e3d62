"""The same order for ``torch.utils.data.DataLoader`` (or any framework that takes an index sampler).

:class:`Sampler` yields ``(index, epoch)`` pairs, which :class:`~imgprep.data.Dataset` accepts as
keys, so a sample's augmentation follows the epoch even inside persistent worker processes.
DataLoader keeps the sampler's order whatever its ``num_workers``, so the sequence is the
:class:`~imgprep.data.order.Order`'s for any worker count.  No torch import here.
"""

from __future__ import annotations

from collections.abc import Iterator

from imgprep.data.order import Order


class Sampler:
    """Iterate over the rest of the current epoch; the next iteration starts the next epoch.

    A DataLoader takes indices ahead of the batches it hands out, so the sampler cannot know what
    was consumed: :meth:`state_dict` takes the number of samples the training loop has received
    this epoch (batches × batch size).
    """

    def __init__(self, records: int, *, batch_size: int = 1, shuffle: bool = True, seed: int = 0, rank: int = 0,
                 world_size: int = 1, drop_last: bool = False) -> None:
        self.order = Order(records, seed, shuffle, rank, world_size, batch_size, drop_last)
        self.epoch = 0
        self.position = 0
        self._running: tuple[int, int] | None = None  # (epoch, first position) of the iteration under way

    def __len__(self) -> int:
        return len(self.order) - self.position

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.position = int(epoch), 0

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, start = self.epoch, self.position
        indices, _ = self.order.share(epoch)
        self._running = (epoch, start)
        self.epoch, self.position = epoch + 1, 0  # the next iteration is the next epoch
        for i in indices[start:].tolist():
            yield i, epoch

    def state_dict(self, consumed: int) -> dict[str, object]:
        """The state after the loop has received ``consumed`` samples from the iteration under way
        (or, before any, from the current position)."""
        epoch, start = self._running or (self.epoch, self.position)
        return self.order.state(epoch, min(start + int(consumed), len(self.order)))

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.epoch, self.position = self.order.check(state)
