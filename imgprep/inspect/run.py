"""One ``inspect`` run: collect the splits, scan every image, analyse (the CLI and the API call this)."""

from __future__ import annotations

from collections.abc import Callable

from imgprep.inspect.analyse import Findings, analyse
from imgprep.inspect.collect import collect
from imgprep.inspect.scan import scan
from imgprep.splits.neardup import DEFAULT_THRESHOLD


def inspect(path: str, *, root: str | None = None, threshold: int | None = None, workers: int | None = None,
            tick: Callable[[int], object] = lambda n: None) -> Findings:
    """The findings for ``path`` (a ``.rec``, ``.lst``, ``.manifest`` or a folder of them);
    ``tick(n)`` is called as images are measured."""
    collection = collect(path, root=root)
    table = scan(collection.splits, workers=workers, tick=tick)
    return analyse(collection, table, threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
                   workers=workers)
