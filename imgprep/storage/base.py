"""Where bytes go and come from: one :class:`Store` per scheme, built once at the faces.

The CLI, :mod:`imgprep.api` and the Processing entrypoint build a :class:`~imgprep.storage.Storage`
from the user's options and pass it down; the layers below call its methods and never look at
an options dict or branch on a URI's scheme.  Everything that differs between schemes is a
store method: reading and writing, listing, replacing, the one-writer lock (:meth:`Store.lock`),
the leftovers of killed writers (:meth:`Store.temporaries`, :meth:`Store.abort_uploads`).  A
store owns its client (S3) and its upload budget; it knows bytes, not datasets (the dataset
layout is :mod:`imgprep.layout`).

An :class:`Output` is a file being written that becomes visible under its final name only
when :meth:`Output.commit` succeeds; :meth:`Output.abort` (or an exception inside its ``with``
block) leaves nothing under the final name — no half-written file, no dangling multipart upload.
"""

from __future__ import annotations

import abc
import io
import os
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, BinaryIO, NamedTuple

from imgprep.errors import StorageError
from imgprep.storage.ranged import RangedReader

if TYPE_CHECKING:
    from imgprep.storage.images import ImageSource
    from imgprep.storage.locks import Lock

_CHUNK = 8 * 1024 * 1024


class Entry(NamedTuple):
    """One listed file or object."""

    uri: str
    size: int


@dataclass
class Cleanup:
    """What ``imgprep cleanup`` did to uploads, as ``s3://bucket/key (upload id)`` lines."""

    aborted: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # spared: a live writer holds their output's lock
    markers: list[str] = field(default_factory=list)  # markers of uploads that no longer exist, removed


