"""The names of the image format under an output folder ``OUT``, as the algorithm's channels read them.

::

    OUT/train/<generation>/<path>         the images of the split ``train``
    OUT/train_lst/train.lst                its list, paths relative to ``OUT/train/``
    OUT/validation/...  OUT/validation_lst/validation.lst
    OUT/test/...        OUT/test_lst/test.lst
    OUT/_imgprep/train.images.json         what the channel holds (formats.imageset)
    OUT/_imgprep/images.lock               one writer

Split names map to channel names as the algorithm spells them: ``val`` and ``validation``
become ``validation``; every other split keeps its name (``train``, ``test``, a custom one).

``<generation>`` is a hash of what shapes the bytes (the list, the transform, the imgprep
version): a rerun with other settings writes beside the published images instead of over
them, so a failing rerun leaves the previous output whole, and the images of an earlier
generation are removed only after the new lists are committed.  The same run resumed writes
into the same generation, where finished images are found again and not uploaded twice.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from imgprep.errors import UsageError
from imgprep.formats.lst import LstItem
from imgprep.storage.base import join

CHANNELS = {"train": "train", "val": "validation", "validation": "validation", "test": "test"}
META = "_imgprep"
CONTENT_TYPE = "application/x-image"
_EXTENSIONS = {"jpg": ".jpg", "png": ".png"}


def channel_of(split: str) -> str:
    """The channel a split's images go to (``val`` -> ``validation``)."""
    name = CHANNELS.get(split, split)
    if name.endswith("_lst") or name == META or "/" in name or name in ("", ".", ".."):
        raise UsageError(f"split name {split!r} cannot name an image channel")
    return name


def channels_of(splits: Sequence[str]) -> dict[str, str]:
    """Split -> channel, refusing two splits that would share a channel (``val`` and ``validation``)."""
    out: dict[str, str] = {}
    for split in splits:
        channel = channel_of(split)
        if channel in out.values():
            raise UsageError(f"splits {', '.join(s for s in splits if channel_of(s) == channel)} would all be "
                             f"written to the channel {channel}/")
        out[split] = channel
    return out


def channel_uri(outdir: str, channel: str) -> str:
    """``OUT/train/`` (with the slash: an S3 channel's S3Uri must end with it, or ``OUT/train``
    would also match ``OUT/train_lst/``)."""
    return join(outdir, channel).rstrip("/") + "/"


def list_uri(outdir: str, channel: str) -> str:
    return join(join(outdir, f"{channel}_lst"), f"{channel}.lst")


def record_uri(outdir: str, channel: str) -> str:
    return join(join(outdir, META), f"{channel}.images.json")


def report_prefix(outdir: str, channel: str) -> str:
    return join(join(outdir, META), channel)


def lock_uri(outdir: str) -> str:
    return join(join(outdir, META), "images.lock")


def generation(list_sha256: str, settings: Mapping[str, Any]) -> str:
    """The folder one prepare's images of a channel live in (see the module's docstring)."""
    text = json.dumps({"list": list_sha256, "settings": dict(settings)}, sort_keys=True)
    return "g" + hashlib.sha256(text.encode()).hexdigest()[:12]


def written_names(items: Sequence[LstItem], encoding: str | None) -> list[str]:
    """Each item's path under its generation folder: the list's relative path, its extension
    made the encoding's when images are re-encoded (``encoding``; None: bytes unchanged).  A
    path that is an ``s3://`` URI (a manifest's ``source-ref``) becomes ``<id><ext>``; where two
    items would get one name (``a.png`` and ``a.jpg`` re-encoded), the later keeps its whole
    name and gets the extension appended."""
    names: list[str] = []
    taken: set[str] = set()
    for item in items:
        path = item.path
        ext = posixpath.splitext(path)[1]
        if "://" in path or path.startswith("/"):
            path = f"{item.index}{ext if encoding is None else ''}"
        new_ext = _EXTENSIONS[encoding] if encoding is not None else ""
        name = posixpath.splitext(path)[0] + new_ext if encoding is not None else path
        if name in taken:
            name = f"{path}{new_ext}" if encoding is not None else f"{item.index}-{path}"
        if name in taken:
            name = f"{item.index}-{name}"
        taken.add(name)
        names.append(name)
    return names
