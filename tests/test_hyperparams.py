"""hyperparameters.json: SageMaker's string values, derived from the data."""

from __future__ import annotations

import numpy as np

from imgprep.formats.hyperparams import hyperparameters, imbalance
from imgprep.imaging.spec import TransformSpec
from imgprep.plan import packed_shape
from imgprep.sources.loaded import ClassInfo, Dataset


def test_single_label_values_are_strings() -> None:
    params = hyperparameters(num_classes=257, num_training_samples=15420, multi_label=False, shape=(3, 224, 224))
    assert params == {
        "num_classes": "257",
        "num_training_samples": "15420",
        "multi_label": "0",
        "image_shape": "3,224,224",
    }


def test_weighted_loss_hint_for_imbalanced_multi_label() -> None:
    balanced = np.array([[1, 0], [0, 1], [1, 1]])
    skewed = np.zeros((100, 2), dtype=np.uint8)
    skewed[:, 0] = 1
    skewed[:3, 1] = 1
    assert imbalance(balanced) == 1.0
    common = {"num_classes": 2, "num_training_samples": 3, "multi_label": True}
    assert hyperparameters(**common, train_labels=balanced)["use_weighted_loss"] == "0"
    assert hyperparameters(**common, train_labels=skewed)["use_weighted_loss"] == "1"
    assert imbalance(np.array([[1, 0]])) == float("inf")


def test_packed_shape_follows_the_spec() -> None:
    data = Dataset("mnist", "x", [ClassInfo("a")], ["a.png"], np.zeros(1, np.int64), image_shape=(1, 28, 28))
    assert packed_shape(TransformSpec(color=0), data) == (1, 28, 28)
    assert packed_shape(TransformSpec(), data) == (3, 28, 28)
    assert packed_shape(TransformSpec(size=(348, 300)), data) == (3, 300, 348)
    # --resize N makes both sides >= N: the algorithm's 224 crop fits when N reaches it
    assert packed_shape(TransformSpec(resize=256), data) == (3, 224, 224)
    assert packed_shape(TransformSpec(resize=100), data) == (3, 100, 100)
    plain = Dataset("folders", "x", [ClassInfo("a")], ["a.jpg"], np.zeros(1, np.int64))
    assert packed_shape(TransformSpec(), plain) is None
