"""Keeping reads inside a local image root, symlinks included.

:mod:`imgprep.formats.paths` refuses paths that climb out of a root by their text (``..``,
absolute).  A symlink inside the root can still lead out of it, and the files of a dataset can
come from anyone (an extracted archive, a shared bucket's copy): so a symlink is followed only
while its target stays inside the root, resolved once (``realpath``).  A link to a sibling
folder or file inside the root is followed; a link to ``/etc`` or ``../other-dataset`` is
refused with a reason, both when class folders are walked and when an image is packed.

Folder resolutions are cached, so checking an image costs one dictionary lookup plus one
``lstat`` of the file itself.
"""

from __future__ import annotations

import os


class RootGuard:
    """Answers "does this path, followed through every symlink, stay inside ``root``?"."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self._prefix = self.root.rstrip(os.sep) + os.sep
        self._folders: dict[str, bool] = {}

    def contains_real(self, real: str) -> bool:
        """Whether an already resolved path is the root or lies under it."""
        return real == self.root or real.startswith(self._prefix)

    def _folder_inside(self, folder: str) -> bool:
        inside = self._folders.get(folder)
        if inside is None:
            inside = self.contains_real(os.path.realpath(folder))
            self._folders[folder] = inside
        return inside

    def escape(self, path: str) -> str | None:
        """Why ``path`` (a file or folder under the root as given) may not be read, or None."""
        folder = os.path.dirname(path)
        if not self._folder_inside(folder):
            return "a symlinked folder on this path leads outside the image root"
        if os.path.islink(path) and not self.contains_real(os.path.realpath(path)):
            return "symlink leads outside the image root"
        return None
