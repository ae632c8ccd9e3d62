"""Where the packer gets image bytes: a path or ``s3://`` URI resolved through the run's storage.

The :class:`ImageSource` protocol and the local source live in :mod:`imgprep.storage.images`;
in-memory sources (MNIST arrays) come from :mod:`imgprep.sources`.
"""

from __future__ import annotations

import os

from imgprep.storage.base import Store
from imgprep.storage.images import ImageSource, LocalImageSource

__all__ = ["ImageSource", "LocalImageSource", "resolve"]


def resolve(source: str | os.PathLike[str] | ImageSource, storage: Store) -> ImageSource:
    """A path or ``s3://`` URI becomes a source of ``storage``; source objects pass through."""
    if isinstance(source, str | os.PathLike):
        return storage.image_source(os.fspath(source))
    return source
