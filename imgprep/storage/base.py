"""Where bytes go and come from: one :class:`Store` per scheme, built once at the edge.

The CLI, :mod:`imgprep.api` and the Processing entrypoint build a :class:`~imgprep.storage.Storage`
from the user's options and pass it down; the layers below call its methods and never look at
an options dict or branch on a URI's scheme.  A store owns its client (S3) and its upload budget.

An :class:`Output` is a file being written that becomes visible under its final name only
when :meth:`Output.commit` succeeds; :meth:`Output.abort` (or an exception inside its ``with``
block) leaves nothing under the final name — no half-written file, no dangling multipart upload.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from imgprep.storage.images import ImageSource

_CHUNK = 8 * 1024 * 1024


class Entry(NamedTuple):
    """One listed file or object."""

    uri: str
    size: int


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
                    from imgprep.errors import StorageError

                    raise StorageError(f"ended {remaining} bytes before its listed size", path=uri)
                self.write(chunk)
                remaining -= len(chunk)

    def finish(self) -> None:  # noqa: B027 - optional hook, deliberately a no-op by default
        """Flush everything written so far, without making it visible yet.

        The packer finishes each shard as it rolls over and commits it when it is full (its
        ``.rec`` before its ``.idx``; :mod:`imgprep.packing.publish`), so a failed run leaves no
        half-written shard under a final name.  Outputs that have nothing to flush early may keep
        this no-op; :meth:`commit` must work either way.
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
            from imgprep.errors import StorageError

            raise StorageError(f"not UTF-8 text (byte {exc.start})", path=uri) from None

    def write_bytes(self, uri: str, data: bytes, *, content_type: str | None = None) -> None:
        """Write a small whole file atomically."""
        with self.open_output(uri, expected_size=len(data), content_type=content_type) as out:
            out.write(data)

    def write_text(self, uri: str, text: str) -> None:
        self.write_bytes(uri, text.encode("utf-8"))

    @abc.abstractmethod
    def open_read(self, uri: str, start: int = 0, end: int | None = None) -> IO[bytes]:
        """Sequential reads of bytes ``[start, end)`` of ``uri`` (a ranged GET on S3); close it after."""

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

    def probe(self, uri: str, *, write: bool) -> None:  # noqa: B027 - local runs fail fast anyway
        """Fail now, with one line naming ``uri`` and the cause, if the run could not write under
        it (``write``) or read it: credentials, bucket, permission.  Called before any image is
        read; a store whose failures come at once anyway keeps this no-op."""

    def close(self) -> None:  # noqa: B027 - stores without resources keep this no-op
        """Release clients and threads."""


def scheme(uri: str) -> str:
    head, sep, _ = uri.partition("://")
    return head.lower() if sep else ""


def is_remote(uri: str) -> bool:
    return scheme(uri) not in ("", "file")


def join(base: str, name: str) -> str:
    """Join a relative name onto a local directory or an ``s3://bucket/prefix``."""
    if is_remote(base):
        return base.rstrip("/") + "/" + name
    return os.path.join(base, name)
