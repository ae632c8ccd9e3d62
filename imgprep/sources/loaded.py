"""The one in-memory shape every dataset source produces.

Sources differ wildly on disk (folder trees, IDX arrays, COCO JSON, manifests); after loading
they are all a :class:`Dataset`: class descriptions, one relative path per image and a label
array (class ids for single-label data, a multi-hot matrix for multi-label data).  Splitting,
list/manifest writing and packing only ever see this shape, so each works for every source.
Labels live in numpy arrays so 100k+ images cost milliseconds, not Python objects per label.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgprep.errors import SourceError
from imgprep.formats.lst import LstItem

# Largest multi-hot label matrix a source may build (images x classes, one byte each): a few
# stray class ids must not make a small file ask for tens of gigabytes.  Open Images' 1.7 M
# images x 600 classes is 1.0e9.
MAX_LABEL_CELLS = 1 << 32


def check_label_matrix(images: int, classes: int, path: str) -> None:
    """Refuse, before allocating it, a label matrix above :data:`MAX_LABEL_CELLS`."""
    if images * classes > MAX_LABEL_CELLS:
        raise SourceError(
            f"{images} images x {classes} classes is a label matrix above the limit of {MAX_LABEL_CELLS} cells",
            path=path,
        )


def require_folder(path: str, expected: str = "") -> None:
    """A :class:`SourceError` saying whether ``path`` does not exist or is not a folder."""
    if os.path.isdir(path):
        return
    what = f" ({expected})" if expected else ""
    if not os.path.lexists(path):
        raise SourceError(f"does not exist{what}", path=path)
    if not os.path.exists(path):
        raise SourceError(f"is a broken symlink{what}", path=path)
    raise SourceError(f"is a file, not a folder{what}", path=path)


@dataclass(frozen=True)
class ClassInfo:
    """One class: its name, where it came from (folder, COCO category id...) and its coarse group."""

    name: str
    path: str | None = None
    group: str | None = None
    source_id: int | str | None = None


@dataclass
class Dataset:
    """Images with labels.  ``labels`` is ``int64[n]`` (single-label) or ``uint8[n, k]`` (multi-hot).

    ``preset`` holds a split that came with the data (MNIST's train/t10k) as index arrays;
    ``make_source`` builds the packer's image source when images are not plain files under
    ``root`` (MNIST arrays); ``image_shape`` is ``(C, H, W)`` when every image is known to
    have it; ``min_side`` the smallest image side when the source records sizes (COCO);
    ``pixels`` the images themselves when they live in memory (row ``i`` is image ``i``).
    """

    kind: str
    origin: str
    classes: list[ClassInfo]
    paths: list[str]
    labels: np.ndarray
    multi_label: bool = False
    root: str | None = None
    preset: dict[str, np.ndarray] | None = None
    image_shape: tuple[int, int, int] | None = None
    min_side: int | None = None
    mtime: float = 0.0
    notes: list[str] = field(default_factory=list)
    make_source: Callable[..., Any] | None = None
    pixels: np.ndarray | None = None
    # the loader already left out paths through symlinks leading out of ``root`` (the folder walk)
    links_checked: bool = False

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def label_tuple(self, i: int) -> tuple[float, ...]:
        row = self.labels[i]
        if self.multi_label:
            return tuple(float(x) for x in row)
        return (float(row),)

    def items(self, indices: Iterable[int]) -> list[LstItem]:
        """``.lst`` items for the given image indices; the record id is the image's index."""
        if self.multi_label:
            rows = self.labels.tolist()
            return [LstItem(int(i), tuple(float(x) for x in rows[i]), self.paths[i]) for i in indices]
        flat = self.labels.tolist()
        return [LstItem(int(i), (float(flat[i]),), self.paths[i]) for i in indices]

    def class_counts(self, indices: np.ndarray) -> np.ndarray:
        """Images per class (positives per label for multi-label data) among ``indices``."""
        if self.multi_label:
            return self.labels[indices].sum(axis=0, dtype=np.int64)
        return np.bincount(self.labels[indices], minlength=self.num_classes)
