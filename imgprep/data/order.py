"""The order of an epoch: one global permutation from a seed, shared out between ranks.

Epoch ``e``'s order is the permutation that sorts ``splitmix64(key(seed, e) ^ i)`` over the
records ``i`` — a true permutation (every record once), the same on every machine and numpy
version, computed in one vectorised pass.  Rank ``r`` of ``world_size`` takes every
``world_size``-th entry from ``r`` on.  So that every rank runs the same number of batches:

- ``drop_last=False`` (default): the permutation is padded, by repeating its first entries, to a
  multiple of ``world_size``; the repeats are marked (``valid`` is False) so an evaluation can
  leave them out.  All ranks get ``ceil(n / world_size)`` samples; the last batch may be short.
- ``drop_last=True``: the permutation's tail is dropped so that every rank gets the same number of
  *full* batches (``n // (world_size × batch_size)``); nothing is repeated.

Which thread, worker process or machine decodes a sample never changes the order or the pixels:
the position in this sequence is the whole state (:meth:`Order.state`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imgprep.data.transforms import mix
from imgprep.errors import UsageError

_G = np.uint64(0x9E3779B97F4A7C15)


def permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """Epoch ``epoch``'s permutation of ``range(n)`` (int64)."""
    with np.errstate(over="ignore"):
        x = np.arange(n, dtype=np.uint64) ^ np.uint64(mix(seed, epoch))
        x = x + _G
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return np.argsort(x, kind="stable").astype(np.int64)


@dataclass(frozen=True)
class Order:
    """Which records rank ``rank`` reads in each epoch, in order."""

    records: int
    seed: int = 0
    shuffle: bool = True
    rank: int = 0
    world_size: int = 1
    batch_size: int = 1
    drop_last: bool = False

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise UsageError(f"rank {self.rank} must lie in 0..world_size-1 (world_size {self.world_size})")
        if self.batch_size < 1:
            raise UsageError(f"batch size {self.batch_size} must be positive")
        if self.records < self.world_size and not self.drop_last:
            raise UsageError(f"{self.records} records cannot be shared between {self.world_size} ranks")

    def share(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, valid)``: this rank's records for ``epoch`` in order, and which are not padding."""
        n, world = self.records, self.world_size
        order = permutation(n, self.seed, epoch) if self.shuffle else np.arange(n, dtype=np.int64)
        if self.drop_last:
            order = order[: n // (world * self.batch_size) * world * self.batch_size]
            valid = np.ones(order.size, bool)
        else:
            total = -(-n // world) * world
            valid = np.arange(total) < n
            order = np.concatenate([order, order[: total - n]])
        return order[self.rank :: world], valid[self.rank :: world]

    def __len__(self) -> int:
        """Samples per epoch for this rank."""
        if self.drop_last:
            return self.records // (self.world_size * self.batch_size) * self.batch_size
        return -(-self.records // self.world_size)

    def batches(self) -> int:
        return -(-len(self) // self.batch_size)

    def state(self, epoch: int, position: int) -> dict[str, object]:
        """A small JSON-able state: resuming from it continues at sample ``position`` of ``epoch``."""
        return {"kind": "imgprep.data.order", "version": 1, "records": self.records, "seed": self.seed,
                "shuffle": self.shuffle, "rank": self.rank, "world_size": self.world_size,
                "drop_last": self.drop_last, "batch_size": self.batch_size, "epoch": epoch, "position": position}

    def check(self, state: dict[str, object]) -> tuple[int, int]:
        """``(epoch, position)`` of a state saved by :meth:`state` for this same order."""
        if not isinstance(state, dict) or state.get("kind") != "imgprep.data.order" or state.get("version") != 1:
            raise UsageError("not a state saved by imgprep.data (state_dict())")
        mine = self.state(0, 0)
        keys = ["records", "seed", "shuffle", "rank", "world_size", "drop_last"]
        if self.drop_last:  # the batch size shapes the sequence only where whole batches are dropped
            keys.append("batch_size")
        for key in keys:
            if state.get(key) != mine[key]:
                raise UsageError(f"the saved state has {key}={state.get(key)!r}, this reader {key}={mine[key]!r}: "
                                 "resuming would not continue the same sequence")
        epoch, position = state.get("epoch"), state.get("position")
        if not isinstance(epoch, int) or not isinstance(position, int) or epoch < 0 or not 0 <= position <= len(self):
            raise UsageError(f"the saved state's epoch {epoch!r} / position {position!r} are out of range")
        return epoch, position