class Output(abc.ABC):
    """A write-once destination with commit/abort semantics."""

    uri: str
    bytes_written: int = 0
    copied_bytes: int = 0  # appended server-side, without passing through this process

    @abc.abstractmethod
    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append ``data``; return the number of bytes taken."""

    def append_object(self, store: Store, uri: str, size: int) -> None:
        """Append the whole of ``uri`` (``size`` bytes, read through ``store``).

        Streams through this process; an output that can copy server-side overrides this.
        """
        with store.open_read(uri) as fh:
            remaining = size
            while remaining:
                chunk = fh.read(min(remaining, _CHUNK))
                if not chunk:
                    raise StorageError(f"ended {remaining} bytes before its listed size", path=uri)
                self.write(chunk)
                remaining -= len(chunk)

    def finish(self) -> None:  # noqa: B027 - optional hook, deliberately a no-op by default
        """Start flushing everything written so far, without making it visible yet (an S3 output
        starts uploading its last part in the background).  Outputs with nothing to flush early
        keep this no-op; :meth:`commit` must work whether or not it was called.
        """

    def checkpoint(self) -> str | None:
        """Make everything written so far survive this process, still invisible; return where it
        is (for :meth:`Store.reopen_output`), or None when this output cannot be resumed."""
        return None

    def uploaded(self) -> tuple[int, dict[str, Any] | None] | None:
        """For an output whose bytes leave this process as they go (an S3 multipart upload): how
        many leading bytes the destination already holds, and what :meth:`Store.reopen_output`
        needs (as JSON) to continue after them (None while it holds nothing).  None for outputs
        that hold everything here until :meth:`checkpoint` (local files)."""
        return None

    @abc.abstractmethod
    def commit(self) -> None:
        """Make the data visible under the final name."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Discard everything written; safe to call twice or after a failed commit."""

    def __enter__(self) -> Output:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class Store(abc.ABC):
    """What the layers need from a place that holds files: one implementation per scheme.

    Every failure is a one-line :class:`~imgprep.errors.StorageError` naming the URI.
    """

    @abc.abstractmethod
    def open_output(self, uri: str, *, expected_size: int | None = None, content_type: str | None = None) -> Output:
        """A new :class:`Output` for ``uri``; ``expected_size`` lets S3 choose its part size."""

    @abc.abstractmethod
    def read_bytes(self, uri: str) -> bytes:
        """A whole (small) file: a list, an index, a marker, a manifest."""

    def read_text(self, uri: str) -> str:
        data = self.read_bytes(uri)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StorageError(f"not UTF-8 text (byte {exc.start})", path=uri) from None

    def write_bytes(self, uri: str, data: bytes | bytearray, *, content_type: str | None = None) -> None:
        """Write a small whole file atomically."""
        with self.open_output(uri, expected_size=len(data), content_type=content_type) as out:
            out.write(data)

    def write_text(self, uri: str, text: str) -> None:
        self.write_bytes(uri, text.encode("utf-8"))

    def put_whole(self, uri: str, data: bytes, *, md5: str, content_type: str | None = None) -> None:
        """Write one small object whole, in as few requests as the store can (an image channel
        holds many small objects: their cost is requests).  ``md5`` is the hex MD5 of ``data``,
        checked by stores that can have the server check it."""
        self.write_bytes(uri, data, content_type=content_type)

    def copy_object(self, source: str, target: str) -> str | None:
        """Copy ``source`` to ``target`` without the bytes passing through this process and
        return the copy's ETag; None when this store cannot (the caller reads and writes)."""
        return None

    def etags(self, prefix: str) -> dict[str, str]:
        """The ETag of every object under ``prefix`` (one listing); empty for stores without them."""
        return {}

    @abc.abstractmethod
    def open_read(self, uri: str, start: int = 0, end: int | None = None, *,
                  version: str | None = None) -> IO[bytes]:
        """Sequential reads of bytes ``[start, end)`` of ``uri`` (a ranged GET on S3); close it after.
        ``version`` (from :meth:`version`): read only that generation of the file, a
        :class:`~imgprep.errors.ChangedError` if it was replaced or changed since."""

    def version(self, uri: str) -> str | None:
        """What identifies this generation of ``uri`` (what changes when it is rewritten or
        replaced), or None where the store cannot tell."""
        return None

    @abc.abstractmethod
    def exists(self, uri: str) -> bool: ...

    @abc.abstractmethod
    def size(self, uri: str) -> int:
        """The size in bytes; :class:`StorageError` when ``uri`` does not exist."""

    @abc.abstractmethod
    def list(self, prefix: str) -> Iterator[Entry]:
        """Every file whose URI starts with ``prefix`` (recursively), in URI order."""

    @abc.abstractmethod
    def delete(self, uri: str) -> None:
        """Remove one file; a missing one is not an error."""

    @abc.abstractmethod
    def delete_tree(self, uri: str) -> None:
        """Remove a folder (local) or every object under ``uri/`` (S3)."""

    def prune(self, uri: str) -> None:  # noqa: B027 - S3 has no folders to remove
        """Remove the folder ``uri`` if it is empty (local only)."""

    def reopen_output(self, uri: str, where: str, size: int) -> Output | None:
        """The output of ``uri`` that :meth:`Output.checkpoint` left at ``where``, cut back to
        ``size`` bytes and open for appending; None when gone or too short, or not supported."""
        return None

    @abc.abstractmethod
    def replace(self, source: str, target: str) -> None:
        """Move ``source`` to ``target``, replacing it (atomic locally; copy then delete on S3)."""

    @abc.abstractmethod
    def image_source(self, root: str) -> ImageSource:
        """The images under ``root``, for the packer."""

    def is_file(self, uri: str) -> bool:
        """``uri`` names a file (a local folder of that name does not count)."""
        return self.exists(uri)

    def open_seekable(self, uri: str) -> BinaryIO:
        """A seekable binary stream over the whole of ``uri`` (the caller closes it).  Stores
        without local files serve it with ranged reads (:class:`imgprep.storage.ranged.RangedReader`):
        one block in memory, not the object, however large."""
        ranged = RangedReader(lambda start, end: self.open_read(uri, start, end), self.size(uri))
        return io.BufferedReader(ranged, buffer_size=1 << 16)  # readline() in C, not a byte a call

    def read_view(self, uri: str, start: int, end: int) -> memoryview:
        """Bytes ``[start, end)`` of ``uri`` as a read-only buffer: one ranged read here; a local
        store maps them instead, so only the pages a caller touches are read, and only while the
        buffer lives."""
        with self.open_read(uri, start, end) as fh:
            return memoryview(fh.read()).toreadonly()

    def canonical(self, uri: str) -> str:
        """One spelling per file, so two URIs can be compared (symbolic links resolved locally)."""
        return uri

    def clients(self, uri: str, *, images: bool = False) -> tuple[str, ...]:
        """The modules (keys of :data:`imgprep.requirements.PIECES`) this store needs to reach
        ``uri`` (``images``: to read images under it), checked before any work."""
        return ()

    def local_path(self, uri: str) -> str | None:
        """The path of ``uri`` on this machine's file system, or None when it lives elsewhere
        (what the Processing job mirrors or downloads before it can read it as files)."""
        return None

    def is_local(self, uri: str) -> bool:
        """``uri`` can be read in place as files of this machine; otherwise it is listed, mirrored
        or downloaded first (the Processing job), or named by its URI (a SageMaker channel)."""
        return self.local_path(uri) is not None

    # ------------------------------------------------------------------ one writer, and what it leaves

    @abc.abstractmethod
    def lock(self, uri: str, *, owner: str) -> Lock:
        """Take the lock ``uri`` for one writer of ``owner`` or fail at once with
        :class:`~imgprep.storage.locks.OtherWriterError` naming its holder."""

    def temporaries(self, prefix: str) -> list[tuple[str, str]]:
        """Files that interrupted writers of names starting with ``prefix`` left behind, as
        ``(temporary, final name)`` pairs; stores whose outputs leave no files return none."""
        return []

    def abort_uploads(self, prefix: str, owned: Callable[[str], bool], keep: Collection[str] = ()) -> list[str]:
        """Abort imgprep's unfinished uploads of names under ``prefix`` for which ``owned(uri)``
        holds (the caller holds their lock), except the upload ids in ``keep``; the aborted names.
        Stores without uploads have nothing to abort."""
        return []

    def cleanup_stale_uploads(self, uri: str, *, min_age: float = 3600.0) -> Cleanup:
        """Abort imgprep's uploads under ``uri`` whose writer is gone (``imgprep cleanup``), sparing
        those under a live writer's lock; what was done.  Stores without uploads have none."""
        return Cleanup()

    def check_name(self, uri: str) -> None:  # noqa: B027 - stores without a name limit keep this no-op
        """Refuse (:class:`~imgprep.errors.UsageError`), before any work, a name this store could not
        write with its temporary (local) or its upload marker (S3).  No limit by default."""

    def probe(self, uri: str, *, write: bool, images: bool = False) -> None:  # noqa: B027 - local runs fail fast anyway
        """Fail now, with one line naming ``uri`` and the cause, if the run could not write under
        it (``write``) or read it: credentials, bucket, permission.  Called before any image is
        read; a store whose failures come at once anyway keeps this no-op.  ``images``: ``uri``
        is an image root, to be read through the client images are read with."""

    def close(self) -> None:  # noqa: B027 - stores without resources keep this no-op
        """Release clients and threads."""


def scheme(uri: str) -> str:
    """``s3`` for ``s3://...``, empty for a plain path."""
    head, sep, _ = uri.partition("://")
    return head.lower() if sep else ""


def is_remote(uri: str) -> bool:
    """Not on this machine's file system (for the stores and the routing table only)."""
    return scheme(uri) not in ("", "file")


def split(uri: str) -> tuple[str, str]:
    """The folder (or S3 prefix) holding ``uri`` and its last component."""
    if is_remote(uri):
        head, _, name = uri.rpartition("/")
        return head, name
    folder, name = os.path.split(uri)
    return folder or ".", name


def join(base: str, name: str) -> str:
    """Join a relative name onto a local directory or an ``s3://bucket/prefix``."""
    if is_remote(base):
        return base.rstrip("/") + "/" + name
    return os.path.join(base, name)
