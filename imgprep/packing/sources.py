"""Where the packer gets image bytes: a path or ``s3://`` URI resolved through the run's storage.

The :class:`ImageSource` protocol and the local source live in :mod:`imgprep.storage.images`;
in-memory sources (MNIST arrays) come from :mod:`imgprep.sources`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Collection

from imgprep.errors import ImageError, SourceError
from imgprep.formats.lst import LstItem
from imgprep.storage.base import Store
from imgprep.storage.images import ImageSource, LocalImageSource

__all__ = ["ImageSource", "LocalImageSource", "resolve"]


def resolve(source: str | os.PathLike[str] | ImageSource, storage: Store, *,
            follow_outside: bool = False) -> ImageSource:
    """A path or ``s3://`` URI becomes a source of ``storage``; source objects pass through.

    ``follow_outside`` (``--follow-links-outside-root``) lets a local source read symlinks that
    lead out of its root; sources without local files have no such links.
    """
    if isinstance(source, str | os.PathLike):
        source = storage.image_source(os.fspath(source))
    guard = getattr(source, "guard", None)
    if follow_outside and guard is not None:
        guard.follow_outside = True
    return source


PROBE_ITEMS = 16  # of the list's first items, at least one must be readable before the output is touched


def check_source(items: Collection[LstItem], source: ImageSource) -> None:
    """The root holds the list's first images: one of the first :data:`PROBE_ITEMS` is read.

    A mistyped or empty root would otherwise skip every image of a long list before failing.
    Storage failing (S3 denied or silent) raises at once; bad images only count as unreadable.
    """
    first: ImageError | None = None
    for item in itertools.islice(items, PROBE_ITEMS):
        try:
            source.fetch(item)
            return
        except ImageError as exc:
            first = first or exc
    if first is not None:
        shown = min(len(items), PROBE_ITEMS)
        raise SourceError(f"none of the first {shown} listed images can be read from the image root "
                          f"(is the root right?); first: {first}")
