"""One error hierarchy for imgprep.

Every error a user can cause is an :class:`ImgprepError` whose ``str()`` is a
complete one-line message (naming the file, and the line or record where one
applies).  The CLI prints that line and exits with :attr:`exit_code`; library
callers catch the class they care about.  Nothing here imports anything heavy.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class ImgprepError(Exception):
    """Base class: a problem the user can fix, reported as one line."""

    exit_code = 1

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        super().__init__(self.format())

    def format(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line is not None else f"{self.path}: "
        return f"{where}{self.message}"


class UsageError(ImgprepError):
    """Options that contradict each other or cannot work together."""

    exit_code = 2


class FormatError(ImgprepError):
    """A file does not follow its format (.lst, .rec, .idx, IDX, COCO JSON, manifest...)."""


class ImageError(ImgprepError):
    """One image cannot be decoded or transformed; the packer skips it unless --strict."""


class SourceError(ImgprepError):
    """A dataset source (folder tree, COCO file, IDX files, manifest) is unusable."""


class SplitError(ImgprepError):
    """A split cannot be made as asked (e.g. too few images of a class)."""


class StorageError(ImgprepError):
    """Reading or writing local files or S3 objects failed."""


class ChangedError(StorageError):
    """A file changed after a reader pinned its version (a dataset republished while it was read)."""


class MissingPieceError(ImgprepError):
    """A library a run needs is not installed (reported before any work starts)."""


class WorkerError(ImgprepError):
    """A worker process died or failed outside of a single image's processing."""


class BadRecordsError(ImgprepError):
    """--strict was given and at least one image was bad (exit status 3)."""

    exit_code = 3


@contextmanager
def reading(path: str, what: str, error: type[ImgprepError] = FormatError, *, expected: str = "") -> Iterator[None]:
    """OS and decoding errors while reading ``path`` (a ``what``, e.g. "list file") as one line naming it;
    ``expected`` words the directory case when it differs from ``what`` (".lst file")."""
    try:
        yield
    except FileNotFoundError:
        raise error(f"no such {what}", path=path) from None
    except IsADirectoryError:
        raise error(f"is a directory (expected a {expected or what})", path=path) from None
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=path) from None
    except OSError as exc:
        raise error(f"cannot read {what} ({exc.strerror})", path=path) from None
