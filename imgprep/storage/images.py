"""Where the packer gets image bytes: the one :class:`ImageSource` protocol and the local source.

``local_path`` lets worker processes open files directly, so image bytes are never pickled
between processes; sources without local files (S3, in-memory arrays) return None there and
hand the parent bytes or pixel arrays: one at a time through ``iter_fetch`` (which may run
ahead, as the S3 source does), or a whole chunk at once through ``fetch_many`` when ``batched``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from imgprep.errors import ImgprepError, SourceError
from imgprep.formats.lst import LstItem
from imgprep.storage.roots import RootGuard


@runtime_checkable
class ImageSource(Protocol):
    """Images addressed by a list's items.  Subclass it to inherit the defaults below."""

    batched: bool = False  # True: the packer asks fetch_many for whole chunks

    def local_path(self, item: LstItem) -> str | None:
        """A file workers can open themselves, or None: the parent fetches the data."""
        ...

    def local_paths(self, items: Sequence[LstItem]) -> list[str | None]:
        """:meth:`local_path` of each item (the packer asks for a chunk at a time)."""
        return [self.local_path(item) for item in items]

    def fetch(self, item: LstItem) -> Any:
        """One image's bytes (or pixels); raises an :class:`ImgprepError` naming it."""
        ...

    def describe(self, item: LstItem) -> str:
        """Where the image is, for messages and the skipped report."""
        ...

    def iter_fetch(self, items: Iterable[LstItem]) -> Iterator[Any]:
        """Each item's data, or the :class:`ImgprepError` that fetching it raised, in order."""
        for item in items:
            try:
                yield self.fetch(item)
            except ImgprepError as exc:
                yield exc

    def fetch_many(self, items: Sequence[LstItem]) -> Any:
        """The data of a whole chunk (for ``batched`` sources)."""
        return [self.fetch(item) for item in items]

    def close(self) -> None:
        """Stop read-ahead and release threads."""


class LocalImageSource(ImageSource):
    """Images under a local directory, addressed by the list's relative paths.

    Reads stay inside the root (:mod:`imgprep.storage.roots`): a path whose folders lead out of
    it through a symlink gets no ``local_path``, so ``fetch`` refuses it and the image is skipped
    with that reason; a final symlink leading out is refused where the file is opened (here or
    in a worker, which gets the resolved root as ``guard.read_root``).  ``follow_outside`` (the
    user's ``--follow-links-outside-root``) reads every link wherever it leads.
    """

    def __init__(self, root: str | os.PathLike[str], *, follow_outside: bool = False) -> None:
        self.root = os.fspath(root)
        if not os.path.isdir(self.root):
            why = "is not a folder" if os.path.exists(self.root) else "does not exist"
            raise SourceError(f"the image root (--root) {why}", path=self.root)
        self.guard = RootGuard(self.root, follow_outside=follow_outside)
        self._base = self.root if self.root.endswith("/") else self.root + "/"

    def _path(self, item: LstItem) -> str:
        # os.path.join's result, without its cost (the packer asks once per image, serially)
        path = item.path
        return os.path.join(self.root, path) if path.startswith("/") else self._base + path

    def local_path(self, item: LstItem) -> str | None:
        path = self._path(item)
        return None if self.guard.folder_escape(path) else path

    def local_paths(self, items: Sequence[LstItem]) -> list[str | None]:
        # The packer's one call per chunk in Python: local_path's work inline, each folder asked
        # of the guard once per chunk (a subclass with its own local_path keeps it).
        if type(self).local_path is not LocalImageSource.local_path:
            return super().local_paths(items)
        base, root, guard = self._base, self.root, self.guard
        paths = [os.path.join(root, p) if p.startswith("/") else base + p for p in (item.path for item in items)]
        if guard.follow_outside:
            return list(paths)
        inside: dict[str, bool] = {}
        out: list[str | None] = []
        for path in paths:
            folder = path[: path.rfind("/")]
            ok = inside.get(folder)
            if ok is None:
                ok = inside[folder] = guard.folder_escape(path) is None
            out.append(path if ok else None)
        return out

    def fetch(self, item: LstItem) -> bytes:
        return self.guard.read(self._path(item))

    def describe(self, item: LstItem) -> str:
        return self._path(item)

    def close(self) -> None:
        pass
