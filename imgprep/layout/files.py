"""The files of one output prefix, through the run's :class:`~imgprep.storage.Store`.

:mod:`imgprep.packing.publish` decides *when* to list, remove, check or write; this module only
does it, so the publication rules exist once.  Every scheme difference (how a lock is taken,
what a killed writer leaves) is the store's; names are whole URIs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection

from imgprep.layout.names import lock_name, owns, prefix_of
from imgprep.storage.base import Store, join
from imgprep.storage.locks import Lock, OtherWriterError

__all__ = ["OtherWriterError", "OutputFiles", "remove_leftovers"]

_CHUNK = 8 << 20


class OutputFiles:
    """The output prefix ``PREFIX`` and the storage calls that publication needs."""

    def __init__(self, prefix: str, storage: Store) -> None:
        self.prefix = prefix
        self.storage = storage
        self._lock: Lock | None = None

    def names(self) -> list[str]:
        """URIs under the prefix that a pack of it writes, sorted."""
        return sorted(e.uri for e in self.storage.list(self.prefix) if owns(self.prefix, e.uri))

    def temporaries(self) -> list[str]:
        """Temporary files that writers of this prefix's names left (kill -9)."""
        return [tmp for tmp, final in self.storage.temporaries(self.prefix) if owns(self.prefix, final)]

    def remove(self, uri: str) -> None:
        """Delete ``uri``; a missing one is fine."""
        self.storage.delete(uri)

    def abort_uploads(self, keep: Collection[str] = ()) -> list[str]:
        """Abort imgprep's unfinished uploads of this prefix's names (the lock is ours), except
        the upload ids in ``keep``."""
        return self.storage.abort_uploads(self.prefix, lambda uri: owns(self.prefix, uri), keep)

    def read(self, uri: str) -> bytes | None:
        """A small file's bytes, or None when it does not exist."""
        if not self.storage.exists(uri):
            return None
        return self.storage.read_bytes(uri)

    def write(self, uri: str, data: bytes) -> None:
        """Write a small file atomically (temporary name + rename, or one PutObject)."""
        self.storage.write_bytes(uri, data)

    def exists(self, uri: str) -> bool:
        return self.storage.exists(uri)

    def size(self, uri: str) -> int | None:
        return self.storage.size(uri) if self.storage.exists(uri) else None

    def sha256(self, uri: str) -> str:
        return sha256(self.storage, uri)

    def lock(self) -> None:
        """Take ``PREFIX.lock`` or fail at once naming its holder (:class:`OtherWriterError`)."""
        self._lock = self.storage.lock(lock_name(self.prefix), owner=self.prefix)

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def sha256(storage: Store, uri: str) -> str:
    """SHA-256 of a whole file, streamed."""
    digest = hashlib.sha256()
    with storage.open_read(uri) as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def remove_leftovers(path: str, storage: Store) -> list[str]:
    """Remove the temporary files interrupted packs left under a prefix or a folder.

    A prefix whose lock another run holds is being written: its temporary files are live and
    are left alone.  Published shards and progress files stay (``pack --resume`` uses them).
    """
    prefixes = {path}
    if storage.exists(path) and not storage.is_file(path):  # a folder: every prefix with leftovers there
        path = join(path, "")
        prefixes = {p for _, final in storage.temporaries(path) if (p := prefix_of(final)) is not None}
    removed: list[str] = []
    for prefix in sorted(prefixes):
        files = OutputFiles(prefix, storage)
        if not files.temporaries():  # nothing to do: do not take (and write) its lock
            continue
        try:
            files.lock()
        except OtherWriterError:
            continue
        try:
            for uri in files.temporaries():
                files.remove(uri)
                removed.append(uri)
        finally:
            files.unlock()
    return removed
