"""Where verify reads from: a local folder or an ``s3://`` prefix, behind one small interface.

S3 objects are read whole through the run's :class:`~imgprep.storage.base.Store` (a shard is held
in memory while it is checked); local files are opened directly, seekable.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
from typing import BinaryIO

from imgprep.errors import FormatError, StorageError
from imgprep.storage import base
from imgprep.storage.base import Store


class Location:
    """A folder (local or S3) that names resolve against."""

    def __init__(self, folder: str, storage: Store) -> None:
        self.folder = folder
        self.remote = base.is_remote(folder)
        self.storage = storage

    @classmethod
    def of(cls, path: str, storage: Store) -> tuple[Location, str]:
        """The folder holding ``path`` and ``path``'s last component."""
        if base.is_remote(path):
            head, _, name = path.rpartition("/")
            return cls(head, storage), name
        folder, name = os.path.split(path)
        return cls(folder or ".", storage), name

    def uri(self, name: str) -> str:
        return base.join(self.folder, name) if self.remote else os.path.join(self.folder, name)

    def exists(self, name: str) -> bool:
        if not self.remote:
            return os.path.isfile(self.uri(name))
        return self.storage.exists(self.uri(name))

    def read(self, name: str) -> bytes:
        uri = self.uri(name)
        try:
            return self.storage.read_bytes(uri)
        except FileNotFoundError:
            raise FormatError("no such file", path=uri) from None
        except OSError as exc:
            raise StorageError(f"cannot read ({exc.strerror or exc})", path=uri) from None

    def open(self, name: str) -> BinaryIO:
        """A seekable binary stream over ``name`` (the caller closes it)."""
        if self.remote:
            return io.BytesIO(self.read(name))
        try:
            return open(self.uri(name), "rb")
        except FileNotFoundError:
            raise FormatError("no such file", path=self.uri(name)) from None

    def numbered(self, prefix: str, pattern: re.Pattern[str]) -> set[int]:
        """The numbers N of the files ``prefix`` + what ``pattern`` matches (group 1 is N) here."""
        start = self.uri(prefix)
        found = set()
        for entry in self.storage.list(start):
            match = pattern.fullmatch(entry.uri[len(start):])
            if match:
                found.add(int(match[1]))
        return found

    def display(self, name: str) -> str:
        return posixpath.join(self.folder, name) if self.remote else self.uri(name)
