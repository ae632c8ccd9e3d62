"""One ``inspect`` run: collect the splits, scan every image, analyse (the CLI and the API call this)."""

from __future__ import annotations

from collections.abc import Callable

from imgprep.inspect.analyse import Findings, analyse
from imgprep.inspect.collect import Split, collect
from imgprep.inspect.recorded import attach
from imgprep.inspect.scan import scan
from imgprep.splits.neardup import DEFAULT_THRESHOLD
from imgprep.storage.base import Store


def inspect(path: str, *, storage: Store, root: str | None = None, threshold: int | None = None,
            workers: int | None = None, tick: Callable[[int], object] = lambda n: None,
            total: Callable[[int | None], object] = lambda n: None) -> Findings:
    """The findings for ``path`` (a ``.rec``, ``.lst``, ``.manifest`` or a folder of them, local or
    ``s3://``) read through ``storage``, the run's Store, built at the edge as verify's is;
    ``total(n)`` is told how many images there are (None: unknown) before ``tick(n)`` is called
    as they are measured."""
    if storage.local_path(path) is None:
        from imgprep.inspect.remote import collect_remote

        collection = collect_remote(path, root, storage)
    else:
        collection = collect(path, root=root)
    note = attach(collection.splits, storage)
    if note:
        collection.notes.append(note)
    total(_expected(collection.splits, storage))
    table = scan(collection.splits, workers=workers, tick=tick)
    return analyse(collection, table, threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
                   workers=workers)


def _expected(splits: list[Split], storage: Store) -> int | None:
    """Images to scan: a list's entries, a packed split's records (its ``.idx`` lines)."""
    count = 0
    for split in splits:
        if split.prints is not None:
            count += len(split.prints)
        elif split.rec is None:
            count += len(split.items)
        else:
            for rec in split.recs:
                idx = rec[: -len(".rec")] + ".idx"
                if not storage.is_file(idx):
                    return None
                count += sum(1 for line in storage.read_text(idx).splitlines() if line.strip())
    return count
