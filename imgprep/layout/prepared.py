"""A prepared folder's own files: the split lists and manifests, ``classes.json`` and
``hyperparameters.json``, named here and read back here (convert and prepare write them, verify
and inspect read them).  A split's packed output sits beside them (:mod:`imgprep.layout.names`).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from imgprep.errors import FormatError
from imgprep.storage.base import join

IMAGES = "images"  # in-memory images written as files (convert mnist)
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


def images_folder(outdir: str) -> str:
    """Where convert writes in-memory images (MNIST) as files, one folder per class."""
    return join(outdir, IMAGES)


def classes_name(outdir: str) -> str:
    return join(outdir, CLASSES)


def hyperparameters_name(outdir: str) -> str:
    return join(outdir, HYPERPARAMETERS)


class Folder(Protocol):
    """Where the metadata is read from (verify's :class:`~imgprep.verify.location.Location`)."""

    def exists(self, name: str) -> bool: ...

    def read(self, name: str) -> bytes: ...

    def display(self, name: str) -> str: ...


def read_beside(folder: Folder, name: str) -> dict[str, Any] | None:
    """The JSON object ``name`` (:data:`CLASSES`, :data:`HYPERPARAMETERS`) in ``folder``, or None
    when there is none; anything but a JSON object is one line naming the file."""
    if not folder.exists(name):
        return None
    try:
        doc = json.loads(folder.read(name))
    except ValueError as exc:
        raise FormatError(f"not JSON ({exc})", path=folder.display(name)) from None
    if not isinstance(doc, dict):
        raise FormatError("not a JSON object", path=folder.display(name))
    return doc
