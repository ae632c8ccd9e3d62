"""Caltech-256 (``NNN.name`` folders, ``257.clutter``) and Caltech-101 (``BACKGROUND_Google``,
``Faces``/``Faces_easy``) trees: class folders with dataset-specific names.

The numeric prefix orders the classes (so ids match the MXNet example: ``001.ak47`` is 0) and
is stripped from the names; ``drop_clutter`` removes the clutter/background class, which is
not an object category.  The archive's top folder (``256_ObjectCategories``) may be given or
its parent.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from imgprep.errors import SourceError
from imgprep.sources.folders import load_folders
from imgprep.sources.loaded import Dataset, require_folder
from imgprep.sources.registry import DefaultSplit, Kind, register
from imgprep.storage.roots import ALLOW_SWITCH, RootGuard

_NUMBERED = re.compile(r"^(\d+)\.(.+)$")
CLUTTER_256 = "clutter"
BACKGROUND_101 = "BACKGROUND_Google"
ARCHIVE_FOLDERS = ("256_ObjectCategories", "101_ObjectCategories", "caltech256", "caltech101")
# The classic Caltech protocol (MXNet example, SageMaker notebook): 60 images per class train.
DEFAULT_TRAIN_PER_CLASS = 60


def _class_folders(root: str) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    except OSError as exc:
        raise SourceError(f"cannot list folder ({exc.strerror})", path=root) from None


def find_root(root: str) -> str:
    """``root`` itself, or its single archive folder (``256_ObjectCategories``) when given the parent."""
    require_folder(root, "expected 256_ObjectCategories/, 101_ObjectCategories/ or the folder above it")
    folders = _class_folders(root)
    for name in ARCHIVE_FOLDERS:
        if name in folders and len(folders) <= 2:
            return os.path.join(root, name)
    return root


def detect_layout(folders: Sequence[str]) -> str:
    """``"256"`` for ``NNN.name`` folders, ``"101"`` for the 101 layout; SourceError otherwise."""
    numbered = [f for f in folders if _NUMBERED.match(f)]
    if folders and len(numbered) == len(folders):
        return "256"
    if BACKGROUND_101 in folders or ("Faces" in folders and "Faces_easy" in folders):
        return "101"
    return ""


def _numbered(name: str) -> tuple[int, str]:
    """``"001.ak47"`` -> ``(1, "ak47")``; ``(0, name)`` for other names."""
    match = _NUMBERED.match(name)
    return (int(match.group(1)), match.group(2)) if match else (0, name)


def load_caltech(root: str, *, drop_clutter: bool = False, extensions: Sequence[str] | None = None,
                 follow_links_outside_root: bool = False) -> Dataset:
    """Read a Caltech-101/256 tree; class names without numeric prefixes (symlinks as in
    :func:`~imgprep.sources.folders.load_folders`)."""
    root = find_root(root)
    folders = _class_folders(root)
    layout = detect_layout(folders)
    if not layout:
        raise SourceError(
            "not a Caltech-101/256 layout (expected NNN.name folders, or BACKGROUND_Google and Faces_easy)",
            path=root,
        )
    clutter = [f for f in folders if _numbered(f)[1] == CLUTTER_256] if layout == "256" else [BACKGROUND_101]
    exclude = clutter if drop_clutter else []
    if layout == "256":
        numbers = [_numbered(f)[0] for f in folders]
        if len(set(numbers)) != len(numbers):
            raise SourceError("two class folders share a number", path=root)
    data = load_folders(root, extensions=extensions, exclude_top=exclude, kind="caltech",
                        follow_links_outside_root=follow_links_outside_root)
    found = {c.path for c in data.classes}
    empty = [f for f in folders if f not in found and f not in exclude]
    if empty:
        # a class without images would vanish and shift every later class id
        if RootGuard(root).escape(os.path.join(root, empty[0])):
            raise SourceError(f"class folder {empty[0]!r} is a symlink leading outside the image root, so its "
                              f"images are not listed; {ALLOW_SWITCH} lists them if the link is meant", path=root)
        raise SourceError(
            f"class folder {empty[0]!r} holds no usable images ({len(empty)} such folder(s)); "
            "add images or remove the folder so class ids stay as numbered",
            path=root,
        )
    if layout == "256":
        # numeric order, not string order (a 1000th class would sort before 999 as text)
        order = sorted(range(data.num_classes), key=lambda i: _numbered(data.classes[i].name)[0])
        if order != list(range(data.num_classes)):
            remap = np.empty(len(order), dtype=np.int64)
            remap[order] = np.arange(len(order))
            data.labels = remap[data.labels]
            data.classes = [data.classes[i] for i in order]
        data.classes = [replace(c, name=_numbered(c.name)[1], source_id=_numbered(c.name)[0]) for c in data.classes]
    data.notes.append(f"Caltech-{layout} layout")
    return data


register(Kind("caltech", load_caltech, "Caltech-101/256 folder",
              options=("extensions", "drop_clutter"),
              default_split=DefaultSplit(fractions=None, train_per_class=DEFAULT_TRAIN_PER_CLASS)))
