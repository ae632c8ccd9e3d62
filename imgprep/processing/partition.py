"""Which records each host packs, and how a host learns the whole dataset when it sees only part of it.

Every host builds the *same global lists* (the one-host lists, byte for byte: same loader, same
split, same seed) and packs a share of each:

- ``FullyReplicated`` (every host sees every file): the contiguous slice ``i`` of ``n`` in list
  order.  Records are framed independently, so the parts concatenated in host order are the
  one-host ``.rec``; only the ``.idx`` offsets shift.
- ``ShardedByS3Key`` (each host sees a disjoint subset of the files): the list items whose image is
  present locally.  Each host's records are then a subsequence of the one-host order, and the join
  merges them back by list position.

For a class-folder dataset under ``ShardedByS3Key`` no host has the whole tree, so the global list
is built from a listing of the input's S3 prefix: :func:`mirror_listing` lays the listed keys out as
empty files and the ordinary loader runs on that mirror (the loaders read names, never pixels), so
classes, splits (stratified, ``--train-per-class``) and order are exactly those of a one-host run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TypeVar

from imgprep.errors import UsageError
from imgprep.formats.lst import LstItem, check_relative_path
from imgprep.storage.base import Store

T = TypeVar("T")


def slice_bounds(total: int, parts: int, index: int) -> tuple[int, int]:
    """``[start, stop)`` of part ``index`` of ``parts`` near-equal contiguous slices of ``total`` items."""
    if parts < 1 or not 0 <= index < parts:
        raise UsageError(f"part index {index} is not in 0..{parts - 1}")
    return total * index // parts, total * (index + 1) // parts


def contiguous_share(items: Sequence[T], parts: int, index: int) -> list[T]:
    """The ``FullyReplicated`` share: slice ``index`` of ``parts`` in list order."""
    start, stop = slice_bounds(len(items), parts, index)
    return list(items[start:stop])


def local_share(items: Iterable[LstItem], root: str) -> list[LstItem]:
    """The ``ShardedByS3Key`` share: items whose image file this host received, in list order."""
    return [item for item in items if os.path.isfile(os.path.join(root, item.path))]


def relative_keys(keys: Iterable[str], prefix: str) -> list[str]:
    """Keys under ``prefix`` made relative to it; folder marker objects and unsafe names dropped."""
    base = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    out = []
    for key in keys:
        if not key.startswith(base):
            continue
        rel = key[len(base) :]
        if not rel or rel.endswith("/") or check_relative_path(rel) is not None:
            continue
        out.append(rel)
    return out


def mirror_listing(relative_paths: Iterable[str], directory: str) -> int:
    """Create an empty file for every relative path under ``directory``; return how many.

    The loaders (folders, Caltech) decide classes and order from names alone, so running them
    on this mirror gives the dataset the listed objects form, without downloading any of them.
    """
    count = 0
    made: set[str] = set()
    for rel in relative_paths:
        path = os.path.join(directory, *rel.split("/"))
        parent = os.path.dirname(path)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        with open(path, "wb"):
            pass
        count += 1
    return count


def list_prefix(storage: Store, uri: str) -> list[str]:
    """Relative paths of every file or object under the folder or prefix ``uri`` (in order)."""
    base = uri.rstrip("/") + "/"
    return relative_keys((entry.uri for entry in storage.list(base)), base)
