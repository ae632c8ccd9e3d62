"""Local files written under a temporary name and renamed into place only when complete."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from imgprep.errors import StorageError
from imgprep.storage.base import Output


def local_path(uri: str | os.PathLike[str]) -> str:
    text = os.fspath(uri)
    return text[len("file://") :] if text.startswith("file://") else text


class LocalOutput(Output):
    """A local file that appears under its name only on :meth:`commit` (``os.replace``)."""

    def __init__(self, uri: str | os.PathLike[str], *, fsync: bool = False, **_: Any) -> None:
        self.path = local_path(uri)
        self.uri = self.path
        self._fsync = fsync
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(directory, exist_ok=True)
            fd, self._tmp = tempfile.mkstemp(
                prefix=f".{os.path.basename(self.path)}.", suffix=".part", dir=directory
            )
        except OSError as exc:
            raise StorageError(f"cannot create output file ({exc.strerror})", path=self.path) from None
        self._fh = os.fdopen(fd, "wb", buffering=1 << 20)
        self.bytes_written = 0
        self._done = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        try:
            n = self._fh.write(data)
        except OSError as exc:
            raise StorageError(f"write failed ({exc.strerror})", path=self.path) from None
        self.bytes_written += n
        return n

    def commit(self) -> None:
        if self._done:
            return
        try:
            self._fh.flush()
            if self._fsync:
                os.fsync(self._fh.fileno())
            self._fh.close()
            os.chmod(self._tmp, 0o666 & ~_umask())
            os.replace(self._tmp, self.path)
        except OSError as exc:
            self.abort()
            raise StorageError(f"cannot finish output file ({exc.strerror})", path=self.path) from None
        self._done = True

    def abort(self) -> None:
        """Remove the temporary file.  Never raises: closing flushes the buffer, which fails
        again on a full disk, and the error that made us abort is the one to report."""
        if self._done:
            return
        self._done = True
        try:
            self._fh.close()
        except OSError:
            pass
        try:
            os.unlink(self._tmp)
        except OSError:
            pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with LocalOutput(path) as out:
        out.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(local_path(path)).read_bytes()
    except OSError as exc:
        raise StorageError(f"cannot read ({exc.strerror})", path=os.fspath(path)) from None
