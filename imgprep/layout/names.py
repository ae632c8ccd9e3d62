"""The names a pack of ``PREFIX`` writes, and which names under a prefix are a pack's.

``PREFIX.rec``/``.idx`` (one shard) or ``PREFIX-00000.rec``/``.idx``, ... (sharded),
``PREFIX.dataset.json`` (the dataset record, written last), ``PREFIX.progress.json`` (what an
unfinished run has published), ``PREFIX.skipped.tsv`` (skipped images), ``PREFIX.prints``
(fingerprints, ``prepare --dedup``), ``PREFIX.lock`` (one writer).
"""

from __future__ import annotations

import re

from imgprep.formats.dataset import SUFFIX, progress_name, record_folder, record_name
from imgprep.formats.recordio import output_prefix, shard_names

__all__ = ["SHARD_NUMBER", "SUFFIX", "lock_name", "numbered_shard", "output_prefix", "owns", "prefix_of",
           "progress_name", "record_folder", "record_name", "shard_names", "unnumbered"]

# The one shard-number pattern (PREFIX-00003.rec; group 1 is the number): shard_names writes five
# digits, readers take more.
SHARD_NUMBER = r"-(\d{5,})"
_NUMBERED = re.compile(SHARD_NUMBER + r"\.(rec|idx)$")
_UNNUMBERED = re.compile(SHARD_NUMBER + "$")
# Everything a pack writes under PREFIX.
_OWNED = re.compile(rf"(?:{SHARD_NUMBER})?\.(rec|idx|dataset\.json|progress\.json|skipped\.tsv|prints)$")


def numbered_shard(uri: str) -> tuple[str, int, str] | None:
    """``PREFIX-00003.rec`` -> ``("PREFIX", 3, "rec")``; None for a name that is not a numbered shard."""
    match = _NUMBERED.search(uri)
    return (uri[: match.start()], int(match[1]), match[2]) if match else None


def unnumbered(stem: str) -> str:
    """``train-00003`` -> ``train``: the prefix a shard's stem belongs to."""
    return _UNNUMBERED.sub("", stem)


def lock_name(prefix: str) -> str:
    return prefix + ".lock"


def owns(prefix: str, uri: str) -> bool:
    """``uri`` is a file a pack of ``prefix`` writes (not a neighbour such as ``PREFIX2.rec``)."""
    return uri.startswith(prefix) and _OWNED.fullmatch(uri[len(prefix):]) is not None


def prefix_of(uri: str) -> str | None:
    """The prefix whose pack writes ``uri``, or None for a name no pack writes."""
    return _OWNED.sub("", uri) if _OWNED.search(uri) else None
