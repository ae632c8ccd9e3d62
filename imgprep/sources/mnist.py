"""MNIST / Fashion-MNIST from their four IDX files (raw or ``.gz``), kept as arrays.

The images never have to become files: :class:`ArraySource` hands the packer ``uint8`` pixel
arrays (HxW grayscale or HxWx3 RGB) which its workers encode directly.  ``convert`` writes
PNG/JPEG files only because a ``.lst`` needs files to point at.  Image index ``i`` is row ``i``
of the training file for ``i < 60000`` and row ``i - 60000`` of the t10k file after that, so
record ids stay stable under any split.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from imgprep.errors import FormatError, SourceError, UsageError
from imgprep.formats.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from imgprep.formats.lst import LstItem
from imgprep.sources.loaded import ClassInfo, Dataset, require_folder
from imgprep.sources.registry import WRITTEN, Kind, register
from imgprep.storage.images import ImageSource

FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DIGIT_CLASSES = tuple(str(i) for i in range(10))
VARIANTS = {"fashion": FASHION_CLASSES, "digits": DIGIT_CLASSES}
# train-images-idx3-ubyte, train-images.idx3-ubyte (python-mnist's name), optional .gz
_NAME = re.compile(r"^(train|t10k)-(images|labels)[-.]idx([13])-ubyte(\.gz)?$")
PARTS = ("train", "t10k")


def find_files(folder: str) -> dict[tuple[str, str], str]:
    """``{("train"|"t10k", "images"|"labels"): path}`` for the IDX files in ``folder``."""
    require_folder(folder, "expected the folder holding the four IDX files")
    found: dict[tuple[str, str], str] = {}
    for name in sorted(os.listdir(folder)):
        match = _NAME.match(name)
        if not match:
            continue
        key = (match.group(1), match.group(2))
        if key in found:
            raise SourceError(f"both {os.path.basename(found[key])} and {name} are present; keep one", path=folder)
        found[key] = os.path.join(folder, name)
    if ("train", "images") not in found and ("t10k", "images") not in found:
        raise SourceError("no IDX files found (expected train-images-idx3-ubyte[.gz] and friends)", path=folder)
    for part in PARTS:
        have = [k for k in ("images", "labels") if (part, k) in found]
        if len(have) == 1:
            missing = "labels" if have == ["images"] else "images"
            raise SourceError(f"{part}-{have[0]} found but {part}-{missing} is missing", path=folder)
    return found


def load_pair(images_path: str, labels_path: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(images uint8[n, rows, cols], labels uint8[n])`` from one IDX pair."""
    images = read_idx(images_path, magic=IMAGES_MAGIC)
    labels = read_idx(labels_path, magic=LABELS_MAGIC)
    if images.shape[1] == 0 or images.shape[2] == 0:
        raise FormatError(f"images of {images.shape[1]}x{images.shape[2]} pixels hold nothing", path=images_path)
    if images.shape[0] != labels.shape[0]:
        raise FormatError(
            f"{images.shape[0]} images but {labels.shape[0]} labels in {os.path.basename(labels_path)}",
            path=images_path,
        )
    if labels.size and int(labels.max()) >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise FormatError(
            f"record {bad}: label {int(labels[bad])} is not below the {num_classes} classes", path=labels_path
        )
    return images, labels


def safe_folder_name(name: str) -> str:
    """A class name usable as one path component (``T-shirt/top`` -> ``T-shirt_top``)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned or "class"


def load_mnist(folder: str, *, variant: str = "fashion", encoding: str = "png") -> Dataset:
    """Read the IDX files in ``folder`` into a dataset whose preset split is train / t10k -> val."""
    names = VARIANTS.get(variant)
    if names is None:
        raise UsageError(f"--variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    if encoding not in ("png", "jpg"):
        raise UsageError(f"--image-format must be png or jpg, got {encoding!r}")
    files = find_files(folder)
    arrays: list[np.ndarray] = []
    label_arrays: list[np.ndarray] = []
    preset: dict[str, np.ndarray] = {}
    paths: list[str] = []
    offsets: list[tuple[str, int, int]] = []
    start = 0
    mtime = 0.0
    folders = [safe_folder_name(n) for n in names]
    for part, split in (("train", "train"), ("t10k", "val")):
        if (part, "images") not in files:
            continue
        images_path, labels_path = files[(part, "images")], files[(part, "labels")]
        images, labels = load_pair(images_path, labels_path, len(names))
        if arrays and images.shape[1:] != arrays[0].shape[1:]:
            size = f"{images.shape[1]}x{images.shape[2]}"
            raise FormatError(f"image size {size} differs from the training images'", path=images_path)
        n = images.shape[0]
        arrays.append(images)
        label_arrays.append(labels)
        preset[split] = np.arange(start, start + n, dtype=np.int64)
        offsets.append((images_path, start, n))
        label_list = labels.tolist()
        paths.extend(f"{folders[label_list[r]]}/{part}-{r:05d}.{encoding}" for r in range(n))
        start += n
        mtime = max(mtime, os.path.getmtime(images_path), os.path.getmtime(labels_path))
    all_images = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
    all_labels = np.concatenate(label_arrays).astype(np.int64)
    _, rows, cols = all_images.shape
    classes = [ClassInfo(name=n, path=f, source_id=i) for i, (n, f) in enumerate(zip(names, folders))]
    data = Dataset(
        kind="mnist",
        origin=folder,
        classes=classes,
        paths=paths,
        labels=all_labels,
        preset=preset,
        image_shape=(1, rows, cols),
        mtime=mtime,
    )
    data.pixels = all_images
    data.make_source = lambda channels=1: ArraySource(all_images, offsets, channels=channels)
    return data


class ArraySource(ImageSource):
    """The packer's image source for in-memory pixels: ``fetch`` returns a uint8 array."""

    batched = True

    def __init__(self, images: np.ndarray, offsets: list[tuple[str, int, int]], *, channels: int = 1) -> None:
        if channels not in (1, 3):
            raise UsageError(f"channels must be 1 or 3, got {channels}")
        self.images = images
        self.offsets = offsets
        self.channels = channels

    def local_path(self, item: LstItem) -> str | None:
        return None

    def fetch(self, item: LstItem) -> Any:
        pixels = self.images[item.index]
        if self.channels == 3:
            return np.repeat(pixels[:, :, None], 3, axis=2)
        return pixels

    def fetch_many(self, items: Sequence[LstItem]) -> np.ndarray:
        """A whole chunk as one array: the packer pickles one buffer instead of many views."""
        pixels = self.images[np.fromiter((item.index for item in items), np.int64, len(items))]
        if self.channels == 3:
            return np.repeat(pixels[..., None], 3, axis=-1)
        return pixels

    def describe(self, item: LstItem) -> str:
        for path, start, n in self.offsets:
            if start <= item.index < start + n:
                return f"{path} record {item.index - start}"
        return f"image {item.index}"

    def close(self) -> None:
        pass


register(Kind("mnist", load_mnist, "four IDX files", options=("variant",), image_root=WRITTEN, sizes=True,
              shardable=False))
