"""Where bytes go and come from, chosen by URI scheme in one table (local paths, ``s3://``).

An :class:`Output` is a file being written that becomes visible under its final name only
when :meth:`Output.commit` succeeds; :meth:`Output.abort` (or an exception inside its ``with``
block) leaves nothing under the final name — no half-written file, no dangling multipart upload.
"""

from __future__ import annotations

import abc
import importlib
from typing import Any


class Output(abc.ABC):
    """A write-once destination with commit/abort semantics."""

    uri: str
    bytes_written: int = 0

    @abc.abstractmethod
    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append ``data``; return the number of bytes taken."""

    def finish(self) -> None:  # noqa: B027 - optional hook, deliberately a no-op by default
        """Flush everything written so far, without making it visible yet.

        The packer finishes each shard as it rolls over and commits all of them only when the
        whole run succeeded, so a failed run leaves no shard under a final name.  Outputs that
        have nothing to flush early may keep this no-op; :meth:`commit` must work either way.
        """

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


# scheme -> "module:factory"; factories take (uri, **options) and return an Output.
_OUTPUTS = {
    "": "imgprep.storage.local:LocalOutput",
    "file": "imgprep.storage.local:LocalOutput",
    "s3": "imgprep.storage.s3:open_s3_output",
}


def scheme(uri: str) -> str:
    head, sep, _ = uri.partition("://")
    return head.lower() if sep else ""


def is_remote(uri: str) -> bool:
    return scheme(uri) not in ("", "file")


def join(base: str, name: str) -> str:
    """Join a relative name onto a local directory or an ``s3://bucket/prefix``."""
    if is_remote(base):
        return base.rstrip("/") + "/" + name
    import os

    return os.path.join(base, name)


def open_output(uri: str, **options: Any) -> Output:
    """Open ``uri`` for writing (local path, ``file://`` or ``s3://``)."""
    from imgprep.errors import UsageError

    target = _OUTPUTS.get(scheme(uri))
    if target is None:
        raise UsageError(f"unsupported output location {uri!r} (use a local path or s3://bucket/key)")
    module, _, factory = target.partition(":")
    return getattr(importlib.import_module(module), factory)(uri, **options)


def write_bytes(uri: str, data: bytes, **options: Any) -> None:
    """Write a small whole object (a list, an index, a JSON file) atomically."""
    with open_output(uri, **options) as out:
        out.write(data)


def write_text(uri: str, text: str, **options: Any) -> None:
    write_bytes(uri, text.encode("utf-8"), **options)


def read_bytes(uri: str, **options: Any) -> bytes:
    """A whole small object (a list, an index, a manifest) from a local path or ``s3://``."""
    if is_remote(uri):
        from imgprep.storage.s3 import read_bytes as s3_read_bytes

        return s3_read_bytes(uri, **options)
    from imgprep.storage.local import read_bytes as local_read_bytes

    return local_read_bytes(uri)


def read_text(uri: str, **options: Any) -> str:
    return read_bytes(uri, **options).decode("utf-8")
