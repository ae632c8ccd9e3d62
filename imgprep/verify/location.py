"""Where verify reads from: the folder (local or ``s3://``) holding the data, through the run's
:class:`~imgprep.storage.base.Store`, which decides how a file is opened (a local file seekable in
place; an S3 object read whole, so a shard is held in memory while it is checked)."""

from __future__ import annotations

from typing import BinaryIO

from imgprep.errors import FormatError, StorageError, reading
from imgprep.storage.base import Store, join, split


class Location:
    """A folder (local or S3) that names resolve against."""

    def __init__(self, folder: str, storage: Store) -> None:
        self.folder = folder
        self.storage = storage

    @classmethod
    def of(cls, path: str, storage: Store) -> tuple[Location, str]:
        """The folder holding ``path`` and ``path``'s last component."""
        folder, name = split(path)
        return cls(folder, storage), name

    def uri(self, name: str) -> str:
        return join(self.folder, name)

    def exists(self, name: str) -> bool:
        return self.storage.is_file(self.uri(name))

    def read(self, name: str) -> bytes:
        uri = self.uri(name)
        if not self.storage.is_file(uri):
            raise FormatError("no such file", path=uri)
        try:
            return self.storage.read_bytes(uri)
        except OSError as exc:
            raise StorageError(f"cannot read ({exc.strerror or exc})", path=uri) from None

    def open(self, name: str) -> BinaryIO:
        """A seekable binary stream over ``name`` (the caller closes it)."""
        with reading(self.uri(name), "file"):
            return self.storage.open_seekable(self.uri(name))

    def display(self, name: str) -> str:
        return self.uri(name)
