"""The files of one output prefix, through the run's :class:`~imgprep.storage.Store`.

:mod:`imgprep.packing.publish` decides *when* to list, remove, check or write; this module only
does it, so the publication rules exist once.  Every scheme difference (how a lock is taken,
what a killed writer leaves) is the store's; names are whole URIs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable

from imgprep.errors import FormatError
from imgprep.formats.dataset import from_json
from imgprep.layout.names import lock_name, owns, prefix_of, progress_name, record_name, shard_names
from imgprep.storage.base import Output, Store, join
from imgprep.storage.locks import Lock, OtherWriterError

__all__ = ["OtherWriterError", "OutputFiles", "publish_single", "remove_leftovers"]

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

    def check_names(self) -> None:
        """Refuse, before any work, a prefix whose names (with their temporaries or upload markers)
        the store cannot hold: a run would otherwise fail after packing everything."""
        for name in (progress_name(self.prefix), record_name(self.prefix), *shard_names(self.prefix, 0)):
            self.storage.check_name(name)

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

    def write_pieces(self, uri: str, pieces: Iterable[bytes], size: int) -> None:
        """Write a file of ``size`` bytes atomically from ``pieces`` (a record too large to hold twice)."""
        with self.storage.open_output(uri, expected_size=size) as out:
            for piece in pieces:
                out.write(piece)

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


def publish_single(storage: Store, out: str, expected_size: int, fill: Callable[[Output], list[str]], *,
                   new_record: bool, pause: Callable[[], None] = lambda: None) -> tuple[str, str]:
    """Publish one ``OUT.rec`` + ``OUT.idx`` pair (merge, the Processing join) under the packer's
    invariants: the old ``OUT.idx`` — and a dataset record that names ``OUT.rec`` (any record when
    the caller writes a ``new_record`` after) — is removed before the new ``.rec`` can replace the
    old one, the ``.rec`` is committed, then its ``.idx`` written.  ``fill`` writes the records
    into the ``.rec`` output and returns the index lines; ``pause`` runs between the two (tests)."""
    rec_uri, idx_uri = out + ".rec", out + ".idx"
    record = record_name(out)
    if new_record or _names_pair(storage, record, rec_uri):
        storage.delete(record)
    storage.delete(idx_uri)
    with storage.open_output(rec_uri, expected_size=expected_size) as rec:
        lines = fill(rec)
    pause()
    storage.write_text(idx_uri, "".join(lines))
    return rec_uri, idx_uri


def _names_pair(storage: Store, record: str, rec_uri: str) -> bool:
    """Whether the dataset record at ``record`` names ``rec_uri`` (an unreadable one counts as naming it)."""
    if not storage.exists(record):
        return False
    try:
        shards = from_json(storage.read_bytes(record), record).shards
    except FormatError:
        return True
    return rec_uri.rsplit("/", 1)[-1] in {s.rec for s in shards}


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
