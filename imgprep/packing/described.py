"""``hyperparameters.json`` and ``classes.json`` from what ``prepare`` packed, not from the lists.

The lists name every image; the records hold those that could be read.  A training job told
``num_training_samples=84`` over 82 records gets a wrong learning-rate schedule, and one told an
``image_shape`` larger than a packed image fails after its instance has started.  So once every
split is packed, the sample count and per-class counts come from the records (the lists less
the skipped images), and ``image_shape`` from the smallest packed side (each record's size is
read from its image header as it is written).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgprep.formats import classmap, hyperparams
from imgprep.formats.imagesize import SizeRange
from imgprep.sources.loaded import Dataset


@dataclass
class Described:
    """The metadata of the packed records, and how the packed splits differ from the lists."""

    hyperparameters: dict[str, str]
    classes: dict[str, Any]
    differences: list[str] = field(default_factory=list)


def packed_indices(splits: Mapping[str, np.ndarray], packed: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Each split's image indices less the images its pack skipped (record id = image index)."""
    out = {}
    for name, idx in splits.items():
        summary = packed.get(name)
        gone = {s.index for s in getattr(summary, "skipped_items", ())}
        out[name] = np.asarray([i for i in idx.tolist() if i not in gone], dtype=np.int64) if gone else idx
    return out


def packed_shape(spec: Any, sizes: SizeRange, planned: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
    """``image_shape`` every packed image fits: ``--size`` exactly; otherwise a square of the
    smallest packed side, capped at the algorithm's default 224 (planned shape if unknown)."""
    channels = 1 if getattr(spec, "color", 1) == 0 else 3
    if getattr(spec, "size", None):
        width, height = spec.size
        return (channels, height, width)
    side = sizes.min_side
    if side is None:
        return planned
    side = min(hyperparams.DEFAULT_SIDE, side)
    return (channels, side, side)


def describe(dataset: Dataset, splits: Mapping[str, np.ndarray], packed: Mapping[str, Any], spec: Any,
             planned: Mapping[str, str]) -> Described:
    """The metadata of the records ``packed`` (split -> PackSummary) hold; ``planned`` is the
    ``hyperparameters.json`` convert wrote from the lists."""
    held = packed_indices(splits, packed)
    split_counts = {name: dataset.class_counts(idx) for name, idx in held.items()}
    classes = classmap.build(kind=dataset.kind, classes=dataset.classes, multi_label=dataset.multi_label,
                             split_counts=split_counts, split_sizes={n: len(i) for n, i in held.items()})
    sizes = SizeRange.union(getattr(s, "sizes", SizeRange(unknown=1)) for s in packed.values())
    planned_shape = _shape(planned.get("image_shape"))
    shape = packed_shape(spec, sizes, planned_shape)
    train_name = "train" if "train" in held else next(iter(held))
    train = held[train_name]
    params = hyperparams.hyperparameters(
        num_classes=dataset.num_classes, num_training_samples=len(train), multi_label=dataset.multi_label,
        shape=shape, train_labels=dataset.labels[train] if dataset.multi_label else None)
    differences = []
    for name, idx in splits.items():
        lost = len(idx) - len(held[name])
        if lost:
            report = getattr(packed.get(name), "report", None)
            where = f"; see {report}" if report else ""
            differences.append(f"{name}: {len(idx)} listed, {len(held[name])} packed ({lost} skipped{where})")
    if shape != planned_shape and shape is not None:
        differences.append(f"image_shape {hyperparams.image_shape(*shape)} from the smallest packed image "
                           f"(the lists alone gave {planned.get('image_shape', 'none')})")
    return Described(params, classes, differences)


def _shape(text: str | None) -> tuple[int, int, int] | None:
    if not text:
        return None
    c, h, w = (int(x) for x in text.split(","))
    return (c, h, w)
