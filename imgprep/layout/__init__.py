"""What is on disk for a dataset, in one place: names, the dataset record, finding and joining shards.

- :mod:`~imgprep.layout.names`: ``PREFIX.rec``/``-00000.rec``/``.idx``, the dataset record, the
  progress file, the lock, and which names a pack of a prefix owns.
- :mod:`~imgprep.layout.files`: one output prefix's files, through a :class:`~imgprep.storage.Store`
  (listing, removing, hashing, the one-writer lock, leftovers of killed runs).
- :mod:`~imgprep.layout.shards`: the one shard finder (a dataset record, a shard prefix or a ``.rec``
  → its shards), used by merge, verify, the Processing join and readers.
- :mod:`~imgprep.layout.index`: the one index rebasing (shards joined end to end).
- :mod:`~imgprep.layout.merge`: joining shards into one ``.rec`` + ``.idx``.
- :mod:`~imgprep.layout.progress`: ``PREFIX.progress.json`` and the typed checkpoint state.
- :mod:`~imgprep.layout.skipped`: ``PREFIX.skipped.tsv``, the images a run skipped.


Readers start at :func:`find_shards`::

    found = find_shards("s3://bucket/data/train", storage)  # or train.dataset.json, or train.rec
    for shard in found.shards:  # in order: rec, idx, rec_bytes, records (None without a record)
        ...

Those four names load :mod:`~imgprep.layout.shards` on first use: a pack, which never looks for
shards, imports only the modules it writes with.
"""

from typing import Any

__all__ = ["Dataset", "ShardFiles", "find_shards", "read_record"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from imgprep.layout import shards

        return getattr(shards, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
