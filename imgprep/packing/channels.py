"""The image format: each split's images written once to its channel, then its ``.lst``, published like RecordIO.

What :func:`write_images` keeps true at every instant (kill -9, a failing rerun, a full disk):

1. A reader never finds a list naming an image that is not there: every image of every
   channel is written (each one whole: a rename into place, or one PutObject) before any list
   is, and a list is replaced in one step (rename, or one PutObject).
2. A failing rerun leaves the previous output whole: a run writes its images into a folder of
   its own generation (:func:`imgprep.layout.channels.generation`), beside the published ones,
   and removes the images of other generations (and channels it no longer makes) only after
   its lists and the caller's metadata are committed.
3. The same run resumed (or repeated) writes into the same generation: an image already there
   with the same bytes (its MD5 against the listing's ETag on S3, against the file locally) is
   not written again, so ``--resume`` after kill -9 uploads only what is missing and ends
   byte-identical to an uninterrupted run.
4. One writer: ``_imgprep/images.lock`` is held from before the first image to the last removal.
5. Byte-identical for any worker count: every image's bytes come from the packer's own
   imaging path (:func:`imgprep.packing.worker.run_chunk`, the record's image taken back out of
   it), its name from the list alone, and the lists are written in list order at the end.

Per-image checksums go to ``_imgprep/<channel>.images.json`` (:mod:`imgprep.formats.imageset`),
written just before its list.  With ``--pass-through`` and an ``s3://`` source written to S3
through the same store, images are copied server-side (CopyObject): no image is downloaded.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext

from imgprep.errors import UsageError
from imgprep.formats.lst import LstItem, dumps
from imgprep.imaging.spec import TransformSpec
from imgprep.layout import channels as names
from imgprep.packing.channel_publish import commit_lists, finish, locked, remove_stale
from imgprep.packing.channel_writer import ChannelSummary, ChannelWriter, summarise
from imgprep.packing.packer import PackOptions
from imgprep.packing.sources import ImageSource, resolve
from imgprep.requirements import require_for
from imgprep.signals import sigterm_as_interrupt
from imgprep.storage.probe import check_access

__all__ = ["ChannelSummary", "commit_lists", "finish", "generation", "remove_stale", "summarise", "write_channel",
           "write_images"]


def write_images(
    lists: Mapping[str, Sequence[LstItem]],
    source: str | ImageSource,
    outdir: str,
    spec: TransformSpec | None = None,
    options: PackOptions | None = None,
    *,
    after_lists: Callable[[dict[str, ChannelSummary]], None] | None = None,
) -> dict[str, ChannelSummary]:
    """Write every split of ``lists`` (split -> items, in order) as an image channel under ``outdir``.

    ``after_lists`` runs once every list is committed and before the old generation is removed
    (a caller's class map, manifests and ``hyperparameters.json``).  Raises
    :class:`BadRecordsError` with ``strict`` at a bad image (no list committed).
    """
    if not lists:
        raise UsageError("no split to write")
    channels = names.channels_of(list(lists))
    with _opened(source, outdir, spec, options) as writer:
        summaries = {split: writer.channel(split, channels[split], items) for split, items in lists.items()}
        commit_lists(outdir, summaries.values(), writer.storage, report=writer.options.report)
        if after_lists is not None:
            after_lists(summaries)
        remove_stale(outdir, summaries.values(), writer.storage)
        return summaries


def write_channel(items: Sequence[LstItem], source: str | ImageSource, outdir: str, split: str,
                  spec: TransformSpec | None = None, options: PackOptions | None = None, *,
                  whole: Sequence[LstItem] | None = None) -> ChannelSummary:
    """The images of one split, into its channel's generation folder; nothing is committed:
    :func:`commit_lists` (once every split's images are written), then :func:`finish`, do that.
    ``whole``: the split's whole list, of which ``items`` is one host's share (its summary holds
    the images written; :func:`summarise` of every host's makes the channel's list)."""
    channel = names.channel_of(split)
    # The hosts of a job write their shares at once, each image under its own name: the lock is
    # the committer's (the join's commit_lists and finish), not theirs.
    with _opened(source, outdir, spec, options, lock=whole is None) as writer:
        return writer.channel(split, channel, items, whole)


def generation(items: Sequence[LstItem], outdir: str, spec: TransformSpec | None = None,
               options: PackOptions | None = None) -> tuple[str, dict[str, object]]:
    """The generation folder and settings a run with these options gives the split ``items``."""
    from imgprep.packing.channel_writer import settings_of

    found = settings_of(spec or TransformSpec(), options or PackOptions())
    return names.generation(hashlib.sha256(dumps(items).encode()).hexdigest(), found), found


@contextmanager
def _opened(source: str | ImageSource, outdir: str, spec: TransformSpec | None,
            options: PackOptions | None, *, lock: bool = True) -> Iterator[ChannelWriter]:
    """A writer for ``outdir`` with its checks done, the image source open and the lock held."""
    spec, options = spec or TransformSpec(), options or PackOptions()
    storage = options.storage
    if storage is None:
        raise UsageError("PackOptions.storage is not set: give the Store to write through (imgprep.Storage())")
    if options.shard_records or options.shard_size:
        raise UsageError("--shard-records and --shard-size shard RecordIO files; the image format writes one file "
                         "per image")
    clients = storage.clients(outdir) + (storage.clients(source, images=True) if isinstance(source, str) else ())
    require_for(clients, decode=not spec.pass_through)
    image_source = resolve(source, storage, follow_outside=options.follow_links_outside_root)
    try:
        with sigterm_as_interrupt():
            check_access(storage, writes=[outdir.rstrip("/") + "/"], images=[source])
            with locked(outdir, storage) if lock else nullcontext():
                yield ChannelWriter(image_source, outdir, spec, options, storage)
    finally:
        image_source.close()
