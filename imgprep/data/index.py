"""Where each record of a dataset lies: 8 bytes per record, shared by worker processes.

The ``.idx`` files are read once into one ``uint64`` array of record offsets (each shard's
offsets sorted, shards end to end) plus one small array of where each shard's records start; a
record's size is the gap to the next offset (or to the end of its shard), as dmlc's indexed
reader and DALI take it, so every record must be listed.  A forked worker inherits the array
without copying it (numpy's data pages are never written by reference counting); pickling (a
spawned worker) moves the array into a file under the temporary folder once, which parent and
children then map read-only, so N workers still hold one copy.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from dataclasses import dataclass

import numpy as np

from imgprep.errors import FormatError
from imgprep.formats.rioindex import sorted_offsets
from imgprep.storage.base import Store


@dataclass(frozen=True)
class Location:
    shard: int
    uri: str
    start: int  # byte offset of the record in its shard
    end: int  # where the next record (or the shard) starts


class RecordIndex:
    """Record ``i`` → (shard, byte range), for records numbered across shards in file order."""

    def __init__(self, uris: list[str], sizes: list[int], starts: np.ndarray, offsets: np.ndarray) -> None:
        self.uris = list(uris)
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.starts = starts  # starts[s] = number of the first record of shard s; starts[-1] = len
        self.offsets = offsets
        self._shared: str | None = None  # the file the offsets are mapped from once pickled

    @classmethod
    def read(cls, storage: Store, shards: list[tuple[str, str, int]]) -> RecordIndex:
        """Read the ``.idx`` of each ``(rec, idx, rec size)`` and check every offset."""
        _sweep_once()
        parts, starts = [], [0]
        for rec, idx, size in shards:
            offsets = parse_offsets(storage.read_bytes(idx), idx)
            if offsets.size and int(offsets[-1]) >= size:
                raise FormatError(f"offset {int(offsets[-1])} is past the end of {rec} ({size} bytes)", path=idx)
            if offsets.size and offsets[0] != 0:
                raise FormatError(f"the first record is at byte {int(offsets[0])}: bytes 0.. of {rec} are not "
                                  "indexed (every record must be listed)", path=idx)
            parts.append(offsets)
            starts.append(starts[-1] + offsets.size)
        offsets = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
        return cls([s[0] for s in shards], [s[2] for s in shards], np.asarray(starts, np.int64), offsets)

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def nbytes(self) -> int:
        return int(self.offsets.nbytes + self.starts.nbytes + self.sizes.nbytes)

    def locate(self, i: int) -> Location:
        shard = int(np.searchsorted(self.starts, i, side="right")) - 1
        start = int(self.offsets[i])
        end = int(self.offsets[i + 1]) if i + 1 < self.starts[shard + 1] else int(self.sizes[shard])
        return Location(shard, self.uris[shard], start, end)

    # ----------------------------------------------------------------- sharing with spawned workers

    def __getstate__(self) -> dict[str, object]:
        if self._shared is None:
            self._share()
        return {"uris": self.uris, "sizes": self.sizes, "starts": self.starts, "path": self._shared}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.uris, self.sizes, self.starts = state["uris"], state["sizes"], state["starts"]
        self._shared = state["path"]
        self.offsets = np.load(self._shared, mmap_mode="r")

    def _share(self) -> None:
        """Move the offsets into a file mapped by this process and the children it unpickles in;
        the file goes when this index is collected or the process exits."""
        folder = _shared_folder()
        sweep(folder)
        # The owner's pid in the name: a file whose owner died without its finalizer (SIGKILL) is
        # recognised and removed by the next process that shares an index (sweep).
        fd, path = tempfile.mkstemp(prefix=f"imgprep-index-{os.getpid()}-", suffix=".npy", dir=folder)
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, np.ascontiguousarray(self.offsets))
        self.offsets = np.load(path, mmap_mode="r")
        self._shared = path
        weakref.finalize(self, _unlink, path, os.getpid())


def sweep(folder: str | None = None) -> list[str]:
    """Remove the shared index files of processes that no longer run (a parent killed with
    SIGKILL leaves its file: 8 bytes a record in memory, under /dev/shm); the removed paths.
    A file still mapped by a live worker is unaffected (its mapping outlives the name)."""
    folder = folder or _shared_folder() or tempfile.gettempdir()
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not name.startswith("imgprep-index-") or not name.endswith(".npy"):
            continue
        owner = name[len("imgprep-index-") :].split("-", 1)[0]
        if owner.isdigit() and not _alive(int(owner)):
            try:
                os.unlink(os.path.join(folder, name))
                removed.append(os.path.join(folder, name))
            except OSError:
                pass
    return removed


_swept = False


def _sweep_once() -> None:
    """The first index a process opens cleans what killed processes left (see :func:`sweep`)."""
    global _swept
    if not _swept:
        _swept = True
        sweep()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive, and not ours to clean
        return True
    return True


def _shared_folder() -> str | None:
    """``/dev/shm`` where it exists (memory, not disk), else the temporary folder."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def _unlink(path: str, owner: int) -> None:
    if os.getpid() == owner:  # a forked child's copy of the finalizer must not remove the parent's file
        try:
            os.unlink(path)
        except OSError:
            pass


def parse_offsets(raw: bytes, path: str) -> np.ndarray:
    """The sorted record offsets of ``.idx`` bytes (:func:`imgprep.formats.rioindex.sorted_offsets`:
    the one parser, in its fast mode)."""
    return sorted_offsets(raw, path)
