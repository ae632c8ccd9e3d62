"""Storage: one :class:`Store` per scheme (local, S3) behind :class:`Storage`, built once at the edge."""

from imgprep.storage.base import Entry, Output, Store, is_remote, join
from imgprep.storage.stores import Storage

__all__ = ["Entry", "Output", "Storage", "Store", "is_remote", "join"]
