"""Storage: one :class:`Store` per scheme (local, S3) behind :class:`Storage`, built once at the edge.

:class:`Storage` (:mod:`imgprep.storage.stores`) is loaded on first use, so importing one of this
package's small modules (``roots``, ``base``) does not load every store.
"""

from typing import Any

from imgprep.storage.base import Entry, Output, Store, is_remote, join

__all__ = ["Entry", "Output", "Storage", "Store", "is_remote", "join"]


def __getattr__(name: str) -> Any:
    if name == "Storage":
        from imgprep.storage.stores import Storage

        return Storage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
