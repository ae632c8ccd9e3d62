"""The names a pack of ``PREFIX`` writes, and which names under a prefix are a pack's.

``PREFIX.rec``/``.idx`` (one shard) or ``PREFIX-00000.rec``/``.idx``, ... (sharded),
``PREFIX.dataset.json`` (the dataset record, written last), ``PREFIX.progress.json`` (what an
unfinished run has published), ``PREFIX.skipped.tsv`` (skipped images), ``PREFIX.lock`` (one writer).
"""

from __future__ import annotations

import re

from imgprep.formats.dataset import SUFFIX, progress_name, record_folder, record_name
from imgprep.formats.recordio import output_prefix, shard_names

__all__ = ["SUFFIX", "lock_name", "output_prefix", "owns", "prefix_of", "progress_name", "record_folder",
           "record_name", "shard_names"]

# Everything a pack writes under PREFIX; group 1 is the shard number, if any.
_OWNED = re.compile(r"(?:-(\d{5,}))?\.(rec|idx|dataset\.json|progress\.json|skipped\.tsv)$")


def lock_name(prefix: str) -> str:
    return prefix + ".lock"


def owns(prefix: str, uri: str) -> bool:
    """``uri`` is a file a pack of ``prefix`` writes (not a neighbour such as ``PREFIX2.rec``)."""
    return uri.startswith(prefix) and _OWNED.fullmatch(uri[len(prefix):]) is not None


def prefix_of(uri: str) -> str | None:
    """The prefix whose pack writes ``uri``, or None for a name no pack writes."""
    return _OWNED.sub("", uri) if _OWNED.search(uri) else None
