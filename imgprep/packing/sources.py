"""Where the packer gets image bytes: a path or ``s3://`` URI resolved through the run's storage.

The :class:`ImageSource` protocol and the local source live in :mod:`imgprep.storage.images`;
in-memory sources (MNIST arrays) come from :mod:`imgprep.sources`.
"""

from __future__ import annotations

import os

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
