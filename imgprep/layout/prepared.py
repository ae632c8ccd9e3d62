"""A prepared folder's own files: the split lists and manifests, ``classes.json`` and
``hyperparameters.json``, named here and read back here (convert and prepare write them, verify
and inspect read them).  A split's packed output sits beside them (:mod:`imgprep.layout.names`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from imgprep.errors import FormatError
from imgprep.storage.base import join

CLASSES = "classes.json"
HYPERPARAMETERS = "hyperparameters.json"
METADATA = (HYPERPARAMETERS, CLASSES)  # in the order a retirement removes them (hyperparameters first)
LIST_SUFFIX = ".lst"
MANIFEST_SUFFIX = ".manifest"
SPLIT_FILES = (LIST_SUFFIX, MANIFEST_SUFFIX)  # the files named after a split
SPLIT_NAMES = ("train", "val", "test")  # the splits convert writes by default; others come from --split


def split_prefix(outdir: str, split: str) -> str:
    """Where split ``split``'s packed output goes (``OUTDIR/train`` -> ``train.rec``, ...)."""
    return join(outdir, split)


def list_name(outdir: str, split: str) -> str:
    return join(outdir, split + LIST_SUFFIX)


def manifest_name(outdir: str, split: str) -> str:
    return join(outdir, split + MANIFEST_SUFFIX)


def classes_name(outdir: str) -> str:
    return join(outdir, CLASSES)


def hyperparameters_name(outdir: str) -> str:
    return join(outdir, HYPERPARAMETERS)


def read_document(read: Callable[[], bytes], where: str) -> dict[str, Any]:
    """A metadata file's JSON object; anything else is one line naming ``where``."""
    try:
        doc = json.loads(read())
    except ValueError as exc:
        raise FormatError(f"not JSON ({exc})", path=where) from None
    if not isinstance(doc, dict):
        raise FormatError("not a JSON object", path=where)
    return doc
