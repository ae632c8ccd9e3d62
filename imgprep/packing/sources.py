"""Where the packer gets image bytes: a local root (workers read files themselves) or others.

An image source implements :class:`ImageSource`.  ``local_path`` lets worker processes open
files directly, so image bytes are never pickled between processes; sources without local
files (S3, in-memory arrays) return None there and hand the parent bytes or pixel arrays,
optionally fetched ahead of time by ``iter_fetch``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any, Protocol, runtime_checkable

from imgprep.errors import SourceError, StorageError
from imgprep.formats.lst import LstItem


@runtime_checkable
class ImageSource(Protocol):
    def local_path(self, item: LstItem) -> str | None: ...

    def fetch(self, item: LstItem) -> Any: ...

    def describe(self, item: LstItem) -> str: ...

    def close(self) -> None: ...


class LocalImageSource:
    """Images under a local directory, addressed by the list's relative paths."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.fspath(root)
        if not os.path.isdir(self.root):
            raise SourceError("image root is not a directory", path=self.root)

    def local_path(self, item: LstItem) -> str:
        return os.path.join(self.root, item.path)

    def fetch(self, item: LstItem) -> bytes:
        path = self.local_path(item)
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise StorageError(f"cannot read image ({exc.strerror})", path=path) from None

    def describe(self, item: LstItem) -> str:
        return self.local_path(item)

    def iter_fetch(self, items: Iterable[LstItem]) -> Iterator[Any]:
        for item in items:
            yield self.fetch(item)

    def close(self) -> None:
        pass


def resolve(source: str | os.PathLike[str] | ImageSource, **storage_options: Any) -> ImageSource:
    """A path or ``s3://`` URI becomes a source; source objects pass through."""
    if isinstance(source, str | os.PathLike):
        text = os.fspath(source)
        if text.startswith("s3://"):
            from imgprep.storage.s3 import S3ImageSource

            return S3ImageSource(text, **storage_options)
        return LocalImageSource(text[len("file://") :] if text.startswith("file://") else text)
    return source
