"""Publishing image channels: every list last, the old generation removed after the commit.

:func:`commit_lists` writes each channel's image-set record and then its list, once every image
of every split is in place; :func:`finish` (after the caller's metadata) removes what the lists
no longer name.  Both run under the output's one-writer lock (``_imgprep/images.lock``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from imgprep.formats import imageset
from imgprep.layout import channels as names
from imgprep.layout.skipped import write_report
from imgprep.storage.base import Store

if TYPE_CHECKING:
    from imgprep.packing.channel_writer import ChannelSummary


def commit_lists(outdir: str, summaries: Iterable[ChannelSummary], storage: Store, *, report: bool = True,
                 lock: bool = False) -> list[str]:
    """Every image is written: each channel's image-set record, then its list (invariant 1);
    the lists' URIs (and the skipped-image reports').  ``lock``: take the writer's lock for it
    (callers that do not hold it)."""
    written = []
    with locked(outdir, storage) if lock else contextlib.nullcontext():
        for summary in summaries:
            if summary.record is None or summary.dataset is None or summary.list_uri is None:
                raise RuntimeError("imgprep bug: a channel committed before its images were written")
            storage.write_text(summary.dataset, imageset.to_json(summary.record))
            prefix = names.report_prefix(outdir, summary.channel)
            summary.report = write_report(storage, prefix, summary.skipped_items) if report else None
            storage.write_text(summary.list_uri, summary.list_text)
            written += [summary.list_uri, *([summary.report] if summary.report else [])]
    return written


def finish(outdir: str, summaries: Iterable[ChannelSummary], storage: Store) -> list[str]:
    """After the lists and the caller's metadata are committed: the old generation goes (under the lock)."""
    with locked(outdir, storage):
        return remove_stale(outdir, list(summaries), storage)


@contextlib.contextmanager
def locked(outdir: str, storage: Store) -> Iterator[None]:
    lock = storage.lock(names.lock_uri(outdir), owner=outdir)
    try:
        yield
    finally:
        lock.release()


def remove_stale(outdir: str, summaries: Iterable[ChannelSummary], storage: Store) -> list[str]:
    """After the lists are committed: remove every file in the written channels that their lists
    do not name (other generations, leftovers of killed writers), then the channels an earlier
    run made that this one did not (list first, then images, then record)."""
    removed: list[str] = []
    current = {s.channel for s in summaries}
    for summary in summaries:
        root = names.channel_uri(outdir, summary.channel)
        keep = {root + item.path for item in summary.items}
        removed += _remove(storage, [e.uri for e in storage.list(root) if e.uri not in keep], root)
    meta = names.record_uri(outdir, "x")[: -len("x.images.json")]
    for entry in storage.list(meta):
        tail = entry.uri[len(meta):]
        channel = tail[: -len(".images.json")] if tail.endswith(".images.json") else None
        if channel is None or channel in current or "/" in channel:
            continue
        lst = names.list_uri(outdir, channel)
        storage.delete(lst)
        storage.prune(lst.rsplit("/", 1)[0])
        root = names.channel_uri(outdir, channel)
        removed += _remove(storage, [e.uri for e in storage.list(root)], root)
        storage.prune(root)
        storage.delete(entry.uri)
        storage.delete(names.report_prefix(outdir, channel) + ".skipped.tsv")
    return removed


def _remove(storage: Store, uris: list[str], root: str) -> list[str]:
    """Delete ``uris`` (all under the folder ``root``), then the local folders they leave empty
    below ``root`` (S3 has no folders)."""
    folders: set[str] = set()
    for uri in uris:
        storage.delete(uri)
        folders.add(uri.rsplit("/", 1)[0])
    if storage.local_path(root) is None:
        return uris
    for folder in sorted(folders, key=len, reverse=True):
        while folder.startswith(root) and len(folder) > len(root.rstrip("/")):
            storage.prune(folder)
            if storage.exists(folder):
                break
            folder = folder.rsplit("/", 1)[0]
    return uris
