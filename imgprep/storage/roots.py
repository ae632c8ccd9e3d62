"""Keeping reads inside a local image root, symlinks included.

:mod:`imgprep.formats.paths` refuses paths that climb out of a root by their text (``..``,
absolute).  A symlink inside the root can still lead out of it, and the files of a dataset can
come from anyone (an extracted archive, a shared bucket's copy): so a symlink is followed only
while its target stays inside the root, resolved once (``realpath``).  A link to a sibling
folder or file inside the root is followed; a link to ``/etc`` or ``../other-dataset`` is
refused with a reason, both when class folders are walked and when an image is packed.

The decision is taken once, when the lists are made: a source does not list a file that pack
would refuse, and says so (:func:`outside_note`).  A user who means such links (a dataset
assembled as symlinks into a shared store) sets :data:`ALLOW_SWITCH` on ``convert``,
``prepare`` and ``pack`` alike; the guard then follows every link (``follow_outside``).

It is how imgprep reads local files under a root: the image sources here use it, and so do the
folder walk (``sources``) and the packing workers.

The check is cheap where it runs per image: folder resolutions are cached, and the file itself
is opened with ``O_NOFOLLOW`` (:func:`read_inside`), so only a file that really is a symlink
costs a ``realpath``.
"""

from __future__ import annotations

import errno
import os
import stat

from imgprep.errors import ImageError

# One switch on every face (CLI flag; follow_links_outside_root= in Python and the job's options).
ALLOW_SWITCH = "--follow-links-outside-root"
_ALLOW = f"{ALLOW_SWITCH} reads it if the link is meant"
_LINK_OUT = f"symlink leads outside the image root ({_ALLOW})"
_FOLDER_OUT = f"a symlinked folder on this path leads outside the image root ({_ALLOW})"
NOTE_EXAMPLES = 3  # paths named in the note


def outside_note(count: int, examples: list[str]) -> str:
    """The one line a source's notes carry for the files it did not list because a symlink on
    their path leads outside the image root."""
    named = ", ".join(examples) + (", ..." if count > len(examples) else "")
    return (f"{count} path(s) reached through a symlink leading outside the image root not listed "
            f"(pack refuses them too): {named}; if the links are meant, {ALLOW_SWITCH} "
            "(follow_links_outside_root=True) lists and packs them")


def _contains(root: str, real: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


class RootGuard:
    """Answers "does this path, followed through every symlink, stay inside ``root``?".

    With ``follow_outside`` (the user's :data:`ALLOW_SWITCH`) every path may be read: the
    checks answer None and :attr:`read_root` is None, so :func:`read_inside` and the native
    core follow a final symlink wherever it leads.
    """

    def __init__(self, root: str, *, follow_outside: bool = False) -> None:
        self.root = os.path.realpath(root)
        self.follow_outside = follow_outside
        self._folders: dict[str, bool] = {}

    @property
    def read_root(self) -> str | None:
        """The root a final symlink must stay inside when a file is opened; None: any target."""
        return None if self.follow_outside else self.root

    def contains_real(self, real: str) -> bool:
        """Whether an already resolved path is the root or lies under it."""
        return _contains(self.root, real)

    def folder_escape(self, path: str) -> str | None:
        """Why the folders of ``path`` lead out of the root, or None (cached per folder)."""
        if self.follow_outside:
            return None
        cut = path.rfind(os.sep)  # os.path.dirname but for trailing separators, at a fraction of its cost
        folder = path[:cut] if cut > 0 else os.sep if cut == 0 else ""
        inside = self._folders.get(folder)
        if inside is None:
            inside = self.contains_real(os.path.realpath(folder))
            self._folders[folder] = inside
        return None if inside else _FOLDER_OUT

    def escape(self, path: str) -> str | None:
        """Why ``path`` (a file or folder under the root as given) may not be read, or None."""
        if self.follow_outside:
            return None
        problem = self.folder_escape(path)
        if problem is None and os.path.islink(path) and not self.contains_real(os.path.realpath(path)):
            problem = _LINK_OUT
        return problem


    def read(self, path: str) -> bytes:
        """The bytes of ``path`` (under the root as given), refused as the packer refuses it."""
        problem = self.folder_escape(path)
        if problem:
            raise ImageError(problem, path=path)
        return read_inside(path, self.read_root)


def read_inside(path: str, root: str | None) -> bytes:
    """The bytes of the regular file ``path``, refusing a final symlink whose target is outside
    ``root`` (a resolved root; None skips that check).  Its folders were checked by the caller.

    Opened non-blocking and checked with ``fstat``: a FIFO planted among the images would
    otherwise block the run forever, and a device would never end.  The size from that ``fstat``
    sizes one ``read``, which makes this cheaper than ``open().read()`` for an image.
    """
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        try:
            fd = os.open(path, flags | (os.O_NOFOLLOW if root is not None else 0))
        except OSError as exc:
            if exc.errno != errno.ELOOP or root is None:
                raise
            if not _contains(root, os.path.realpath(path)):
                raise ImageError(_LINK_OUT, path=path) from None
            fd = os.open(path, flags)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a device, FIFO or socket"
                raise ImageError(f"not a regular file ({kind})", path=path)
            data = os.read(fd, info.st_size + 1)
            if len(data) != info.st_size:  # a short read, or the file grew: read to the end
                chunks = [data]
                while chunk := os.read(fd, 1 << 20):
                    chunks.append(chunk)
                data = b"".join(chunks)
            return data
        finally:
            os.close(fd)
    except OSError as exc:
        raise ImageError(f"cannot read ({exc.strerror})", path=path) from None
