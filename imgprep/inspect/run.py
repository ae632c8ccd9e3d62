"""One ``inspect`` run: collect the splits, scan every image, analyse (the CLI and the API call this)."""

from __future__ import annotations

from collections.abc import Callable

from imgprep.inspect.analyse import Findings, analyse
from imgprep.inspect.collect import collect
from imgprep.inspect.recorded import attach
from imgprep.inspect.scan import scan
from imgprep.splits.neardup import DEFAULT_THRESHOLD
from imgprep.storage.base import Store
from imgprep.storage.stores import Storage


def inspect(path: str, *, root: str | None = None, threshold: int | None = None, workers: int | None = None,
            tick: Callable[[int], object] = lambda n: None, storage: Store | None = None) -> Findings:
    """The findings for ``path`` (a ``.rec``, ``.lst``, ``.manifest`` or a folder of them);
    ``tick(n)`` is called as images are measured."""
    storage = storage or Storage()
    if storage.local_path(path) is None:
        from imgprep.inspect.remote import collect_remote

        collection = collect_remote(path, root, storage)
    else:
        collection = collect(path, root=root)
    note = attach(collection.splits, storage)
    if note:
        collection.notes.append(note)
    table = scan(collection.splits, workers=workers, tick=tick)
    return analyse(collection, table, threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
                   workers=workers)
