"""SageMaker image-classification hyperparameters that must match the data.

SageMaker passes hyperparameters as strings, so every value here is a string.  A wrong
``num_training_samples`` silently breaks the learning-rate schedule and a wrong
``num_classes`` fails the job after the instance has started; writing them from the data
removes both mistakes.  ``use_weighted_loss`` is only a hint: it is ``"1"`` for multi-label
data whose rarest chosen label is much rarer than its commonest one.
"""

from __future__ import annotations

import json

import numpy as np

# The algorithm's default image_shape side: it crops image_shape out of every image (randomly
# when training, centred when validating) and fails on an image smaller than the crop.
DEFAULT_SIDE = 224
# rarest label at least this many times rarer than the commonest -> suggest weighted loss
IMBALANCE_RATIO = 10.0


def image_shape(channels: int, height: int, width: int) -> str:
    return f"{channels},{height},{width}"


def imbalance(train_labels: np.ndarray) -> float:
    """Commonest / rarest positive count over the labels of a multi-hot matrix (inf if one is absent)."""
    counts = np.asarray(train_labels).sum(axis=0, dtype=np.int64)
    if counts.size == 0 or counts.max() == 0:
        return 1.0
    if counts.min() == 0:
        return float("inf")
    return float(counts.max() / counts.min())


def hyperparameters(
    *,
    num_classes: int,
    num_training_samples: int,
    multi_label: bool,
    shape: tuple[int, int, int] | None = None,
    train_labels: np.ndarray | None = None,
) -> dict[str, str]:
    """The data-dependent hyperparameters, as SageMaker's string values."""
    out = {
        "num_classes": str(num_classes),
        "num_training_samples": str(num_training_samples),
        "multi_label": "1" if multi_label else "0",
    }
    if shape is not None:
        out["image_shape"] = image_shape(*shape)
    if multi_label and train_labels is not None:
        out["use_weighted_loss"] = "1" if imbalance(train_labels) >= IMBALANCE_RATIO else "0"
    return out


def dumps(params: dict[str, str]) -> str:
    return json.dumps(params, indent=2) + "\n"
