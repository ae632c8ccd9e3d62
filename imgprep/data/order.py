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

Elastic resume.  The state names the *global* position: how many entries of the epoch's
permutation all ranks together have consumed.  Ranks step in lockstep (every rank runs the same
number of batches, which is what the padding above is for), so after ``p`` samples per rank the
entries consumed are exactly the first ``p × world_size`` of the sequence, and any one rank's
state says it; :func:`combine` checks that several agree.  A job restarted with another
``world_size`` (or batch size, threads, workers) shares out the *rest* of the permutation the
same way — a segment that starts at the saved global position, padded (and marked) or trimmed
for the new world — so every remaining sample is read exactly once.  With ``drop_last=True`` the
trimmed tail is the rest's, which may differ from the tail the old world would have dropped.
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
    dataset: str = ""  # what the records are (Dataset.identity): a state resumes only on the same ones

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise UsageError(f"rank {self.rank} must lie in 0..world_size-1 (world_size {self.world_size})")
        if self.batch_size < 1:
            raise UsageError(f"batch size {self.batch_size} must be positive")
        if self.records < self.world_size and not self.drop_last:
            raise UsageError(f"{self.records} records cannot be shared between {self.world_size} ranks")

    def sequence(self, epoch: int) -> np.ndarray:
        """The whole epoch's order of records, before it is shared out."""
        return permutation(self.records, self.seed, epoch) if self.shuffle else np.arange(self.records, dtype=np.int64)

    def _span(self, start: int) -> int:
        """How many entries of the sequence from global position ``start`` on are shared out (with
        padding: a multiple of ``world_size``; dropping: whole batches on every rank)."""
        rest = max(self.records - start, 0)
        if self.drop_last:
            return rest // (self.world_size * self.batch_size) * self.world_size * self.batch_size
        return -(-rest // self.world_size) * self.world_size

    def share(self, epoch: int, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, valid)``: this rank's records for ``epoch`` in order, from global position
        ``start`` of the epoch's sequence on, and which are not padding."""
        rest = self.sequence(epoch)[start:]
        span = self._span(start)
        valid = np.arange(span) < rest.size
        order = np.resize(rest, span) if rest.size else rest[:0]  # padding repeats the segment's first entries
        return order[self.rank :: self.world_size], valid[self.rank :: self.world_size]

    def length(self, start: int = 0) -> int:
        """This rank's samples in the segment from global position ``start``."""
        return self._span(start) // self.world_size

    def __len__(self) -> int:
        """Samples per epoch for this rank."""
        return self.length(0)

    def batches(self) -> int:
        return -(-len(self) // self.batch_size)

    def consumed(self, start: int, position: int) -> int:
        """Global entries of the sequence consumed once this rank has had ``position`` samples of
        the segment that began at ``start`` (all ranks alike); the whole epoch once its share is done."""
        if position >= self.length(start):
            return self.records
        return min(start + position * self.world_size, self.records)

    def state(self, epoch: int, start: int = 0, position: int = 0) -> dict[str, object]:
        """A small JSON-able state: resuming from it continues at sample ``position`` of the segment
        of ``epoch`` that began at global position ``start``, with any world size."""
        return {"kind": "imgprep.data.order", "version": 2, "records": self.records, "seed": self.seed,
                "shuffle": self.shuffle, "drop_last": self.drop_last, "epoch": epoch, "dataset": self.dataset,
                "consumed": self.consumed(start, position),
                # what wrote it, for people reading it; a resume needs none of these
                "rank": self.rank, "world_size": self.world_size, "batch_size": self.batch_size}

    def resume(self, state: dict[str, object]) -> tuple[int, int]:
        """``(epoch, global position)`` to continue from: a state saved by :meth:`state` for the
        same records, seed and shuffle — by any rank of any world size (version 1 states, which
        named a rank's position, only from the same world size)."""
        if not isinstance(state, dict) or state.get("kind") != "imgprep.data.order" or \
                state.get("version") not in (1, 2):
            raise UsageError("not a state saved by imgprep.data (state_dict())")
        mine = self.state(0)
        keys = ["records", "seed", "shuffle", "drop_last"]
        if state["version"] == 1:
            keys += ["rank", "world_size"] + (["batch_size"] if self.drop_last else [])
        if state.get("dataset") and self.dataset and state["dataset"] != self.dataset:
            raise UsageError(f"the saved state was taken on other records (dataset {str(state['dataset'])[:12]}..., "
                             f"this reader's {self.dataset[:12]}...: republished from another list since?): "
                             "resuming would not continue the same sequence")
        for key in keys:
            if state.get(key) != mine[key]:
                raise UsageError(f"the saved state has {key}={state.get(key)!r}, this reader {key}={mine[key]!r}: "
                                 "resuming would not continue the same sequence")
        epoch = state.get("epoch")
        if state["version"] == 1:
            position = state.get("position")
            if not isinstance(position, int) or not 0 <= position <= len(self):
                raise UsageError(f"the saved state's position {position!r} is out of range")
            consumed: object = self.consumed(0, position)
        else:
            consumed = state.get("consumed")
        if not _whole(epoch) or not _whole(consumed) or not 0 <= consumed <= self.records:  # type: ignore[operator]
            raise UsageError(f"the saved state's epoch {epoch!r} / consumed {consumed!r} are out of range")
        return int(epoch), int(consumed)  # type: ignore[call-overload]


def combine(states: list[dict[str, object]]) -> dict[str, object]:
    """One state for the whole job from every rank's: they must agree on the global position (ranks
    run in lockstep, so they do unless one rank saved at another step than the others)."""
    if not states:
        raise UsageError("no states to combine")
    where = {(s.get("epoch"), s.get("consumed"), s.get("records"), s.get("seed")) for s in states}
    if len(where) != 1:
        raise UsageError(f"the ranks' states disagree on where the epoch stands ({sorted(map(str, where))}): "
                         "save every rank's state at the same step")
    return dict(states[0])


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
