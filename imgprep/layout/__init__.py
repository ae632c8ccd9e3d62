"""What is on disk for a dataset, in one place: names, the dataset record, finding and joining shards.

- :mod:`~imgprep.layout.names`: ``PREFIX.rec``/``-00000.rec``/``.idx``, the dataset record, the
  progress file, the lock, and which names a pack of a prefix owns.
- :mod:`~imgprep.layout.files`: one output prefix's files, through a :class:`~imgprep.storage.Store`
  (listing, removing, hashing, the one-writer lock, leftovers of killed runs).
- :mod:`~imgprep.layout.shards`: the one shard finder (a dataset record, a shard prefix or a ``.rec``
  → its shards), used by merge, verify, the Processing join and readers.
- :mod:`~imgprep.layout.index`: the one index rebasing (shards joined end to end).
- :mod:`~imgprep.layout.merge`: joining shards into one ``.rec`` + ``.idx``.
"""

from imgprep.layout.shards import Dataset, ShardFiles, find_shards

__all__ = ["Dataset", "ShardFiles", "find_shards"]
